package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.cocoonjvm.gateway.TestNetwork.ADMIN_KEY;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.await;
import static org.cocoonjvm.gateway.TestNetwork.chat;
import static org.cocoonjvm.gateway.TestNetwork.eventually;

import ch.qos.logback.classic.Level;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.grpc.client.GrpcClient;
import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.InputStreamReader;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLHandshakeException;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;
import org.cocoonjvm.attest.AttestationResult;
import org.cocoonjvm.attest.AttestationVerifier;
import org.cocoonjvm.attest.TrustAnchors;
import org.cocoonjvm.attest.dcap.Collateral;
import org.cocoonjvm.attest.policy.AllowList;
import org.cocoonjvm.attest.policy.ConfigPolicy;
import org.cocoonjvm.attest.policy.Policy;
import org.cocoonjvm.attest.policy.TeeKind;
import org.cocoonjvm.attest.quote.TdReportBody;
import org.cocoonjvm.attest.ratls.NodeConfig;
import org.cocoonjvm.attest.ratls.RaTlsClientProxy;
import org.cocoonjvm.attest.ratls.RaTlsException;
import org.cocoonjvm.attest.ratls.RaTlsNode;
import org.cocoonjvm.attest.ratls.RaTlsTrustManager;
import org.cocoonjvm.attest.ratls.RaTlsVerifier;
import org.cocoonjvm.attest.tee.DevTee;
import org.cocoonjvm.gateway.attestation.GatewayAttestation;
import org.cocoonjvm.gateway.metrics.Exposition;
import org.cocoonjvm.protocol.grpc.InferenceGrpcClient;
import org.cocoonjvm.protocol.grpc.ModelsRequest;
import org.cocoonjvm.protocol.grpc.ModelsResponse;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.payments.WorkerPaymentOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.cocoonjvm.worker.serve.WorkerTls;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Gateway and workers with development-TEE attestation over real RA-TLS on loopback: workers
 * register on the gateway's worker port with mutual TLS, the gateway relays to them over RA-TLS,
 * and refusals (in the handshake or at Hello) route nothing and show in {@code /admin/workers}.
 */
class AttestedWorkersTest {
    private static final String WORKER_LINK = "org.cocoonjvm.worker.serve.GatewayLink";
    static final Clock CLOCK = Clock.systemUTC();
    /** One seed: the gateway and its workers share the dev root, as the demo's nodes do. */
    static final DevTee TEE = DevTee.generate(CLOCK);
    static final DevTee OTHER_IMAGE = TEE.withMeasurements(TEE.measurements().withMrTd(new byte[48]));
    static final Policy DEV_ANY = Policy.MEASUREMENTS_UNCHECKED.withAllowDevTee(true);
    static final Policy ONLY_DEFAULT_MRTD = DEV_ANY.withMrtd(AllowList.of(Set.of(TEE.measurements().mrTdHex())));

    private TestNetwork net;

    @AfterEach
    void stop() {
        if (net != null) {
            net.close();
        }
    }

    /** Clients reach it through an RA-TLS client proxy that accepts its dev TEE. */
    private static TestNetwork gateway(DevTee tee, Policy workerPolicy) throws Exception {
        return new TestNetwork(new GatewayAttestation(RaTlsNode.dev(tee, workerPolicy, CLOCK), 0, CLOCK),
                gatewayCheck(tee, DEV_ANY));
    }

    /** What a client on the gateway's host checks its certificate with: the dev root, and {@code policy}. */
    static RaTlsVerifier gatewayCheck(DevTee tee, Policy policy) {
        return new RaTlsVerifier(AttestationVerifier.create(TrustAnchors.intel().withDevRoots(List.of(tee.root())), CLOCK),
                quote -> tee.collateral(), policy);
    }

    private static WorkerTls worker(DevTee tee, Policy gatewayPolicy, List<RaTlsTrustManager.Outcome> saw) throws Exception {
        return new WorkerTls(RaTlsNode.dev(tee, gatewayPolicy, CLOCK), saw::add);
    }

    private JsonObject admin() {
        TestNetwork.Reply r = net.call(HttpMethod.GET, "/admin/workers", ADMIN_KEY, null);
        assertThat(r.status()).isEqualTo(200);
        return r.json();
    }

    /** Polls {@code /admin/workers} until {@code until} holds, for at most 20 s. */
    private JsonObject adminUntil(String what, Predicate<JsonObject> until) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (true) {
            JsonObject seen = TestNetwork.await(net.reply(new RequestOptions().setMethod(HttpMethod.GET).setURI("/admin/workers")
                    .putHeader("Authorization", "Bearer " + ADMIN_KEY), null)).json();
            if (until.test(seen)) {
                return seen;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting until " + what);
            }
            Thread.sleep(20);
        }
    }

    @Test
    void attestedWorker_servesAStreamedChat_andShowsAsVerifiedDev() throws Exception {
        net = gateway(TEE, ONLY_DEFAULT_MRTD);
        List<RaTlsTrustManager.Outcome> workerSaw = new CopyOnWriteArrayList<>();
        await(net.deployWorker("worker-1", worker(TEE, DEV_ANY, workerSaw)));
        assertThat(net.workers.getFirst().endpoint()).startsWith("https://127.0.0.1:");

        HttpClientResponse response = net.send(HttpMethod.POST, "/v1/chat/completions", API_KEY,
                chat("synthetic", true, "\"max_tokens\":8,\"stream_options\":{\"include_usage\":true}"));
        assertThat(response.statusCode()).isEqualTo(200);
        List<SseEvents.Event> events = SseEvents.read(response).ended.get(10, TimeUnit.SECONDS);
        assertThat(events.getLast().data()).isEqualTo("[DONE]");
        assertThat(new JsonObject(events.get(events.size() - 2).data()).getJsonObject("usage").getInteger("completion_tokens"))
                .isEqualTo(8);

        // A gRPC backend through the same client proxy: HTTP/2 to the gateway, by ALPN.
        ModelsResponse models = await(net.onClientContext(() -> GrpcClient.client(net.vertx,
                        new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false))
                .request(io.vertx.core.net.SocketAddress.inetSocketAddress(net.clientPort, "127.0.0.1"), InferenceGrpcClient.Models)
                .compose(request -> {
                    request.headers().set("authorization", "Bearer " + API_KEY);
                    return request.send(ModelsRequest.getDefaultInstance());
                }).compose(r -> r.last())));
        assertThat(models.getModels(0).getWorkers()).isEqualTo(1);

        JsonObject row = admin().getJsonArray("workers").getJsonObject(0);
        assertThat(row.getString("attestation")).isEqualTo("verified");
        assertThat(row.getString("tee")).isEqualTo("dev (not hardware-backed)");
        assertThat(row.getString("tcb_status")).isEqualTo("UpToDate");
        assertThat(row.getString("image_hash")).hasSize(64);
        assertThat(row.getString("gpu")).isEqualTo("none");
        assertThat(row.getString("certificate_not_after")).isNotBlank();
        assertThat(admin().getJsonArray("refused")).isEmpty();
        assertThat(net.call(HttpMethod.GET, "/health", null, null).json().getString("attestation"))
                .isEqualTo("dev (not hardware-backed)");

        JsonObject model = net.call(HttpMethod.GET, "/v1/models", API_KEY, null).json().getJsonArray("data").getJsonObject(0);
        assertThat(model.getInteger("workers")).isEqualTo(1);
        assertThat(model.getInteger("attested_workers")).isEqualTo(1);
        String metrics = net.call(HttpMethod.GET, "/metrics", null, null).body();
        assertThat(Exposition.parse(metrics).get("cocoon_workers_attested")).isEqualTo(1.0);

        // Mutual: the worker verified the gateway, on the registration link and on the relay's connection.
        assertThat(workerSaw).isNotEmpty().allSatisfy(o -> assertThat(o.accepted()).isTrue());
    }

    /**
     * How long a worker's log may take to blame attestation: the 10 s of dropped tries its link
     * waits for (LinkProblems' hint, logged under GatewayLink), then its next retry, up to 5 s later.
     */
    private static final long HINT_AFTER_DROPS_MS = 20_000;

    /** A TD outside the gateway's policy: another MRTD, or the default image run as a debug TD. */
    static List<Arguments> refusedImages() {
        return List.of(Arguments.of(OTHER_IMAGE, "mrtd_not_allowed"),
                Arguments.of(TEE.withMeasurements(TEE.measurements().withTdAttributes(DEBUG_TD)), "debug_not_allowed"));
    }

    /** A debug TD that otherwise looks like production (SEPT_VE_DISABLE set). */
    static final long DEBUG_TD = TdReportBody.TD_ATTR_DEBUG | TdReportBody.TD_ATTR_SEPT_VE_DISABLE;

    @ParameterizedTest
    @MethodSource("refusedImages")
    void workerOutsideTheImagePolicy_isRefusedInTheHandshake_getsNothing_andShowsRefused(DevTee image, String violation)
            throws Exception {
        net = gateway(TEE, ONLY_DEFAULT_MRTD);
        LogCapture workerLog = new LogCapture(WORKER_LINK);
        Future<String> deployed = net.deployWorker("worker-1", worker(image, DEV_ANY, new CopyOnWriteArrayList<>()));

        JsonObject refusal = adminUntil("the refusal shows in /admin/workers", a -> !a.getJsonArray("refused").isEmpty())
                .getJsonArray("refused").getJsonObject(0);
        assertThat(refusal.getString("reason")).isEqualTo(RaTlsException.Reason.ATTESTATION_REJECTED.code());
        assertThat(refusal.getString("message")).contains(violation);
        assertThat(refusal.getString("tee")).isEqualTo(TeeKind.DEV.label());
        assertThat(refusal.getString("image_hash")).hasSize(64);
        assertThat(refusal.getString("remote")).startsWith("127.0.0.1");
        assertThat(refusal.getLong("count")).isPositive();
        assertThat(admin().getJsonArray("workers")).isEmpty();
        assertThat(deployed.isComplete()).isFalse();
        // TLS carries no reason to the worker; its log says where to find it, once the refusals have
        // lasted longer than a starting gateway's held port drops tries (audit Q, Q-6).
        eventually("the worker logged where to look", HINT_AFTER_DROPS_MS, () -> workerLog.lines().stream().anyMatch(l ->
                l.contains("refused this worker's attestation in the TLS handshake") && l.contains("/admin/workers")));
        workerLog.close();

        TestNetwork.Reply chat = net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, ""));
        assertThat(chat.status()).isEqualTo(404);
        assertThat(chat.json().getJsonObject("error").getString("code")).isEqualTo("model_not_found");
    }

    /**
     * What the image's measurement does not cover, the worker's certificate says (its engine), and a
     * worker policy's {@code config} holds it to a list: a worker that says it forwards prompts
     * elsewhere is refused in the handshake; one that says native serves, and shows what it said.
     */
    @Test
    void workerPolicyConfig_refusesAWorkerWhoseCertificateSaysAnotherEngine_andShowsWhatAnAcceptedOneSaid() throws Exception {
        net = gateway(TEE, DEV_ANY.withConfig(new ConfigPolicy(new java.util.TreeMap<>(Map.of("engine", Set.of("native"))))));
        net.deployWorker("worker-1", new WorkerTls(RaTlsNode.dev(TEE, DEV_ANY, CLOCK, null,
                NodeConfig.of(Map.of("role", "worker", "engine", "forward", "forward_url", "http://10.1.2.3:8000")))));
        JsonObject refusal = adminUntil("the refusal shows in /admin/workers", a -> !a.getJsonArray("refused").isEmpty())
                .getJsonArray("refused").getJsonObject(0);
        assertThat(refusal.getString("reason")).isEqualTo(RaTlsException.Reason.CONFIG_REJECTED.code());
        assertThat(refusal.getString("message")).contains("the peer's engine is 'forward'; the policy accepts [native]");
        assertThat(admin().getJsonArray("workers")).isEmpty();

        NodeConfig nativeWorker = NodeConfig.of(Map.of("role", "worker", "engine", "native"));
        await(net.deployWorker("worker-2", new WorkerTls(RaTlsNode.dev(TEE, DEV_ANY, CLOCK, null, nativeWorker))));
        JsonObject row = admin().getJsonArray("workers").getJsonObject(0);
        assertThat(row.getString("id")).isEqualTo("worker-2");
        assertThat(row.getJsonObject("config")).isEqualTo(nativeWorker.toJson());
        assertThat(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "")).status()).isEqualTo(200);
    }

    @Test
    void workerServingAModelOutsideThePolicy_isRefusedAtHello_andShowsRefusedWithItsId() throws Exception {
        String other = "synthetic@" + "0".repeat(64);
        net = gateway(TEE, DEV_ANY.withModels(AllowList.of(Set.of(other))));
        LogCapture workerLog = new LogCapture(WORKER_LINK);
        net.deployWorker("worker-7", worker(TEE, DEV_ANY, new CopyOnWriteArrayList<>()));

        JsonObject refusal = adminUntil("the refusal shows in /admin/workers", a -> !a.getJsonArray("refused").isEmpty())
                .getJsonArray("refused").getJsonObject(0);
        // The worker is told why, its reason code said once.
        eventually("the worker logged its refusal", () -> !workerLog.lines().isEmpty());
        workerLog.close();
        assertThat(workerLog.lines()).first().satisfies(l -> assertThat(l)
                .contains("refused this worker (PERMISSION_DENIED): model_not_allowed: model synthetic@", "Retrying cannot fix")
                .doesNotContain("model_not_allowed: model_not_allowed"));
        assertThat(refusal.getString("id")).isEqualTo("worker-7");
        assertThat(refusal.getString("reason")).isEqualTo("model_not_allowed");
        assertThat(refusal.getString("message")).contains("synthetic@");
        assertThat(refusal.getString("tee")).isEqualTo(TeeKind.DEV.label());
        assertThat(admin().getJsonArray("workers")).isEmpty();
        assertThat(net.call(HttpMethod.POST, "/v1/chat/completions", API_KEY, chat("synthetic", false, "")).status()).isEqualTo(404);
    }

    /**
     * The client port serves RA-TLS: plaintext there (a worker without attestation, a client with
     * http://) fails the handshake, and the gateway lists it with what to do.
     */
    @Test
    void plaintextOnTheClientPort_failsTheHandshake_andShowsRefusedWithWhatToDo() throws Exception {
        net = gateway(TEE, DEV_ANY);
        try (LogCapture workerLog = new LogCapture(WORKER_LINK)) {
            net.deployWorker("plain-1", WorkerPaymentOptions.IN_MEMORY, net.gateway.port());

            JsonObject refusal = adminUntil("the refusal shows in /admin/workers", a -> !a.getJsonArray("refused").isEmpty())
                    .getJsonArray("refused").getJsonObject(0);
            assertThat(refusal.getString("reason")).isEqualTo("tls_required");
            assertThat(refusal.getString("message")).contains("client port", "cocoon attest proxy", "worker port");
            eventually("the worker logged its refusal", () -> !workerLog.lines().isEmpty());
            assertThat(workerLog.lines().getFirst()).contains("could not reach gateway");
        }
    }

    /**
     * Clients reset connections (an aborted stream, a killed process): with attestation on and the
     * client port plaintext, each one was logged as a failed TLS handshake and listed under the
     * workers' {@code refused} (audit Q, Q-1).
     */
    @Test
    void aClientResettingItsConnection_onAPlaintextClientPort_isNoRefusal() throws Exception {
        net = new TestNetwork(new GatewayAttestation(RaTlsNode.dev(TEE, DEV_ANY, CLOCK), 0, CLOCK,
                GatewayAttestation.ClientPort.PLAINTEXT), null);
        try (LogCapture gatewayLog = new LogCapture(GatewayAttestation.class)) {
            for (int i = 0; i < 3; i++) {
                resetMidRequest(new Socket("127.0.0.1", net.gateway.port()));
                resetAfterAnswer(new Socket("127.0.0.1", net.gateway.port()));
            }
            assertThat(admin().getJsonArray("refused")).isEmpty();
            assertThat(gatewayLog.linesAt(Level.WARN)).isEmpty();
        }
    }

    /**
     * On an RA-TLS client port a handshake that fails (here a client that does not take the
     * gateway's certificate) is still listed and logged once; a reset after a handshake is not.
     */
    @Test
    void aFailedHandshake_onAnRaTlsClientPort_isListed_aResetAfterOneIsNot() throws Exception {
        net = gateway(TEE, DEV_ANY);
        try (LogCapture gatewayLog = new LogCapture(GatewayAttestation.class)) {
            SSLSocket strict = (SSLSocket) SSLContext.getDefault().getSocketFactory().createSocket("127.0.0.1", net.gateway.port());
            assertThatThrownBy(strict::startHandshake).isInstanceOf(SSLHandshakeException.class);
            strict.close();
            JsonObject refusal = adminUntil("the failed handshake shows", a -> !a.getJsonArray("refused").isEmpty())
                    .getJsonArray("refused").getJsonObject(0);
            assertThat(refusal.getString("reason")).isEqualTo("tls_handshake_failed");
            assertThat(refusal.getString("message")).startsWith("on the client port: ");

            SSLContext trustAll = SSLContext.getInstance("TLS");
            trustAll.init(null, new TrustManager[] {new TrustAnyCertificate()}, null);
            for (int i = 0; i < 3; i++) {
                SSLSocket tls = (SSLSocket) trustAll.getSocketFactory().createSocket("127.0.0.1", net.gateway.port());
                tls.startHandshake();
                resetMidRequest(tls);
            }
            try (Socket silent = new Socket("127.0.0.1", net.gateway.port())) {  // reset before its handshake begins
                Thread.sleep(200);
                silent.setSoLinger(true, 0);
            }
            assertThat(admin().getJsonArray("refused")).singleElement()
                    .satisfies(r -> assertThat(((JsonObject) r).getLong("count")).isEqualTo(1));
            assertThat(gatewayLog.linesAt(Level.WARN)).singleElement()
                    .satisfies(l -> assertThat(l).contains("client port failed its TLS handshake (tls_handshake_failed)"));
        }
    }

    /** Sends part of a request, lets the gateway start reading it, then resets the connection (SO_LINGER 0). */
    private static void resetMidRequest(Socket socket) throws Exception {
        try (socket) {
            socket.getOutputStream().write(("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                    + API_KEY + "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\"")
                    .getBytes(StandardCharsets.US_ASCII));
            socket.getOutputStream().flush();
            Thread.sleep(200);
            socket.setSoLinger(true, 0);
        }
    }

    /** Reads an answer, then resets the idle connection. */
    private static void resetAfterAnswer(Socket socket) throws Exception {
        try (socket) {
            socket.getOutputStream().write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            assertThat(new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.US_ASCII)).readLine())
                    .startsWith("HTTP/1.1 200");
            socket.setSoLinger(true, 0);
        }
    }

    /** A client that takes any certificate: one that completes the handshake, to reset the connection after it. */
    private static final class TrustAnyCertificate implements X509TrustManager {
        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) {
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) {
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return new X509Certificate[0];
        }
    }

    /**
     * A client on the gateway's host reaches it through an RA-TLS client proxy, which checks the
     * certificate of each connection against the client's gateway policy: a gateway outside it
     * gets no prompt, and the client a 502 saying why. Before, the client port was plain HTTP and
     * the evidence of /v1/attestation was bound to no connection (audit I, I-1).
     */
    @Test
    void aClientProxyWithAPolicyTheGatewayFails_sendsItNothing_andAnswers502() throws Exception {
        net = gateway(TEE, DEV_ANY);
        await(net.deployWorker("worker-1", worker(TEE, DEV_ANY, new CopyOnWriteArrayList<>())));
        RaTlsClientProxy strict = new RaTlsClientProxy(net.vertx, gatewayCheck(TEE, DEV_ANY.withMrtd(
                AllowList.of(Set.of(HexFormat.of().formatHex(new byte[48]))))),
                io.vertx.core.net.SocketAddress.inetSocketAddress(net.gateway.port(), "127.0.0.1"));
        int port = await(strict.listen("127.0.0.1", 0));
        HttpClient client = net.vertx.createHttpClient();
        TestNetwork.Reply reply = await(net.onClientContext(() -> client.request(new RequestOptions().setMethod(HttpMethod.POST).setHost("127.0.0.1")
                .setPort(port).setURI("/v1/chat/completions").putHeader("Authorization", "Bearer " + API_KEY)
                .putHeader("Content-Type", "application/json"))
                .compose(r -> r.send(chat("synthetic", false, "")))
                .compose(r -> r.body().map(b -> new TestNetwork.Reply(r.statusCode(), b.toString(), r)))));
        JsonObject error = reply.json().getJsonObject("error");
        assertThat(reply.status()).isEqualTo(502);
        assertThat(error.getString("code")).isEqualTo("gateway_not_attested");
        assertThat(error.getString("message")).contains("mrtd");
        assertThat(admin().getJsonArray("workers").getJsonObject(0).getLong("tokens_served")).isZero();
        await(strict.close());
    }

    @Test
    void workerWithoutAttestation_onTheWorkerPort_showsRefusedOnTheGateway() throws Exception {
        net = gateway(TEE, DEV_ANY);
        try (LogCapture gatewayLog = new LogCapture(GatewayAttestation.class); LogCapture workerLog = new LogCapture(WORKER_LINK)) {
            net.deployWorker("plain-1", WorkerPaymentOptions.IN_MEMORY, net.gateway.workerPort());

            JsonObject refusal = adminUntil("the refusal shows in /admin/workers", a -> !a.getJsonArray("refused").isEmpty())
                    .getJsonArray("refused").getJsonObject(0);
            assertThat(refusal.getString("reason")).isEqualTo("tls_required");
            Thread.sleep(1_000);  // a few retries: still one line
            assertThat(gatewayLog.lines()).singleElement().satisfies(l -> assertThat(l).contains("tls_required"));
            // The worker sees only its connection closed; its log says what that may mean once it lasts.
            eventually("the worker logged what it may mean", HINT_AFTER_DROPS_MS, () -> workerLog.lines().stream()
                    .anyMatch(l -> l.contains("--attestation") && l.contains("tls_required")));
        }
    }

    @Test
    void workerRefusesAGatewayOutsideItsPolicy() throws Exception {
        net = gateway(OTHER_IMAGE, DEV_ANY);
        List<RaTlsTrustManager.Outcome> workerSaw = new CopyOnWriteArrayList<>();
        Future<String> deployed = net.deployWorker("worker-1", worker(TEE, ONLY_DEFAULT_MRTD, workerSaw));

        eventually("the worker refused the gateway", () -> !workerSaw.isEmpty());
        assertThat(workerSaw.getFirst().accepted()).isFalse();
        assertThat(workerSaw.getFirst().side()).isEqualTo("server");
        assertThat(workerSaw.getFirst().refusal().getMessage()).contains("mrtd_not_allowed");
        assertThat(deployed.isComplete()).isFalse();
        assertThat(admin().getJsonArray("workers")).isEmpty();
    }

    @Test
    void workerServiceRefusesConnectionsWithoutAGatewayCertificate_butItsHttpApiStaysReachable() throws Exception {
        net = gateway(TEE, DEV_ANY);
        await(net.deployWorker("worker-1", worker(TEE, DEV_ANY, new CopyOnWriteArrayList<>())));
        WorkerNode worker = net.workers.getFirst();
        // An operator: TLS without a client certificate (RA-TLS certificates are self-signed, so trust all).
        HttpClient operator = net.vertx.createHttpClient(new HttpClientOptions().setSsl(true).setTrustAll(true)
                .setVerifyHost(false).setUseAlpn(true).setProtocolVersion(HttpVersion.HTTP_2));
        try {
            int port = TestNetwork.portOf(worker);
            HttpClientResponse grpc = await(net.onClientContext(() -> operator.request(new RequestOptions().setMethod(HttpMethod.POST)
                            .setHost("127.0.0.1").setPort(port).setURI("/cocoon.v1.Worker/Status")
                            .putHeader("content-type", "application/grpc").putHeader("te", "trailers"))
                    .compose(r -> r.send(Buffer.buffer(new byte[5])).compose(resp -> resp.body().map(body -> resp)))));
            assertThat(grpc.getHeader("grpc-status")).isEqualTo("16");  // UNAUTHENTICATED

            TestNetwork.Reply models = await(net.onClientContext(() -> operator.request(new RequestOptions().setMethod(HttpMethod.GET)
                            .setHost("127.0.0.1").setPort(port).setURI("/v1/models").putHeader("Authorization", "Bearer " + API_KEY))
                    .compose(r -> r.send().compose(resp -> resp.body().map(b -> new TestNetwork.Reply(resp.statusCode(), b.toString(), resp))))));
            assertThat(models.status()).isEqualTo(200);
        } finally {
            operator.close();
        }
    }

    @Test
    void gatewayEvidence_verifiesWithTheAttestationVerifier() throws Exception {
        net = gateway(TEE, DEV_ANY);
        TestNetwork.Reply reply = net.call(HttpMethod.GET, "/v1/attestation", null, null);
        assertThat(reply.status()).isEqualTo(200);
        JsonObject evidence = reply.json();
        assertThat(evidence.getString("tee")).isEqualTo("dev (not hardware-backed)");
        assertThat(evidence.getJsonObject("attestation").getBoolean("accepted")).isTrue();
        assertThat(evidence.getJsonObject("attestation").getJsonObject("measurements").getString("mrtd"))
                .isEqualTo(TEE.measurements().mrTdHex());

        X509Certificate cert = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(
                new ByteArrayInputStream(evidence.getString("certificate_pem").getBytes(StandardCharsets.US_ASCII)));
        byte[] spki = cert.getPublicKey().getEncoded();
        byte[] rawKey = java.util.Arrays.copyOfRange(spki, spki.length - 32, spki.length);
        byte[] reportData = HexFormat.of().parseHex(evidence.getString("report_data"));
        assertThat(reportData).isEqualTo(MessageDigest.getInstance("SHA-512").digest(rawKey));

        X509Certificate devRoot = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(
                new ByteArrayInputStream(evidence.getString("dev_root_pem").getBytes(StandardCharsets.US_ASCII)));
        AttestationResult r = AttestationVerifier.create(TrustAnchors.intel().withDevRoots(List.of(devRoot)), CLOCK)
                .verify(HexFormat.of().parseHex(evidence.getString("quote")),
                        Collateral.parse(evidence.getJsonObject("collateral").encode()), DEV_ANY, Optional.of(reportData));
        assertThat(r.reasons()).isEmpty();
        assertThat(r.tee()).contains(TeeKind.DEV);
    }

    @Test
    void unattestedGateway_hasNoEvidence_andCountsNoWorkerAsAttested() {
        net = new TestNetwork();
        net.addWorker(100);
        assertThat(net.call(HttpMethod.GET, "/v1/attestation", null, null).status()).isEqualTo(404);
        JsonObject model = net.call(HttpMethod.GET, "/v1/models", API_KEY, null).json().getJsonArray("data").getJsonObject(0);
        assertThat(model.getInteger("workers")).isEqualTo(1);
        assertThat(model.getInteger("attested_workers")).isZero();
        JsonArray workers = admin().getJsonArray("workers");
        assertThat(workers.getJsonObject(0).getString("attestation")).isEqualTo("none");
    }
}
