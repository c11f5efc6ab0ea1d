package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.await;
import static org.cocoonjvm.gateway.TestNetwork.chat;

import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.cocoonjvm.protocol.grpc.InferenceGrpcClient;
import org.cocoonjvm.protocol.grpc.ModelsRequest;
import org.cocoonjvm.protocol.grpc.ModelsResponse;
import org.cocoonjvm.protocol.grpc.ServedModel;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** {@code GET /v1/models}, {@code GET /v1/models/{id}} and {@code Inference.Models}: what a client can ask for, and at what price. */
class ModelsTest {
    private final TestNetwork net = new TestNetwork();

    @AfterEach
    void stop() {
        net.close();
    }

    private JsonArray listed() {
        TestNetwork.Reply reply = net.call(HttpMethod.GET, "/v1/models", API_KEY, null);
        assertThat(reply.status()).isEqualTo(200);
        return reply.json().getJsonArray("data");
    }

    private ModelsResponse grpcModels() {
        InferenceGrpc grpc = new InferenceGrpc(net);
        return await(net.onClientContext(() -> grpc.client().request(grpc.gateway(), InferenceGrpcClient.Models).compose(request -> {
            request.headers().set("authorization", "Bearer " + API_KEY);
            return request.send(ModelsRequest.getDefaultInstance());
        }).compose(response -> response.last())));
    }

    @Test
    void aModelWhoseLastWorkerLeft_isStillListedWithNoWorkers_whileCompletionsAskToRetry() {
        net.addWorker(1000);
        JsonObject served = listed().getJsonObject(0);
        assertThat(served.getInteger("workers")).isEqualTo(1);

        net.stopWorker(0);
        TestNetwork.eventually("the gateway dropped the worker", () -> net.gateway.registry().all().isEmpty());

        // Served a moment ago: a retryable 503 (its worker may be restarting), not a final 404 ...
        TestNetwork.Reply completion = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, ""));
        assertThat(completion.status()).isEqualTo(503);
        assertThat(completion.json().getJsonObject("error").getString("code")).isEqualTo("no_capacity");
        assertThat(completion.response().getHeader("Retry-After")).isEqualTo("5");
        // ... and the model list says the same: the model is there, with no worker now, as it was.
        JsonObject waiting = served.copy().put("workers", 0).put("attested_workers", 0);
        assertThat(listed()).containsExactly(waiting);
        TestNetwork.Reply one = net.call(HttpMethod.GET, "/v1/models/synthetic", API_KEY, null);
        assertThat(one.status()).isEqualTo(200);
        assertThat(one.json()).isEqualTo(waiting);
        // Pinned to its weights, as a completion may name it.
        String pinned = "synthetic@" + served.getString("hash");
        TestNetwork.Reply byHash = net.call(HttpMethod.GET, "/v1/models/" + pinned, API_KEY, null);
        assertThat(byHash.status()).isEqualTo(200);
        assertThat(byHash.json()).isEqualTo(waiting.copy().put("id", pinned));
        assertThat(net.call(HttpMethod.GET, "/v1/models/synthetic@00", API_KEY, null).status()).isEqualTo(404);
        ServedModel overGrpc = grpcModels().getModels(0);
        assertThat(overGrpc.getId()).isEqualTo("synthetic");
        assertThat(overGrpc.getWorkers()).isZero();
        assertThat(overGrpc.getHash()).isEqualTo(served.getString("hash"));
        assertThat(overGrpc.getMaxContext()).isEqualTo(4096);

        // A model nobody served is still unknown everywhere.
        assertThat(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("never-served", false, "")).status())
                .isEqualTo(404);
        assertThat(net.call(HttpMethod.GET, "/v1/models/never-served", API_KEY, null).status()).isEqualTo(404);
    }

    @Test
    void created_isWhenTheGatewayFirstSawTheModelServed() throws Exception {
        long before = System.currentTimeMillis() / 1000;
        net.addWorker(1000);
        long after = System.currentTimeMillis() / 1000;
        long created = listed().getJsonObject(0).getLong("created");
        assertThat(created).isBetween(before, after);
        assertThat(grpcModels().getModels(0).getCreated()).isEqualTo(created);

        Thread.sleep(1_100);  // a later second: a new registration must not move it
        net.addWorker(1000);
        net.stopWorker(0);
        assertThat(listed().getJsonObject(0).getLong("created")).isEqualTo(created);
    }

    @Test
    void eachModel_showsWhatARequestIsHeldAtPerToken() {
        net.addWorker(1000);
        // TestNetwork's price is 2 nanoTON a token; a reservation covers the highest worker coefficient, 4.0x.
        JsonObject model = listed().getJsonObject(0);
        assertThat(model.getLong("price_nanoton_per_token")).isEqualTo(2);
        assertThat(model.getDouble("reserved_nanoton_per_token")).isEqualTo(8.0);
        assertThat(grpcModels().getModels(0).getReservedNanotonPerToken()).isEqualTo(8.0);
    }
}
