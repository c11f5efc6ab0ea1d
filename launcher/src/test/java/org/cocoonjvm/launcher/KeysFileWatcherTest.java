package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.cocoonjvm.gateway.api.ApiKey;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.protocol.openai.BearerKeys;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/** A gateway's keys file read again when it changes: keys added, revoked and re-limited, and a broken file ignored. */
class KeysFileWatcherTest {
    @TempDir
    Path dir;

    private final List<Map<String, ApiKey>> taken = new ArrayList<>();
    private final Logger logger = (Logger) LoggerFactory.getLogger(KeysFileWatcher.class);
    private final ListAppender<ILoggingEvent> log = new ListAppender<>();
    private Path file;
    private KeysFileWatcher watcher;
    private long modified = 1_000_000;

    @BeforeEach
    void start() throws Exception {
        log.start();
        logger.addAppender(log);
        file = write("sk-alice\nsk-bob rpm=10\n");
        watcher = KeysFileWatcher.start(file, List.of("sk-cli"), keys("sk-cli", "sk-alice", "sk-bob rpm=10"),
                lines -> ClientKeys.byDigest(lines, KeyLimits.UNLIMITED), taken::add);
    }

    @AfterEach
    void stop() {
        watcher.close();
        logger.detachAppender(log);
    }

    @Test
    void theFileAsTheGatewayReadItAtStart_changesNothing() {
        watcher.check();
        watcher.check();
        assertThat(taken).isEmpty();
        assertThat(log.list).isEmpty();
    }

    @Test
    void anEditedFile_isTaken_withTheCommandLinesKeys_andTheChangeIsLoggedByKeyId() throws Exception {
        write("sk-alice\nsk-bob rpm=20\nsk-carol\n");
        watcher.check();

        assertThat(taken).hasSize(1);
        Map<String, ApiKey> now = taken.getFirst();
        assertThat(now).containsOnlyKeys(digests("sk-cli", "sk-alice", "sk-bob", "sk-carol"));
        assertThat(now.get(BearerKeys.hash("sk-bob")).limits().requestsPerMinute()).isEqualTo(20);
        assertThat(log.list).singleElement().satisfies(e -> assertThat(e.getFormattedMessage())
                .contains("4 keys now", "added [" + id("sk-carol") + "]", "removed []", "changed [" + id("sk-bob") + "]")
                .doesNotContain("sk-carol"));

        write("sk-alice\n");  // bob and carol revoked
        watcher.check();
        assertThat(taken.getLast()).containsOnlyKeys(digests("sk-cli", "sk-alice"));
    }

    @Test
    void aBrokenFile_keepsTheKeysTheGatewayHas_warnsOnce_andIsTakenWhenFixed() throws Exception {
        write("sk-alice\nsk-bob rps=10\n");
        watcher.check();
        watcher.check();
        assertThat(taken).isEmpty();
        assertThat(log.list).singleElement().satisfies(e -> {
            assertThat(e.getLevel()).isEqualTo(Level.WARN);
            assertThat(e.getFormattedMessage()).contains("\"rps\", which is no limit", "keeps its 3 keys");
        });

        write("sk-alice\nsk-bob rpm=10\nsk-dave\n");
        watcher.check();
        assertThat(taken).singleElement().satisfies(keys -> assertThat(keys).containsKey(BearerKeys.hash("sk-dave")));
    }

    @Test
    void aFileEmptiedOrRemoved_keepsTheKeys_whereNoOtherKeyIsLeft() throws Exception {
        watcher.close();
        watcher = KeysFileWatcher.start(file, List.of(), keys("sk-alice", "sk-bob rpm=10"),
                lines -> ClientKeys.byDigest(lines, KeyLimits.UNLIMITED), taken::add);
        write("# nobody\n");
        watcher.check();
        Files.delete(file);
        watcher.check();
        assertThat(taken).isEmpty();
        assertThat(log.list).extracting(ILoggingEvent::getFormattedMessage)
                .anySatisfy(m -> assertThat(m).contains("holds no key", "keeps its 2 keys"))
                .anySatisfy(m -> assertThat(m).contains("cannot be read (NoSuchFileException)"));
    }

    @Test
    void aLedgerThatCannotOpenTheNewAccount_isTriedAgainAtTheNextCheck() throws Exception {
        watcher.close();
        boolean[] ledgerUp = {false};
        watcher = KeysFileWatcher.start(file, List.of(), keys("sk-alice", "sk-bob rpm=10"),
                lines -> ClientKeys.byDigest(lines, KeyLimits.UNLIMITED), keys -> {
                    if (!ledgerUp[0]) {
                        throw new IllegalStateException("ledger unreachable");
                    }
                    taken.add(keys);
                });
        write("sk-alice\nsk-erin\n");
        watcher.check();
        assertThat(taken).isEmpty();
        assertThat(log.list).extracting(ILoggingEvent::getFormattedMessage)
                .anySatisfy(m -> assertThat(m).contains("could not take its keys (ledger unreachable)"));

        ledgerUp[0] = true;
        watcher.check();
        assertThat(taken).singleElement().satisfies(keys -> assertThat(keys).containsKey(BearerKeys.hash("sk-erin")));
    }

    /** Each write gets a later modification time: two writes within a clock tick would look the same. */
    private Path write(String text) throws Exception {
        Path path = dir.resolve("keys");
        Files.writeString(path, text);
        Files.setLastModifiedTime(path, FileTime.fromMillis(modified += 1_000));
        return path;
    }

    private static Map<String, ApiKey> keys(String... lines) {
        return ClientKeys.byDigest(List.of(lines), KeyLimits.UNLIMITED);
    }

    private static String[] digests(String... keys) {
        return java.util.Arrays.stream(keys).map(BearerKeys::hash).toArray(String[]::new);
    }

    private static String id(String key) {
        return "key-" + BearerKeys.hash(key).substring(0, 16);
    }
}
