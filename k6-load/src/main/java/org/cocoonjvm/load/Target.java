package org.cocoonjvm.load;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonArray;
import java.net.URI;

/**
 * Where load goes: an OpenAI-compatible base URL (the gateway, or a worker's own endpoint), its
 * bearer key, and the model to ask for.
 */
public record Target(URI baseUrl, String apiKey, String model) {
    public Target {
        if (baseUrl == null || !"http".equals(baseUrl.getScheme()) || baseUrl.getHost() == null) {
            throw new ScenarioException("the target URL must be http://host[:port], got " + baseUrl);
        }
        if (apiKey == null || apiKey.isBlank()) {
            throw new ScenarioException("an API key is required");
        }
    }

    /** The first model {@code GET /v1/models} lists: what to ask for when the command line names none. */
    public static Future<String> firstModel(Vertx vertx, URI baseUrl, String apiKey) {
        Target probe = new Target(baseUrl, apiKey, "");
        HttpClient client = vertx.createHttpClient();
        String base = baseUrl.getPath() == null ? "" : baseUrl.getPath().replaceAll("/+$", "");
        return client.request(new RequestOptions().setMethod(HttpMethod.GET).setHost(baseUrl.getHost()).setPort(probe.port())
                        .setURI(base + "/v1/models").putHeader("Authorization", "Bearer " + apiKey))
                .compose(r -> r.send().compose(response -> response.body().map(body -> {
                    if (response.statusCode() != 200) {
                        throw new ScenarioException("GET " + baseUrl + "/v1/models answered " + response.statusCode() + ": " + body);
                    }
                    JsonArray data = body.toJsonObject().getJsonArray("data");
                    if (data == null || data.isEmpty()) {
                        throw new ScenarioException(baseUrl + " serves no model yet (GET /v1/models is empty)");
                    }
                    return data.getJsonObject(0).getString("id");
                })))
                .eventually(client::close);
    }

    public int port() {
        return baseUrl.getPort() > 0 ? baseUrl.getPort() : 80;
    }
}
