package org.cocoonjvm.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.RequestOptions;
import java.net.URI;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.cocoonjvm.worker.model.ModelFormat;
import org.cocoonjvm.worker.model.RandomModel;
import org.cocoonjvm.worker.scheduler.CreditGate;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.cocoonjvm.worker.serve.WorkerOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/**
 * The engine options as {@code cocoon worker} reads them: the {@code forward} engine's against a
 * real upstream on loopback, and which engine each option is for.
 */
class EngineChoiceTest {
    private static final String KEY = "sekrit-upstream-key";

    @TempDir
    Path dir;
    private Vertx vertx;
    private final ListAppender<ILoggingEvent> log = new ListAppender<>();

    @BeforeEach
    void start() {
        vertx = Vertx.vertx();
        log.start();
        root().addAppender(log);
    }

    @AfterEach
    void stop() {
        root().detachAppender(log);
        await(vertx.close());
    }

    private static Logger root() {
        return (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    }

    /** The engine options of {@code cocoon worker --id w ARGS}: a mixin, which sees what else was given. */
    private static EngineChoice parse(String... args) {
        CommandLine worker = new CommandLine(new WorkerCommand());
        worker.parseArgs(Stream.concat(Stream.of("--id", "w"), Stream.of(args)).toArray(String[]::new));
        return ((WorkerCommand) worker.getCommand()).engine;
    }

    /**
     * An upstream that wants a key and stalls after its first chunk: the key reaches it, the
     * URL in the OpenAI clients' form with /v1 finds it, and the stream fails after the idle timeout.
     */
    @Test
    void forwardApiKeyAndIdleTimeout_reachTheForwarder_andTheKeyIsNeverLogged() throws Exception {
        Promise<Void> modelsAsked = Promise.promise();
        HttpServer upstream = await(vertx.createHttpServer().requestHandler(request -> {
            if (!("Bearer " + KEY).equals(request.getHeader("Authorization"))) {
                request.response().setStatusCode(401).end();
            } else if (request.method() == HttpMethod.GET) {
                request.response().end("{\"object\":\"list\",\"data\":[{\"id\":\"upstream-model\"}]}")
                        .onComplete(v -> modelsAsked.tryComplete());
            } else {
                request.response().setChunked(true).putHeader("Content-Type", "text/event-stream")
                        .write("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}]}\n\n");
            }
        }).listen(0, "127.0.0.1"));
        Path model = RandomModel.write(EngineChoice.DEMO_MODEL, dir, Set.of(ModelFormat.HF)).hfDir();
        EngineChoice engine = parse("--engine", "forward", "--model", model.toString(),
                "--forward-url", "http://127.0.0.1:" + upstream.actualPort() + "/v1", "--forward-model", "upstream-model",
                "--forward-api-key", KEY, "--forward-idle-timeout-seconds", "1");
        WorkerNode node = new WorkerNode(engine.create(vertx, SchedulerOptions.DEFAULTS, CreditGate.NONE),
                new WorkerOptions("forwarder", "127.0.0.1", 0, null, null, SchedulerOptions.DEFAULTS, 1000));
        await(vertx.deployVerticle(node));
        await(modelsAsked.future());  // the start's check of the upstream is over before the request

        URI uri = URI.create(node.endpoint());
        long start = System.nanoTime();
        // Started on an event loop, not the test thread (as worker-node's tests' ClientChains): a chain
        // started from the test thread now and then never completed a response that had arrived.
        Promise<Buffer> answered = Promise.promise();
        vertx.runOnContext(v -> vertx.createHttpClient().request(new RequestOptions().setMethod(HttpMethod.POST)
                        .setHost(uri.getHost()).setPort(uri.getPort()).setURI("/v1/chat/completions")
                        .putHeader("Content-Type", "application/json"))
                .compose(r -> r.send("{\"model\":\"" + node.model().name() + "\",\"stream\":true,"
                        + "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"))
                .compose(HttpClientResponse::body).onComplete(answered));
        String body = await(answered.future()).toString();

        assertThat(body).contains("\"content\":\"Hello\"").contains("the upstream server sent nothing for 1");
        assertThat(TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - start)).isLessThan(5);
        synchronized (log.list) {
            assertThat(log.list).noneMatch(e -> e.getFormattedMessage().contains(KEY))
                    .noneMatch(e -> e.getFormattedMessage().contains("GET /v1/models"));  // the start's check passed
        }
    }

    @Test
    void everyEngineOption_namesTheEnginesItIsFor() {
        // An option left out would be taken, and ignored, by every engine.
        Set<String> options = new CommandLine(new WorkerCommand()).getCommandSpec().mixins().get("engine").options().stream()
                .map(OptionSpec::longestName).filter(name -> !name.equals("--engine")).collect(Collectors.toSet());
        assertThat(EngineChoice.ENGINES_OF.keySet()).isEqualTo(options);
    }

    /** What a worker's certificate says of its engine: the engine, and where forward sends prompts, without credentials. */
    @Test
    void claims_sayTheEngine_andAForwardersUrlWithoutItsCredentials() {
        assertThat(parse().claims().values()).containsExactly(java.util.Map.entry("engine", "native"),
                java.util.Map.entry("role", "worker"));
        assertThat(parse("--engine", "synthetic").claims().values()).containsEntry("engine", "synthetic");
        assertThat(parse("--engine", "forward", "--model", "m", "--forward-url", "https://user:secret@llm.internal:8000/v1",
                "--forward-model", "x").claims().values()).containsEntry("engine", "forward")
                .containsEntry("forward_url", "https://llm.internal:8000/v1");
    }

    @Test
    void aForwardIdleTimeoutBelowOneSecond_isRefused() {
        assertThatThrownBy(() -> parse("--engine", "forward", "--model", "m", "--forward-url", "http://127.0.0.1:1",
                "--forward-model", "x", "--forward-idle-timeout-seconds", "0").validate())
                .isInstanceOf(Cocoon.UsageException.class)
                .hasMessage("--forward-idle-timeout-seconds must be positive, got 0");
    }

    private static <T> T await(Future<T> future) {
        try {
            return future.toCompletionStage().toCompletableFuture().get(20, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }
}
