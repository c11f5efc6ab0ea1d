package org.cocoonjvm.billing.chain;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.ton.ton4j.address.Address;
import org.ton.ton4j.cell.Cell;
import org.ton.ton4j.toncenter.TonCenter;

import java.io.IOException;
import java.net.ConnectException;
import java.math.BigInteger;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.channels.UnresolvedAddressException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A thin client for the toncenter v2 HTTP API: the calls billing makes, typed. ton4j's own {@link
 * TonCenter} (from {@link #tonCenter()}) drives its wallets; this class covers what ton4j gets
 * wrong or leaves untyped against toncenter (get-method stacks, transaction phases, config cells).
 * Works against toncenter itself and against the local emulator ({@link LocalChain}).
 */
public final class ChainClient {
    private static final Pattern EXIT_CODE =
            Pattern.compile("exit ?code[ =:]*(-?\\d+)", Pattern.CASE_INSENSITIVE);

    private final String endpoint;
    private final HttpClient http;
    private final Duration timeout;

    /** @throws IllegalArgumentException when {@code endpoint} is not an http(s) URL with a host */
    public ChainClient(String endpoint, Duration timeout) {
        if (!isHttpUrl(endpoint)) {
            throw new IllegalArgumentException("must be http(s)://HOST[:PORT][/PATH], got " + endpoint);
        }
        this.endpoint =
                endpoint.endsWith("/") ? endpoint.substring(0, endpoint.length() - 1) : endpoint;
        this.timeout = timeout;
        this.http = HttpClient.newBuilder().connectTimeout(timeout).build();
    }

    private static boolean isHttpUrl(String endpoint) {
        try {
            URI uri = new URI(endpoint);
            return ("http".equals(uri.getScheme()) || "https".equals(uri.getScheme()))
                    && uri.getHost() != null;
        } catch (URISyntaxException e) {
            return false;
        }
    }

    public String endpoint() {
        return endpoint;
    }

    /** ton4j's client on the same endpoint, for {@code WalletV4R2} and friends. */
    public TonCenter tonCenter() {
        return TonCenter.builder().endpoint(endpoint).readTimeout(timeout).build();
    }

    /** Sends a serialized external message; returns its hash (base64). */
    public String sendBoc(Cell externalMessage) {
        JsonObject body = new JsonObject();
        body.addProperty("boc", externalMessage.toBase64());
        JsonObject result = post("/sendBocReturnHash", body).getAsJsonObject();
        return result.get("hash").getAsString();
    }

    public BigInteger balance(Address address) {
        return new BigInteger(
                get("/getAddressBalance", "address", friendly(address)).getAsString());
    }

    /** "uninitialized", "active" or "frozen". */
    public String state(Address address) {
        return get("/getAddressState", "address", friendly(address)).getAsString();
    }

    public GetMethodResult runGetMethod(Address address, String method) {
        JsonObject body = new JsonObject();
        body.addProperty("address", friendly(address));
        body.addProperty("method", method);
        body.add("stack", new JsonArray());
        JsonObject r = post("/runGetMethod", body).getAsJsonObject();
        return new GetMethodResult(
                r.get("exit_code").getAsInt(),
                r.get("gas_used").getAsLong(),
                r.getAsJsonArray("stack"));
    }

    /** The newest {@code limit} transactions, newest first; pass {@code before} to page older. */
    public List<ChainTransaction> transactions(
            Address address, int limit, Optional<ChainTransaction> before) {
        List<String> query =
                new ArrayList<>(
                        List.of("address", friendly(address), "limit", Integer.toString(limit)));
        before.ifPresent(
                tx ->
                        query.addAll(
                                List.of(
                                        "lt",
                                        Long.toString(tx.lt()),
                                        "hash",
                                        tx.hash(),
                                        "to_lt",
                                        "0")));
        List<ChainTransaction> out = new ArrayList<>();
        for (JsonElement e :
                get("/getTransactions", query.toArray(String[]::new)).getAsJsonArray()) {
            out.add(transaction(e.getAsJsonObject()));
        }
        return out;
    }

    /** A blockchain config parameter's cell (e.g. 21: basechain gas prices). */
    public Cell configParam(int id) {
        JsonObject r = get("/getConfigParam", "config_id", Integer.toString(id)).getAsJsonObject();
        byte[] boc =
                Base64.getDecoder().decode(r.getAsJsonObject("config").get("bytes").getAsString());
        return Cell.fromBoc(boc);
    }

    /** The result of a get-method; {@link #num} reads the integer at a top-level position. */
    public record GetMethodResult(int exitCode, long gasUsed, JsonArray stack) {
        public BigInteger num(int index) {
            JsonArray item = stack.get(index).getAsJsonArray();
            if (!item.get(0).getAsString().equals("num")) {
                throw new ChainException(
                        "bad_stack", "stack item " + index + " is " + item.get(0) + ", not num");
            }
            return parseNum(item.get(1).getAsString());
        }

        /** Whether the top-level item at {@code index} is null (a Maybe left empty). */
        public boolean isNull(int index) {
            return "null".equals(stack.get(index).getAsJsonArray().get(0).getAsString());
        }

        /** The cell or slice at top-level {@code index}. */
        public Cell cell(int index) {
            JsonArray item = stack.get(index).getAsJsonArray();
            if (!item.get(0).getAsString().equals("cell")) {
                throw new ChainException(
                        "bad_stack", "stack item " + index + " is " + item.get(0) + ", not cell");
            }
            return Cell.fromBocBase64(item.get(1).getAsJsonObject().get("bytes").getAsString());
        }

        /** The integer at {@code position} inside the tuple at top-level {@code index}. */
        public BigInteger tupleNum(int index, int position) {
            JsonArray item = stack.get(index).getAsJsonArray();
            JsonObject entry =
                    item.get(1)
                            .getAsJsonObject()
                            .getAsJsonArray("elements")
                            .get(position)
                            .getAsJsonObject();
            return new BigInteger(entry.getAsJsonObject("number").get("number").getAsString());
        }

        /** The cell or slice at {@code position} inside the tuple at top-level {@code index}. */
        public Cell tupleCell(int index, int position) {
            JsonObject entry =
                    stack.get(index)
                            .getAsJsonArray()
                            .get(1)
                            .getAsJsonObject()
                            .getAsJsonArray("elements")
                            .get(position)
                            .getAsJsonObject();
            if (!entry.has("cell")) {
                throw new ChainException(
                        "bad_stack",
                        "tuple " + index + " item " + position + " is " + entry + ", not a cell");
            }
            return Cell.fromBocBase64(entry.getAsJsonObject("cell").get("bytes").getAsString());
        }
    }

    static BigInteger parseNum(String hex) {
        boolean negative = hex.startsWith("-");
        BigInteger v = new BigInteger(hex.substring(negative ? 3 : 2), 16);
        return negative ? v.negate() : v;
    }

    static String friendly(Address address) {
        return address.toBounceable();
    }

    private static ChainTransaction transaction(JsonObject t) {
        JsonObject id = t.getAsJsonObject("transaction_id");
        Optional<ChainTransaction.Msg> in =
                t.has("in_msg") && !t.get("in_msg").isJsonNull()
                        ? Optional.of(msg(t.getAsJsonObject("in_msg")))
                        : Optional.empty();
        List<ChainTransaction.Msg> out = new ArrayList<>();
        for (JsonElement m : t.getAsJsonArray("out_msgs")) out.add(msg(m.getAsJsonObject()));
        Optional<ChainTransaction.Phases> phases = Optional.empty();
        if (t.has("description") && t.get("description").isJsonObject()) {
            JsonObject d = t.getAsJsonObject("description");
            phases =
                    Optional.of(
                            new ChainTransaction.Phases(
                                    d.get("aborted").getAsBoolean(),
                                    intOrNull(d.get("compute_exit_code")),
                                    Long.parseLong(d.get("gas_used").getAsString()),
                                    intOrNull(d.get("action_result_code"))));
        }
        return new ChainTransaction(
                id.get("hash").getAsString(),
                Long.parseLong(id.get("lt").getAsString()),
                t.get("utime").getAsLong(),
                new BigInteger(t.get("fee").getAsString()),
                in,
                List.copyOf(out),
                phases);
    }

    private static ChainTransaction.Msg msg(JsonObject m) {
        Optional<String> comment = Optional.empty();
        JsonObject data = m.getAsJsonObject("msg_data");
        if (data != null && "msg.dataText".equals(data.get("@type").getAsString())) {
            comment =
                    Optional.of(
                            new String(
                                    Base64.getDecoder().decode(data.get("text").getAsString()),
                                    StandardCharsets.UTF_8));
        }
        return new ChainTransaction.Msg(
                m.get("source").getAsString(),
                m.get("destination").getAsString(),
                new BigInteger(m.get("value").getAsString()),
                comment);
    }

    private static Integer intOrNull(JsonElement e) {
        return e == null || e.isJsonNull() ? null : e.getAsInt();
    }

    JsonElement get(String path, String... query) {
        StringBuilder url = new StringBuilder(endpoint).append(path);
        for (int i = 0; i < query.length; i += 2) {
            url.append(i == 0 ? '?' : '&')
                    .append(query[i])
                    .append('=')
                    .append(URLEncoder.encode(query[i + 1], StandardCharsets.UTF_8));
        }
        return call(HttpRequest.newBuilder(URI.create(url.toString())).GET(), path);
    }

    JsonElement post(String path, JsonObject body) {
        return call(
                HttpRequest.newBuilder(URI.create(endpoint + path))
                        .header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString(body.toString())),
                path);
    }

    /**
     * The JDK's HttpClient throws a ConnectException without a message for a refused connection,
     * and one whose cause says the host is unknown: said in words.
     */
    private static String unreachable(IOException e) {
        if (e.getMessage() != null) return e.getMessage();
        if (e.getCause() instanceof UnresolvedAddressException) return "unknown host";
        if (e instanceof ConnectException) return "connection refused";
        return e.toString();
    }

    private JsonElement call(HttpRequest.Builder request, String path) {
        HttpResponse<String> response;
        try {
            response =
                    http.send(
                            request.timeout(timeout).build(), HttpResponse.BodyHandlers.ofString());
        } catch (HttpTimeoutException e) {
            throw new ChainException(
                    "timeout",
                    "toncenter " + endpoint + path + " did not answer within " + timeout.toSeconds()
                            + " s",
                    e);
        } catch (IOException e) {
            throw new ChainException(
                    "unreachable", "toncenter " + endpoint + path + ": " + unreachable(e), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ChainException("interrupted", "interrupted while calling " + path, e);
        }
        if (response.statusCode() == 429) {
            throw new ChainException(
                    "rate_limited",
                    "toncenter " + endpoint + path + " is rate-limiting this node (HTTP 429): give"
                            + " it an API key, or call it less often");
        }
        JsonObject envelope;
        try {
            envelope = JsonParser.parseString(response.body()).getAsJsonObject();
        } catch (RuntimeException e) {
            throw new ChainException(
                    "bad_response",
                    endpoint + path + " answered HTTP " + response.statusCode()
                            + " without a JSON envelope"
                            + (response.statusCode() == 404
                                    ? ": " + endpoint + " is not a toncenter v2 API"
                                    : ""));
        }
        if (envelope.has("ok") && envelope.get("ok").getAsBoolean()) return envelope.get("result");
        String error =
                envelope.has("error")
                        ? envelope.get("error").getAsString()
                        : "HTTP " + response.statusCode();
        // toncenter and the emulator both say "not accepted" when the contract refused an external
        // before accepting it; the exit code follows as "exit code N" or "exitcode=N".
        if (path.startsWith("/sendBoc") && error.contains("not accepted")) {
            Matcher m = EXIT_CODE.matcher(error);
            throw new ChainException.Rejected(
                    path + ": " + error, m.find() ? Integer.valueOf(m.group(1)) : null);
        }
        throw new ChainException("node_error", path + ": " + error);
    }
}
