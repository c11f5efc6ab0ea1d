package org.cocoonjvm.gateway.registry;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.tuple;

import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.cocoonjvm.billing.accounts.MutableClock;
import org.cocoonjvm.protocol.grpc.Hello;
import org.cocoonjvm.protocol.grpc.ModelRef;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.openai.ServiceTier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The known models in their file: what a restarted registry answers for a model served before the
 * stop (503, retryable, with its {@code created}), and what it refuses to start on.
 */
class ServedModelsTest {
    private static final Instant START = Instant.parse("2025-06-01T12:00:00Z");

    @TempDir
    Path dir;

    private final Vertx vertx = Vertx.vertx();
    private final MutableClock wall = new MutableClock(START);

    @AfterEach
    void close() throws Exception {
        vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

    private WorkerRegistry registry(Path file, AtomicLong nanos) {
        return new WorkerRegistry(100, 25, nanos::get, wall, Cordons.inMemory(), ServedModels.load(file));
    }

    private static Hello hello(String id, int port, String model) {
        return Hello.newBuilder().setWorkerId(id).setEndpoint("http://127.0.0.1:" + port)
                .addModels(ModelRef.newBuilder().setName(model).setHash("h-" + model).setMaxContext(4096)
                        .setChatTemplateTokens(12).setChatMessageTokens(4))
                .setCapacity(2).build();
    }

    @Test
    void aRestart_knowsWhatWasServedWithinTenMinutesOfTheStop_andKeepsItsCreated() throws Exception {
        Path file = dir.resolve("state").resolve("models.json");
        AtomicLong nanos = new AtomicLong(5_000_000_000L);
        WorkerRegistry before = registry(file, nanos);
        before.remove(before.register(hello("old", 9001, "old")), WorkerRegistry.Departure.GONE);
        nanos.addAndGet(TimeUnit.MINUTES.toNanos(8));
        wall.advance(Duration.ofMinutes(8));
        before.remove(before.register(hello("left", 9002, "left")), WorkerRegistry.Departure.GONE);
        before.register(hello("serving", 9003, "m"));
        wall.advance(Duration.ofMinutes(2));
        nanos.addAndGet(TimeUnit.MINUTES.toNanos(2));
        save(before);

        wall.advance(Duration.ofSeconds(30));  // the restart
        WorkerRegistry after = registry(file, new AtomicLong(-7_000_000_000L));
        for (String model : new String[] {"m", "m@h-m", "left", "left@h-left"}) {
            assertThatThrownBy(() -> pick(after, model)).as(model).isInstanceOfSatisfying(ApiException.class, e -> {
                assertThat(e.kind()).isEqualTo(ErrorKind.NO_CAPACITY);
                assertThat(e.retryAfterSeconds()).isEqualTo(WorkerRegistry.RECENTLY_SERVED_RETRY_AFTER_S);
            });
        }
        assertThatThrownBy(() -> pick(after, "old")).as("gone 10.5 minutes")
                .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.kind()).isEqualTo(ErrorKind.MODEL_NOT_FOUND));
        assertThatThrownBy(() -> pick(after, "never"))
                .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.kind()).isEqualTo(ErrorKind.MODEL_NOT_FOUND));
        assertThat(after.knownModels()).extracting(k -> k.model().getName(), WorkerRegistry.KnownModel::createdSeconds)
                .containsExactlyInAnyOrder(tuple("m", START.getEpochSecond() + 480),
                        tuple("left", START.getEpochSecond() + 480));
        assertThat(after.knownModels()).filteredOn(k -> k.model().getName().equals("m")).singleElement()
                .satisfies(k -> assertThat(k.model()).isEqualTo(hello("", 0, "m").getModels(0)));

        after.register(hello("serving", 9003, "m"));
        assertThat(after.knownModels()).filteredOn(k -> k.model().getName().equals("m")).singleElement()
                .satisfies(k -> assertThat(k.createdSeconds()).as("created stays").isEqualTo(START.getEpochSecond() + 480));
        assertThat(Files.list(file.getParent())).as("no temp file left").containsExactly(file);
    }

    @Test
    void aModelServedAtTheStop_isKnownForTenMinutesAfterIt() throws Exception {
        Path file = dir.resolve("models.json");
        WorkerRegistry before = registry(file, new AtomicLong());
        before.register(hello("serving", 9003, "m"));
        save(before);

        wall.advance(Duration.ofMinutes(10).plusSeconds(1));
        assertThatThrownBy(() -> pick(registry(file, new AtomicLong()), "m"))
                .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.kind()).isEqualTo(ErrorKind.MODEL_NOT_FOUND));
    }

    @Test
    void inMemory_savesNothing() throws Exception {
        WorkerRegistry registry = new WorkerRegistry(100, 25, System::nanoTime, wall);
        registry.register(hello("serving", 9003, "m"));
        save(registry);
        assertThat(registry.saveModelsEvery(vertx)).isEqualTo(-1);
        assertThat(Files.list(dir)).isEmpty();
    }

    @Test
    void aFileThatDoesNotRead_refusesTheStart_namingTheFile() throws Exception {
        Path file = dir.resolve("models.json");
        String good = "\"name\": \"m\", \"hash\": \"h\", \"max_context\": 1, \"chat_template_tokens\": 0,"
                + " \"chat_message_tokens\": 0, \"created\": 1, \"last_served\": \"2025-06-01T12:00:00Z\"";
        for (String bad : new String[] {"{\"models\": [", "[]", "{}", "{\"models\": {}}", "{\"models\": [7]}",
                "{\"models\": [{" + good + "}]}", "{\"models\": [{\"key\": \"x\", " + good + "}]}",
                "{\"models\": [{\"key\": \"m\", " + good.replace("2025-06-01T12:00:00Z", "noon") + "}]}",
                "{\"models\": [{\"key\": \"m\", " + good.replace("\"max_context\": 1", "\"max_context\": -1") + "}]}",
                "{\"models\": [{\"key\": \"m\", " + good.replace("\"created\": 1", "\"created\": \"1\"") + "}]}"}) {
            Files.writeString(file, bad);
            assertThatThrownBy(() -> ServedModels.load(file)).as(bad).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageStartingWith("the known models in " + file + " do not read: ")
                    .hasMessageEndingWith("; fix or remove it)");
        }
        Files.writeString(file, "{\"models\": [{\"key\": \"m@h\", " + good + "}]}");
        assertThat(ServedModels.load(file).loaded()).singleElement().satisfies(s -> assertThat(s.key()).isEqualTo("m@h"));
    }

    @Test
    void aSaveThatFails_failsItsFuture() throws Exception {
        Path state = dir.resolve("state");
        WorkerRegistry registry = registry(state.resolve("models.json"), new AtomicLong());
        Files.writeString(state, "a file where its directory should be");
        registry.register(hello("serving", 9003, "m"));
        assertThat(registry.saveModels(vertx).toCompletionStage().toCompletableFuture().handle((ok, e) -> e)
                .get(10, TimeUnit.SECONDS)).isNotNull();
    }

    private static void pick(WorkerRegistry registry, String model) {
        registry.pick(new WorkerRegistry.Route(model, ServiceTier.DEFAULT, Set.of(), 0));
    }

    private void save(WorkerRegistry registry) throws Exception {
        registry.saveModels(vertx).toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
}
