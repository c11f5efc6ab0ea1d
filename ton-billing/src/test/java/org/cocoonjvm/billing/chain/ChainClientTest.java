package org.cocoonjvm.billing.chain;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.sun.net.httpserver.HttpServer;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.ton.ton4j.address.Address;
import org.ton.ton4j.cell.CellBuilder;

import java.io.IOException;
import java.math.BigInteger;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Optional;

/** The client against canned toncenter answers on loopback: parsing and error mapping. */
class ChainClientTest {
    private static final Address SOMEONE = Address.of("0:" + "11".repeat(32));
    private HttpServer server;

    private ChainClient answering(int status, String body) throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext(
                "/",
                exchange -> {
                    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
                    exchange.sendResponseHeaders(status, bytes.length);
                    exchange.getResponseBody().write(bytes);
                    exchange.close();
                });
        server.start();
        return new ChainClient(
                "http://127.0.0.1:" + server.getAddress().getPort() + "/", Duration.ofSeconds(5));
    }

    @AfterEach
    void stop() {
        if (server != null) server.stop(0);
    }

    @Test
    void aToncenterTransactionWithoutPhasesParses() throws IOException {
        String comment = java.util.Base64.getEncoder().encodeToString("cocoon:7".getBytes());
        ChainClient client =
                answering(
                        200,
                        """
                        {"ok":true,"result":[{"@type":"raw.transaction","utime":1700000000,
                         "transaction_id":{"@type":"internal.transactionId","lt":"47000000000001","hash":"q83v"},
                         "fee":"123","storage_fee":"3","other_fee":"120",
                         "in_msg":{"source":"EQAAFhjXzKuQ5N0c96nsdZQWATcJm909LYSaCAvWFxVJP80D","destination":"EQBY",
                          "value":"2500000000","fwd_fee":"0","created_lt":"1","body_hash":"x",
                          "msg_data":{"@type":"msg.dataText","text":"%s"},"message":"cocoon:7"},
                         "out_msgs":[]}]}
                        """
                                .formatted(comment));
        ChainTransaction tx = client.transactions(SOMEONE, 1, Optional.empty()).getFirst();
        assertThat(tx.lt()).isEqualTo(47000000000001L);
        assertThat(tx.feeNanoton()).isEqualTo(BigInteger.valueOf(123));
        assertThat(tx.phases()).isEmpty();
        assertThat(tx.inMessage().orElseThrow().comment()).contains("cocoon:7");
        assertThat(tx.isIncomingTransfer()).isTrue();
    }

    @Test
    void sendBoc_refusedByTheContract_isRejectedWithItsExitCode() throws IOException {
        ChainClient client =
                answering(
                        500,
                        """
                        {"ok":false,"error":"LITE_SERVER_UNKNOWN: cannot apply external message to current state : External message was not accepted\\nCannot run message on account: inbound external message rejected by transaction: exitcode=108, steps=42","code":500}
                        """);
        assertThatThrownBy(() -> client.sendBoc(CellBuilder.beginCell().endCell()))
                .isInstanceOfSatisfying(
                        ChainException.Rejected.class,
                        e -> assertThat(e.exitCode()).isEqualTo(108));
    }

    @Test
    void anyOtherRefusal_isANodeError_andGarbage_isABadResponse() throws IOException {
        ChainClient client =
                answering(500, "{\"ok\":false,\"error\":\"LITE_SERVER_NOTREADY\",\"code\":500}");
        assertThatThrownBy(() -> client.balance(SOMEONE))
                .isInstanceOfSatisfying(
                        ChainException.class, e -> assertThat(e.code()).isEqualTo("node_error"))
                .hasMessageContaining("LITE_SERVER_NOTREADY");
        stop();
        ChainClient broken = answering(502, "<html>bad gateway</html>");
        assertThatThrownBy(() -> broken.balance(SOMEONE))
                .isInstanceOfSatisfying(
                        ChainException.class, e -> assertThat(e.code()).isEqualTo("bad_response"))
                .hasMessageEndingWith("/getAddressBalance answered HTTP 502 without a JSON envelope");
    }

    /** Each cause worded as what happened, for operators told it at start (audit G, M1). */
    @Test
    void aRateLimit_aWrongUrl_aRefusedConnection_andASilentNode_sayWhatHappened() throws IOException {
        ChainClient limited =
                answering(429, "{\"ok\":false,\"error\":\"Ratelimit exceed\",\"code\":429}");
        assertThatThrownBy(() -> limited.state(SOMEONE))
                .isInstanceOfSatisfying(
                        ChainException.class, e -> assertThat(e.code()).isEqualTo("rate_limited"))
                .hasMessageEndingWith(
                        "/getAddressState is rate-limiting this node (HTTP 429): give it an API key,"
                                + " or call it less often");
        stop();
        ChainClient notToncenter = answering(404, "<html>Not Found</html>");
        String url = notToncenter.endpoint();
        assertThatThrownBy(() -> notToncenter.state(SOMEONE))
                .isInstanceOfSatisfying(
                        ChainException.class, e -> assertThat(e.code()).isEqualTo("bad_response"))
                .hasMessage(
                        url + "/getAddressState answered HTTP 404 without a JSON envelope: " + url
                                + " is not a toncenter v2 API");
        stop();
        assertThatThrownBy(() -> notToncenter.state(SOMEONE))
                .isInstanceOfSatisfying(
                        ChainException.class, e -> assertThat(e.code()).isEqualTo("unreachable"))
                .hasMessage("toncenter " + url + "/getAddressState: connection refused");

        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/", exchange -> {});  // reads the request, never answers
        server.start();
        String silent = "http://127.0.0.1:" + server.getAddress().getPort();
        assertThatThrownBy(() -> new ChainClient(silent, Duration.ofSeconds(1)).state(SOMEONE))
                .isInstanceOfSatisfying(
                        ChainException.class, e -> assertThat(e.code()).isEqualTo("timeout"))
                .hasMessage("toncenter " + silent + "/getAddressState did not answer within 1 s");
    }
}
