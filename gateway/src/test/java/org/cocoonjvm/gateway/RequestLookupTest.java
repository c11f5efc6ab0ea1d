package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.TestNetwork.ACCOUNT;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.chat;

import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import java.time.Instant;
import java.util.Map;
import org.cocoonjvm.billing.accounts.AccountState;
import org.cocoonjvm.gateway.api.ApiKey;
import org.cocoonjvm.gateway.api.CompletionsHandler;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.protocol.openai.BearerKeys;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@code GET /v1/requests/{id}}: a client whose stream ended before its usage came (the user pressed
 * stop) looks up what that request cost, by the stream's {@code x-request-id}, and only its own.
 */
class RequestLookupTest {
    private static final String OTHER_KEY = "sk-other";
    private TestNetwork net;

    @BeforeEach
    void start() {
        net = new TestNetwork();
        net.accounts.open("acct-other");
        net.gateway.replaceApiKeys(Map.of(BearerKeys.hash(API_KEY), new ApiKey("test-key", ACCOUNT, KeyLimits.UNLIMITED),
                BearerKeys.hash(OTHER_KEY), new ApiKey("other-key", "acct-other", KeyLimits.UNLIMITED)));
    }

    @AfterEach
    void stop() {
        net.close();
    }

    @Test
    void aStreamTheClientStopped_isLookedUpByItsRequestId_atWhatItsAccountPaid() {
        net.addWorker(20);   // a full synthetic reply (24+ tokens) takes over a second
        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", true, ""));
        String id = response.getHeader(CompletionsHandler.REQUEST_ID_HEADER);
        SseEvents sse = SseEvents.read(response);
        TestNetwork.eventually("two chunks arrived", () -> sse.size() >= 2);
        String chunkId;
        synchronized (sse) {
            chunkId = new JsonObject(sse.events.getFirst().data()).getString("id");
        }
        response.request().connection().close();
        TestNetwork.eventually("the request is settled", () -> net.accounts.balance(ACCOUNT).reservedNanoton() == 0);

        TestNetwork.Reply reply = net.call(HttpMethod.GET, "/v1/requests/" + id, API_KEY, null);

        assertThat(reply.status()).as(reply.body()).isEqualTo(200);
        JsonObject request = reply.json();
        assertThat(request.getString("id")).startsWith("chatcmpl-").isEqualTo(id);
        assertThat(request.getString("object")).isEqualTo("request");
        assertThat(request.getString("model")).isEqualTo("synthetic");
        assertThat(request.containsKey("worker")).as("workers are the operator's business").isFalse();
        assertThat(request.getLong("settled_at")).isBetween(Instant.now().getEpochSecond() - 60, Instant.now().getEpochSecond());
        JsonObject usage = request.getJsonObject("usage");
        long completion = usage.getLong("completion_tokens");
        assertThat(completion).as("stopped midway").isPositive().isLessThan(24);
        assertThat(usage.getLong("total_tokens")).isEqualTo(usage.getLong("prompt_tokens") + completion);
        assertThat(usage.getJsonObject("prompt_tokens_details").getLong("cached_tokens")).isZero();
        assertThat(usage.getJsonObject("completion_tokens_details").getLong("reasoning_tokens")).isZero();
        long cost = usage.getLong("total_cost");
        // Cocoon's test prices: 2 nanoTON a token.
        assertThat(cost).isEqualTo(2 * usage.getLong("total_tokens"));
        assertThat(net.accounts.balance(ACCOUNT)).as("what the account was charged")
                .isEqualTo(new AccountState(ACCOUNT, TestNetwork.START_BALANCE - cost, 0, cost));
        assertThat(chunkId).as("the chunks' id").isEqualTo(id);
    }

    @Test
    void anotherAccountsRequest_readsAsAnUnknownOne() {
        net.addWorker(1000);
        TestNetwork.Reply completion = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", false, "\"max_tokens\":3"));
        String id = completion.response().getHeader(CompletionsHandler.REQUEST_ID_HEADER);
        String unknown = "chatcmpl-" + "0".repeat(id.length() - "chatcmpl-".length());

        TestNetwork.Reply own = net.call(HttpMethod.GET, "/v1/requests/" + id, API_KEY, null);
        TestNetwork.Reply others = net.call(HttpMethod.GET, "/v1/requests/" + id, OTHER_KEY, null);
        TestNetwork.Reply none = net.call(HttpMethod.GET, "/v1/requests/" + unknown, OTHER_KEY, null);

        assertThat(own.status()).isEqualTo(200);
        assertThat(own.json().getJsonObject("usage").getLong("total_cost"))
                .isEqualTo(completion.json().getJsonObject("usage").getLong("total_cost"));
        assertThat(others.status()).isEqualTo(404);
        JsonObject error = others.json().getJsonObject("error");
        assertThat(error.getString("code")).isEqualTo("not_found");
        assertThat(error.getString("message")).contains(id).contains("settled");
        assertThat(none.status()).isEqualTo(404);
        assertThat(none.body().replace(unknown, id)).as("nothing tells them apart").isEqualTo(others.body());
    }

    @Test
    void aMalformedId_is400_andAMissingKey_401() {
        TestNetwork.Reply spaced = net.call(HttpMethod.GET, "/v1/requests/chatcmpl-a%20b", API_KEY, null);
        TestNetwork.Reply tooLong = net.call(HttpMethod.GET, "/v1/requests/" + "a".repeat(101), API_KEY, null);
        TestNetwork.Reply longest = net.call(HttpMethod.GET, "/v1/requests/" + "a".repeat(100), API_KEY, null);
        TestNetwork.Reply keyless = net.call(HttpMethod.GET, "/v1/requests/chatcmpl-1", null, null);

        assertThat(spaced.status()).isEqualTo(400);
        assertThat(spaced.json().getJsonObject("error").getString("type")).isEqualTo("invalid_request_error");
        assertThat(spaced.json().getJsonObject("error").getString("message")).startsWith("\"chatcmpl-a b\" is not a request id");
        assertThat(tooLong.status()).isEqualTo(400);
        assertThat(longest.status()).isEqualTo(404);
        assertThat(keyless.status()).isEqualTo(401);
    }
}
