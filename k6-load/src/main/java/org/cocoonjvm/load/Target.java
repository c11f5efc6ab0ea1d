package org.cocoonjvm.load;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.net.URISyntaxException;

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

    /**
     * The base URL an operator typed for {@code option} ({@code --url}), as the driver uses it:
     * {@code http://host[:port]}, with any path prefix it has kept. A trailing {@code /} and a
     * trailing {@code /v1} (the base URL OpenAI SDKs take, which the root README gives) are dropped,
     * since the driver adds {@code /v1/…} itself: {@code http://h:8080/v1/} means {@code http://h:8080}.
     * Anything else is refused in one line naming the option and the value as typed.
     */
    public static URI baseUrl(String text, String option) {
        String shown = "'" + text + "'";
        if (text == null || text.isBlank()) {
            throw new ScenarioException(option + " must be an http:// URL (http://host[:port]), got " + shown);
        }
        URI uri;
        try {
            uri = new URI(text.strip());
        } catch (URISyntaxException e) {
            throw new ScenarioException(option + " must be an http:// URL (http://host[:port]), got " + shown);
        }
        if ("https".equalsIgnoreCase(uri.getScheme())) {
            throw new ScenarioException(option + " must be plain http://host[:port], got " + shown
                    + "; for an RA-TLS gateway, name the port of ./cocoon attest proxy (k6-load/README.md)");
        }
        if (!"http".equalsIgnoreCase(uri.getScheme()) || uri.getHost() == null) {
            throw new ScenarioException(option + " must be an http:// URL (http://host[:port]), got " + shown);
        }
        if (uri.getRawQuery() != null || uri.getRawFragment() != null || uri.getRawUserInfo() != null) {
            throw new ScenarioException(option + " must be a base URL, http://host[:port], without user, ?query or #fragment, got "
                    + shown);
        }
        String path = uri.getRawPath() == null ? "" : uri.getRawPath().replaceFirst("/+$", "").replaceFirst("/v1$", "");
        return URI.create("http://" + uri.getRawAuthority() + path);
    }

    /**
     * The first model {@code GET /v1/models} lists: what to ask for when the command line names none.
     * Fails with a {@link ScenarioException} of one line when the target is unusable: a refused key,
     * an address where nothing answers, something other than an OpenAI-compatible API.
     */
    public static Future<String> firstModel(Vertx vertx, URI baseUrl, String apiKey) {
        Target probe = new Target(baseUrl, apiKey, "");
        HttpClient client = vertx.createHttpClient();
        String base = baseUrl.getPath() == null ? "" : baseUrl.getPath().replaceAll("/+$", "");
        String models = "GET " + baseUrl + "/v1/models";
        RequestOptions get = new RequestOptions().setMethod(HttpMethod.GET).setHost(baseUrl.getHost()).setPort(probe.port())
                .setURI(base + "/v1/models").putHeader("Authorization", "Bearer " + apiKey)
                .setConnectTimeout(PROBE_TIMEOUT_MS).setIdleTimeout(PROBE_TIMEOUT_MS);
        // Started on an event loop, not on the caller's thread: built from there stage by stage while
        // the loop already runs the first, the chain could attach body() after the response had
        // ended, and nothing would complete it.
        Promise<String> answer = Promise.promise();
        vertx.getOrCreateContext().runOnContext(v -> probeModels(client, get, baseUrl, models).onComplete(answer));
        return answer.future();
    }

    private static Future<String> probeModels(HttpClient client, RequestOptions get, URI baseUrl, String models) {
        return client.request(get)
                .recover(e -> Future.failedFuture(new ScenarioException("cannot connect to " + baseUrl + ": "
                        + withoutAddress(e.getMessage()) + "; check --url")))
                .compose(r -> r.send().compose(response -> response.body().map(body -> {
                    if (response.statusCode() != 200) {
                        throw new ScenarioException(models + " answered " + response.statusCode() + " " + errorOf(body)
                                + (response.statusCode() == 401 || response.statusCode() == 403 ? "; check --key" : "; check --url"));
                    }
                    JsonArray data;
                    try {
                        data = body.toJsonObject().getJsonArray("data");
                    } catch (RuntimeException notAList) {
                        throw new ScenarioException(models + " answered no model list (" + shown(body) + "); check --url");
                    }
                    if (data == null || data.isEmpty()) {
                        throw new ScenarioException(baseUrl + " serves no model yet (GET /v1/models is empty)");
                    }
                    return data.getJsonObject(0).getString("id");
                })))
                .recover(e -> Future.failedFuture(e instanceof ScenarioException ? e
                        : new ScenarioException(models + " failed: " + e.getMessage() + "; check --url")))
                .eventually(client::close);
    }

    /** Connecting, and then each wait for the answer's next bytes; the load itself is bounded by the scenario. */
    private static final int PROBE_TIMEOUT_MS = 10_000;

    /** An OpenAI error body as its code and message; any other body as it is, shortened. */
    private static String errorOf(Buffer body) {
        try {
            JsonObject error = body.toJsonObject().getJsonObject("error");
            if (error != null && error.getString("message") != null) {
                Object code = error.getValue("code") != null ? error.getValue("code") : error.getValue("type");
                return (code == null ? "" : code + ": ") + error.getString("message").replaceAll("\\.$", "");
            }
        } catch (RuntimeException notAnError) {
            // shown as it came
        }
        return shown(body);
    }

    /** Netty names the address after the reason ("Connection refused: /127.0.0.1:8080"); the line names the URL already. */
    private static String withoutAddress(String reason) {
        return String.valueOf(reason).replaceFirst(": /\\S+$", "");
    }

    private static String shown(Buffer body) {
        String text = body.toString().strip().replaceAll("\\s+", " ");
        return text.isEmpty() ? "an empty body" : text.length() > 200 ? text.substring(0, 200) + "…" : text;
    }

    public int port() {
        return baseUrl.getPort() > 0 ? baseUrl.getPort() : 80;
    }
}
