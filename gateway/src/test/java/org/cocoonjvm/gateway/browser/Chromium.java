package org.cocoonjvm.gateway.browser;

import io.vertx.core.json.Json;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * A headless Chromium with one page, driven over the DevTools protocol on its WebSocket: just
 * enough of the protocol to load a page and call the functions it defines.
 *
 * <p>The browser is {@code $COCOON_CHROMIUM}, else the binary of Debian's
 * {@code chromium-headless-shell} or {@code chromium} package. Closing it kills its whole process
 * tree and deletes its profile.
 */
public final class Chromium implements AutoCloseable {
    /** Generous: a cold browser on a busy 2-core machine takes seconds to start or to load a page. */
    private static final long TIMEOUT_SECONDS = 30;
    private static final List<Path> DEBIAN_BINARIES = List.of(
            Path.of("/usr/lib/chromium/chromium-headless-shell"), Path.of("/usr/lib/chromium/chromium"));

    private final Process process;
    private final Path dir;
    private final HttpClient http = HttpClient.newHttpClient();
    private final AtomicInteger ids = new AtomicInteger();
    private final Map<Integer, CompletableFuture<JsonObject>> replies = new ConcurrentHashMap<>();
    /** Events someone waits for, by method: the next one of each completes its future. */
    private final Map<String, CompletableFuture<JsonObject>> awaited = new ConcurrentHashMap<>();
    private WebSocket socket;
    /** The page's session: commands sent with it go to the page rather than the browser. */
    private String page;

    private Chromium(Process process, Path dir) {
        this.process = process;
        this.dir = dir;
    }

    /** The browser to run, or empty when this machine has none. */
    public static Optional<Path> find() {
        String override = System.getenv("COCOON_CHROMIUM");
        if (override != null && !override.isBlank()) {
            return Optional.of(Path.of(override));  // launching it says so if it is no browser
        }
        return DEBIAN_BINARIES.stream().filter(Files::isExecutable).findFirst();
    }

    /** Starts {@code binary} with a fresh profile and opens a blank page in it. */
    public static Chromium launch(Path binary) throws IOException {
        Path dir = Files.createTempDirectory("cocoon-chromium");
        // Port 0: the browser picks a free one and writes it to DevToolsActivePort in its profile.
        // No sandbox: it refuses to start as root with one, and it loads only the tests' own pages.
        ProcessBuilder command = new ProcessBuilder(binary.toString(), "--headless", "--no-sandbox",
                "--remote-debugging-port=0", "--user-data-dir=" + dir.resolve("profile"))
                .redirectErrorStream(true).redirectOutput(dir.resolve("chromium.log").toFile());
        Chromium chromium;
        try {
            chromium = new Chromium(command.start(), dir);
        } catch (IOException e) {
            delete(dir);
            throw e;
        }
        try {
            chromium.connect();
            return chromium;
        } catch (RuntimeException e) {
            chromium.close();
            throw e;
        }
    }

    private void connect() {
        List<String> port = devToolsActivePort();
        socket = await(http.newWebSocketBuilder().buildAsync(
                URI.create("ws://127.0.0.1:" + port.get(0) + port.get(1)), new Messages()), "the DevTools WebSocket");
        String target = send(null, "Target.createTarget", new JsonObject().put("url", "about:blank")).getString("targetId");
        page = send(null, "Target.attachToTarget", new JsonObject().put("targetId", target).put("flatten", true))
                .getString("sessionId");
        send(page, "Page.enable", new JsonObject());  // for its load events
    }

    /** The file's two lines, port and browser WebSocket path, once the browser has written both. */
    private List<String> devToolsActivePort() {
        Path file = dir.resolve("profile").resolve("DevToolsActivePort");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
        while (System.nanoTime() < deadline && process.isAlive()) {
            try {
                List<String> lines = Files.readAllLines(file);
                if (lines.size() == 2) {
                    return lines;
                }
            } catch (NoSuchFileException e) {
                // not written yet
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            sleep(50);
        }
        throw new IllegalStateException("Chromium wrote no DevToolsActivePort (" + (process.isAlive() ? "still running"
                : "exited " + process.exitValue()) + "); its output:\n" + log());
    }

    /** Loads {@code url} in the page and returns once its load event fired. */
    public void navigate(String url) {
        CompletableFuture<JsonObject> loaded = new CompletableFuture<>();
        awaited.put("Page.loadEventFired", loaded);
        JsonObject navigated = send(page, "Page.navigate", new JsonObject().put("url", url));
        if (navigated.getString("errorText") != null) {
            throw new IllegalStateException("could not load " + url + ": " + navigated.getString("errorText"));
        }
        await(loaded, "the load of " + url);
    }

    /**
     * Calls the page's function {@code function} with {@code args} (each passed as JSON) and
     * returns the object it returns, or its promise resolves to.
     */
    public JsonObject call(String function, Object... args) {
        String expression = function + "(" + Arrays.stream(args).map(Json::encode).collect(Collectors.joining(", ")) + ")";
        JsonObject evaluated = send(page, "Runtime.evaluate", new JsonObject().put("expression", expression)
                .put("awaitPromise", true).put("returnByValue", true));
        JsonObject thrown = evaluated.getJsonObject("exceptionDetails");
        if (thrown != null) {
            JsonObject exception = thrown.getJsonObject("exception");
            throw new IllegalStateException(function + " threw: "
                    + (exception != null ? exception.getString("description") : thrown.getString("text")));
        }
        return evaluated.getJsonObject("result").getJsonObject("value");
    }

    /** @param session the page's session, or null for the browser itself */
    private JsonObject send(String session, String method, JsonObject params) {
        int id = ids.incrementAndGet();
        CompletableFuture<JsonObject> reply = new CompletableFuture<>();
        replies.put(id, reply);
        JsonObject message = new JsonObject().put("id", id).put("method", method).put("params", params);
        if (session != null) {
            message.put("sessionId", session);
        }
        // One send at a time: the WebSocket refuses a message while the last is still being sent.
        await(socket.sendText(message.encode(), true), method);
        return await(reply, method);
    }

    private <T> T await(CompletionStage<T> stage, String what) {
        try {
            return stage.toCompletableFuture().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            throw new IllegalStateException(what + " failed: " + e.getCause().getMessage(), e.getCause());
        } catch (TimeoutException e) {
            throw new IllegalStateException(what + ": nothing in " + TIMEOUT_SECONDS + " s; Chromium's output:\n" + log());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(what + ": interrupted", e);
        }
    }

    /** Routes each message from the browser: a reply to its command, or an event to whoever waits for it. */
    private final class Messages implements WebSocket.Listener {
        private final StringBuilder partial = new StringBuilder();

        @Override
        public CompletionStage<?> onText(WebSocket ws, CharSequence data, boolean last) {
            partial.append(data);
            if (last) {
                dispatch(new JsonObject(partial.toString()));
                partial.setLength(0);
            }
            ws.request(1);
            return null;
        }

        private void dispatch(JsonObject message) {
            Integer id = message.getInteger("id");
            if (id == null) {
                CompletableFuture<JsonObject> waiting = awaited.remove(message.getString("method"));
                if (waiting != null) {
                    waiting.complete(message.getJsonObject("params"));
                }
                return;
            }
            CompletableFuture<JsonObject> reply = replies.remove(id);
            JsonObject error = message.getJsonObject("error");
            if (error != null) {
                reply.completeExceptionally(new IllegalStateException(error.encode()));
            } else {
                reply.complete(message.getJsonObject("result"));
            }
        }

        @Override
        public CompletionStage<?> onClose(WebSocket ws, int status, String reason) {
            failAll(new IllegalStateException("the DevTools WebSocket closed: " + status + " " + reason));
            return null;
        }

        @Override
        public void onError(WebSocket ws, Throwable error) {
            failAll(error);
        }

        private void failAll(Throwable cause) {
            replies.values().forEach(reply -> reply.completeExceptionally(cause));
            awaited.values().forEach(event -> event.completeExceptionally(cause));
        }
    }

    private String log() {
        try {
            return Files.readString(dir.resolve("chromium.log"));
        } catch (IOException e) {
            return "(unreadable: " + e + ")";
        }
    }

    @Override
    public void close() {
        if (socket != null) {
            socket.abort();
        }
        http.close();
        // Children first in the list, taken before the browser dies: orphans drop out of descendants().
        List<ProcessHandle> tree = Stream.concat(process.descendants(), Stream.of(process.toHandle())).toList();
        tree.forEach(ProcessHandle::destroyForcibly);
        for (ProcessHandle p : tree) {
            p.onExit().orTimeout(TIMEOUT_SECONDS, TimeUnit.SECONDS).join();
        }
        delete(dir);
    }

    private static void delete(Path dir) {
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("could not delete " + dir, e);
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
