package org.cocoonjvm.gateway.registry;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The operator's cordons in their file: what a restart reads back, and what it refuses to start on. */
class CordonsTest {
    @TempDir
    Path dir;

    private final Vertx vertx = Vertx.vertx();

    @AfterEach
    void close() throws Exception {
        vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

    @Test
    void whatIsSaved_isWhatTheNextStartReads() throws Exception {
        Path file = dir.resolve("state").resolve("cordons.json");
        Cordons cordons = Cordons.load(file);
        assertThat(cordons.contains("a")).as("no file yet: none").isFalse();

        assertThat(cordons.add("a")).isTrue();
        assertThat(cordons.add("b")).isTrue();
        assertThat(cordons.add("a")).as("already").isFalse();
        assertThat(cordons.remove("b")).isTrue();
        assertThat(cordons.contains("a")).as("in effect before it is saved").isTrue();
        save(cordons);

        Cordons restarted = Cordons.load(file);
        assertThat(restarted.contains("a")).isTrue();
        assertThat(restarted.contains("b")).isFalse();
        assertThat(Files.list(file.getParent())).as("no temp file left").containsExactly(file);
    }

    @Test
    void inMemory_savesNothing() throws Exception {
        Cordons cordons = Cordons.inMemory();
        cordons.add("a");
        save(cordons);
        assertThat(cordons.file()).isNull();
        assertThat(Files.list(dir)).isEmpty();
    }

    @Test
    void aFileThatDoesNotRead_refusesTheStart_namingTheFile() throws Exception {
        Path file = dir.resolve("cordons.json");
        for (String bad : new String[] {"[\"a\"", "[\"a\"]", "{\"cordoned\": \"a\"}", "{\"cordoned\": [\"a b\"]}",
                "{\"cordoned\": [\"\"]}", "{\"cordoned\": [7]}", "{}"}) {
            Files.writeString(file, bad);
            assertThatThrownBy(() -> Cordons.load(file)).as(bad).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageStartingWith("the cordoned workers in " + file + " do not read: ")
                    .hasMessageEndingWith("(expected {\"cordoned\": [\"worker-id\", …]}; fix or remove it)");
        }
    }

    @Test
    void aSaveThatFails_failsItsFuture() throws Exception {
        Path state = dir.resolve("state");
        Cordons cordons = Cordons.load(state.resolve("cordons.json"));
        Files.writeString(state, "a file where its directory should be");
        cordons.add("a");
        assertThat(cordons.save(vertx).toCompletionStage().toCompletableFuture().handle((ok, e) -> e).get(10, TimeUnit.SECONDS))
                .isNotNull();
        assertThat(cordons.contains("a")).as("the cordon holds in memory").isTrue();
    }

    private void save(Cordons cordons) throws Exception {
        cordons.save(vertx).toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
}
