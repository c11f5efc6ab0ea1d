package org.cocoonjvm.worker.kernels;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.worker.ClientChains;
import org.cocoonjvm.worker.engine.BrokenChatTemplate;
import org.cocoonjvm.worker.model.ModelFormat;
import org.cocoonjvm.worker.model.ModelLoader;
import org.cocoonjvm.worker.model.RandomModel;
import org.cocoonjvm.worker.model.RandomModelSpec;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.cocoonjvm.worker.serve.WorkerOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A worker checks its model's chat template when it starts: a template that cannot render a plain
 * conversation stops the start; a model without one starts, and its chat requests fail as the
 * worker's error, not the client's. Real random model on the native engine, real HTTP.
 */
class ChatTemplateAtStartTest {
    @TempDir
    Path dir;
    private Vertx vertx;
    private Path hf;

    @BeforeEach
    void model() throws Exception {
        vertx = Vertx.vertx();
        hf = RandomModel.write(RandomModelSpec.tiny("qwen2"), dir, Set.of(ModelFormat.HF)).hfDir();
    }

    @AfterEach
    void stop() {
        await(vertx.close());
    }

    private void setTemplate(String template) throws Exception {
        Path config = hf.resolve("tokenizer_config.json");
        JsonObject c = new JsonObject(Files.readString(config));
        if (template == null) {
            c.remove("chat_template");
        } else {
            c.put("chat_template", template);
        }
        Files.writeString(config, c.encode());
    }

    private Future<String> deploy(WorkerNode node) {
        return vertx.deployVerticle(node);
    }

    private WorkerNode worker() throws Exception {
        return new WorkerNode(new NativeEngine(ModelLoader.load(hf), new NativeEngineOptions(1, 2, 256, 16, 256)),
                new WorkerOptions("templates", "127.0.0.1", 0, null, null, SchedulerOptions.DEFAULTS, 0));
    }

    @Test
    void templateWithASyntaxError_stopsTheStart() throws Exception {
        setTemplate("{% for m in messages %}{{ m['content'] }{% endfor %}");

        Throwable failure = catchFailure(deploy(worker()));

        assertThat(failure).isInstanceOf(BrokenChatTemplate.class)
                .hasMessageStartingWith("the model's chat template cannot render a sample conversation (a system and a user message)");
    }

    @Test
    void templateThatRefusesSystemMessagesOnPurpose_starts() throws Exception {
        setTemplate("{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
                + "{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                + "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}");

        await(deploy(worker()));
    }

    @Test
    void modelWithoutATemplate_starts_andChatIsRefusedAsNotAChatModel() throws Exception {
        setTemplate(null);
        WorkerNode node = worker();
        await(deploy(node));

        URI uri = URI.create(node.endpoint());
        String body = "{\"model\":\"" + node.model().name() + "\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
                + "\"max_tokens\":2}";
        JsonObject[] reply = new JsonObject[1];
        int status = await(ClientChains.onContext(vertx, () -> vertx.createHttpClient().request(new RequestOptions()
                        .setMethod(HttpMethod.POST).setHost(uri.getHost()).setPort(uri.getPort()).setURI("/v1/chat/completions")
                        .putHeader("Content-Type", "application/json"))
                .compose(r -> r.send(body)).compose(r -> r.body().map(b -> {
                    reply[0] = b.toJsonObject();
                    return r.statusCode();
                }))));

        assertThat(status).isEqualTo(400);
        JsonObject error = reply[0].getJsonObject("error");
        assertThat(error.getString("type")).isEqualTo("invalid_request_error");
        assertThat(error.getString("param")).isEqualTo("model");
        assertThat(error.getString("message")).contains("has no chat template").contains("/v1/completions");
    }

    private static Throwable catchFailure(Future<?> future) {
        try {
            future.toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            return e.getCause();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
        throw new AssertionError("the worker started");
    }

    private static <T> T await(Future<T> future) {
        try {
            return future.toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }
}
