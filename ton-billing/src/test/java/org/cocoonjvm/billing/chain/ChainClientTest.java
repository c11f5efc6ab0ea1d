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
                answering(429, "{\"ok\":false,\"error\":\"Ratelimit exceed\",\"code\":429}");
        assertThatThrownBy(() -> client.balance(SOMEONE))
                .isInstanceOfSatisfying(
                        ChainException.class, e -> assertThat(e.code()).isEqualTo("node_error"))
                .hasMessageContaining("Ratelimit");
        stop();
        ChainClient broken = answering(502, "<html>bad gateway</html>");
        assertThatThrownBy(() -> broken.balance(SOMEONE))
                .isInstanceOfSatisfying(
                        ChainException.class, e -> assertThat(e.code()).isEqualTo("bad_response"))
                .hasMessageContaining("HTTP 502");
    }

    @Test
    void anUnreachableNode_isUnreachable() throws IOException {
        ChainClient client = answering(200, "{}");
        stop();
        assertThatThrownBy(() -> client.balance(SOMEONE))
                .isInstanceOfSatisfying(
                        ChainException.class, e -> assertThat(e.code()).isEqualTo("unreachable"));
    }
}
