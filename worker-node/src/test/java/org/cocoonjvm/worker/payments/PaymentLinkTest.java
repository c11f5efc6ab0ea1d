package org.cocoonjvm.worker.payments;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.grpc.server.GrpcServerRequest;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.cocoonjvm.billing.channel.ChannelId;
import org.cocoonjvm.billing.channel.ChannelPayer;
import org.cocoonjvm.billing.channel.ChannelTerms;
import org.cocoonjvm.billing.channel.PaymentKeyPair;
import org.cocoonjvm.billing.channel.PaymentPublicKey;
import org.cocoonjvm.billing.channel.SemiChannelBody;
import org.cocoonjvm.billing.channel.SemiChannelState;
import org.cocoonjvm.billing.channel.SignedSemiChannel;
import org.cocoonjvm.billing.channel.VoucherVerifier;
import org.cocoonjvm.protocol.grpc.Cancel;
import org.cocoonjvm.protocol.grpc.ChatMessage;
import org.cocoonjvm.protocol.grpc.ChatMessages;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.FinishReason;
import org.cocoonjvm.protocol.grpc.GatewayGrpcService;
import org.cocoonjvm.protocol.grpc.GenerateCall;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.GatewayMessage;
import org.cocoonjvm.protocol.grpc.Hello;
import org.cocoonjvm.protocol.grpc.Payment;
import org.cocoonjvm.protocol.grpc.PaymentChannel;
import org.cocoonjvm.protocol.grpc.PriceTerms;
import org.cocoonjvm.protocol.grpc.Registered;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.protocol.grpc.WorkerGrpcClient;
import org.cocoonjvm.protocol.grpc.WorkerMessage;
import org.cocoonjvm.worker.ClientChains;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.cocoonjvm.worker.serve.WorkerOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real worker registered with a scripted gateway (a real gRPC {@code Gateway.Session} server on
 * loopback) that sends it good and bad payments; the worker's {@code /status} tells what it kept.
 */
class PaymentLinkTest {
    private static final SecureRandom RANDOM = new SecureRandom();

    private final Vertx vertx = Vertx.vertx();
    private final PaymentKeyPair gatewayKey = PaymentKeyPair.generate(RANDOM);
    private final ChannelId channelId = ChannelId.random(RANDOM);
    private final ChannelTerms terms = new ChannelTerms(channelId, gatewayKey.publicKey(), 1_000_000);
    private final CompletableFuture<Hello> hello = new CompletableFuture<>();
    private final CompletableFuture<SignedSemiChannel> workerInitial = new CompletableFuture<>();
    private volatile GrpcServerRequest<WorkerMessage, GatewayMessage> session;
    /** The scripted gateway answers Hello with Registered once this completes. */
    private CompletableFuture<Void> registerWhen = CompletableFuture.completedFuture(null);
    private HttpServer gateway;
    private String workerDeployment;

    @TempDir
    Path stateDir;

    @AfterEach
    void close() {
        await(vertx.close());
    }

    @Test
    void keepsEachValidStateAndRefusesForgedReplayedAndForeignOnes() throws Exception {
        WorkerNode worker = startWorker();
        PaymentPublicKey workerKey = PaymentPublicKey.of(hello.get(5, TimeUnit.SECONDS).getPaymentPublicKey().toByteArray());
        // Pitfall 2: the worker answers the channel with its own signed initial state.
        SignedSemiChannel initial = workerInitial.get(5, TimeUnit.SECONDS);
        assertThat(VoucherVerifier.accept(new ChannelTerms(channelId, workerKey, 0), null, initial).state().body())
                .isEqualTo(SemiChannelBody.INITIAL);

        ChannelPayer payer = new ChannelPayer(terms, gatewayKey, SemiChannelBody.INITIAL);
        SignedSemiChannel first = payer.pay(100);
        send(first);
        JsonObject channel = waitForChannel(worker, c -> c.getLong("seqno") == 1);
        assertThat(channel.getLong("sent_nanoton")).isEqualTo(100);

        PaymentKeyPair impostor = PaymentKeyPair.generate(RANDOM);
        send(impostor.sign(new SemiChannelState(channelId, new SemiChannelBody(2, 10_000))));
        waitForChannel(worker, c -> String.valueOf(c.getString("last_refused_payment")).startsWith("bad_signature"));
        send(new ChannelPayer(new ChannelTerms(ChannelId.random(RANDOM), gatewayKey.publicKey(), 1_000_000), gatewayKey,
                SemiChannelBody.INITIAL).pay(500));

        SignedSemiChannel second = payer.pay(250);
        send(second);
        waitForChannel(worker, c -> c.getLong("seqno") == 2);
        // Replayed: older than the state the worker holds. (The latest state sent again, as a gateway
        // does on every new session, is a no-op instead: PaymentChannelTest in the gateway module.)
        send(first);
        channel = waitForChannel(worker, c -> String.valueOf(c.getString("last_refused_payment")).startsWith("seqno_not_increasing"));
        assertThat(channel.getLong("seqno")).isEqualTo(2);
        assertThat(channel.getLong("sent_nanoton")).isEqualTo(250);
        assertThat(channel.getString("channel_id")).isEqualTo(channelId.hex());
        assertThat(channel.getString("gateway_public_key")).isEqualTo(gatewayKey.publicKey().hex());
        assertThat(channel.getString("signed_state_boc")).isEqualTo(second.bocBase64());

        // Stored durably: one file per channel, holding the latest state.
        Path file = stateDir.resolve("channel-" + channelId.hex() + ".json");
        assertThat(new JsonObject(Files.readString(file)).getString("signed_state_boc")).isEqualTo(second.bocBase64());
    }

    @Test
    void aRestartedWorkerTakesUpItsStoredStateAndKey() throws Exception {
        WorkerNode worker = startWorker();
        hello.get(5, TimeUnit.SECONDS);
        workerInitial.get(5, TimeUnit.SECONDS);
        ChannelPayer payer = new ChannelPayer(terms, gatewayKey, SemiChannelBody.INITIAL);
        payer.pay(10);
        SignedSemiChannel latest = payer.pay(20);
        send(latest);
        waitForChannel(worker, c -> c.getLong("seqno") == 2);
        byte[] keyBefore = hello.get().getPaymentPublicKey().toByteArray();
        await(vertx.undeploy(workerDeployment));
        await(gateway.close());

        Vertx second = Vertx.vertx();
        try {
            // Reloaded at start: /status shows the stored state before any gateway is reached.
            WorkerNode standalone = new WorkerNode(new SyntheticEngine(1000, 4, 2048), new WorkerOptions("paid-worker",
                    "127.0.0.1", 0, null, null, SchedulerOptions.DEFAULTS, 1000, new WorkerPaymentOptions(stateDir, "", 1_000, 5_000)));
            String standaloneId = await(second.deployVerticle(standalone));
            assertThat(waitForChannel(standalone, c -> c.getLong("seqno") == 2).getString("signed_state_boc"))
                    .isEqualTo(latest.bocBase64());
            await(second.undeploy(standaloneId));

            PaymentLinkTest again = new PaymentLinkTest();
            again.stateDir = stateDir;
            again.close();  // its own Vert.x: this run uses `second`
            WorkerNode restarted = again.startWorker(second, gatewayKey, channelId);
            assertThat(again.hello.get(5, TimeUnit.SECONDS).getPaymentPublicKey().toByteArray()).isEqualTo(keyBefore);
            JsonObject channel = again.waitForChannel(restarted, c -> c.getLong("seqno") == 2);
            assertThat(channel.getString("signed_state_boc")).isEqualTo(latest.bocBase64());
            assertThat(channel.getLong("unpaid_nanoton")).isZero();
        } finally {
            await(second.close());
        }
    }

    /**
     * A worker that died owed fees restarts from its stored state, below what it had earned; the
     * gateway then pays those fees. The worker takes them as earned, since it cannot know them
     * otherwise, and does not show itself overpaid by them for good (it used to: unpaid -14).
     */
    @Test
    void aRestartedWorker_paidWhatItWasOwedWhenItDied_isNotShownOverpaid() throws Exception {
        WorkerNode worker = startWorker();
        hello.get(5, TimeUnit.SECONDS);
        workerInitial.get(5, TimeUnit.SECONDS);
        ChannelPayer payer = new ChannelPayer(terms, gatewayKey, SemiChannelBody.INITIAL);
        send(payer.pay(202));
        waitForChannel(worker, c -> c.getLong("seqno") == 1);
        await(vertx.undeploy(workerDeployment));
        await(gateway.close());

        Vertx second = Vertx.vertx();
        try {
            PaymentLinkTest again = new PaymentLinkTest();
            again.stateDir = stateDir;
            again.close();  // its own Vert.x: this run uses `second`
            WorkerNode restarted = again.startWorker(second, gatewayKey, channelId);
            again.workerInitial.get(5, TimeUnit.SECONDS);
            again.send(payer.pay(216));  // 14 nanoTON of fees the gateway still owed when the worker died
            JsonObject channel = again.waitForChannel(restarted, c -> c.getLong("seqno") == 2);
            assertThat(channel.getLong("sent_nanoton")).isEqualTo(216);
            assertThat(channel.getLong("unpaid_nanoton")).isZero();
        } finally {
            await(second.close());
        }
    }

    /**
     * A channel file written before the worker kept its contract address and its settlement on
     * chain is still read: as an open channel, and rewritten with both at its next state.
     */
    @Test
    void aStateFileFromBeforeTheSettlementWasKept_isReadAsOpen_andRewrittenWithIt() throws Exception {
        ChannelPayer payer = new ChannelPayer(terms, gatewayKey, SemiChannelBody.INITIAL);
        SignedSemiChannel stored = payer.pay(40);
        Path file = stateDir.resolve("channel-" + channelId.hex() + ".json");
        Files.writeString(file, new JsonObject().put("channel_id", channelId.hex())
                .put("gateway_public_key", gatewayKey.publicKey().hex()).put("deposit_cap_nanoton", 1_000_000)
                .put("seqno", 1).put("sent_nanoton", 40).put("signed_state_boc", stored.bocBase64()).encodePrettily());

        WorkerNode worker = startWorker();
        JsonObject channel = waitForChannel(worker, c -> c.getLong("seqno") == 1);
        assertThat(channel.getLong("sent_nanoton")).isEqualTo(40);
        assertThat(channel.getBoolean("closed_on_chain")).isFalse();
        assertThat(channel.getBoolean("quarantined")).isFalse();

        workerInitial.get(5, TimeUnit.SECONDS);
        send(payer.pay(70));
        waitForChannel(worker, c -> c.getLong("seqno") == 2);
        JsonObject rewritten = new JsonObject(Files.readString(file));
        assertThat(rewritten.getString("settlement")).isEqualTo("open");
        assertThat(rewritten.getString("channel_address")).isEmpty();
    }

    private WorkerNode startWorker() {
        return startWorker(vertx, gatewayKey, channelId);
    }

    /** A scripted gateway that registers the worker with this test's channel, then the worker. */
    private WorkerNode startWorker(Vertx on, PaymentKeyPair key, ChannelId id) {
        GrpcServer grpc = GrpcServer.server(on);
        grpc.callHandler(GatewayGrpcService.Session, call -> {
            session = call;
            call.handler(message -> {
                switch (message.getMessageCase()) {
                    case HELLO -> {
                        hello.complete(message.getHello());
                        Context context = Vertx.currentContext();
                        registerWhen.thenRun(() -> context.runOnContext(v -> call.response().write(GatewayMessage.newBuilder().setRegistered(Registered.newBuilder()
                                .setHeartbeatIntervalMs(1000).setChannel(PaymentChannel.newBuilder()
                                        .setChannelId(ByteString.copyFrom(id.toBytes()))
                                        .setGatewayPublicKey(ByteString.copyFrom(key.publicKey().toBytes()))
                                        .setDepositCapNanoton(1_000_000).setEveryTokens(1).setEveryMs(100)
                                        .addPrices(PriceTerms.newBuilder().setModel("synthetic").setPricePerToken(2)
                                                .setWorkerFeePerToken(1).setWorkerCoefficient(1000).setPromptMultiplier(10_000)
                                                .setCachedMultiplier(10_000).setCompletionMultiplier(10_000)
                                                .setReasoningMultiplier(10_000)))).build())));
                    }
                    case CHANNEL_ACCEPTED -> workerInitial.complete(
                            SignedSemiChannel.parse(message.getChannelAccepted().getSignedStateBoc().toByteArray()));
                    default -> { }
                }
            });
        });
        gateway = await(on.createHttpServer().requestHandler(grpc).listen(0, "127.0.0.1"));
        WorkerNode worker = new WorkerNode(new SyntheticEngine(1000, 4, 2048), new WorkerOptions("paid-worker", "127.0.0.1", 0,
                null, SocketAddress.inetSocketAddress(gateway.actualPort(), "127.0.0.1"), SchedulerOptions.DEFAULTS, 1000,
                new WorkerPaymentOptions(stateDir, "", 1_000, 5_000)));
        Future<String> deployed = on.deployVerticle(worker).onSuccess(d -> workerDeployment = d);
        if (registerWhen.isDone()) {
            await(deployed.compose(deployment -> worker.registered()));
        }
        return worker;
    }

    /**
     * A gateway sends requests naming the channel it offers as soon as it has registered the
     * worker, and the worker may not have opened it yet (an on-chain one reads its contract first):
     * such a request waits for the open, and is served, where it was refused payment_required (a
     * 502 for the gateway's client). One cancelled while it waits ends CANCELLED, metering nothing.
     */
    @Test
    void aRequestNamingTheChannelBeingOpened_waitsForIt_insteadOfBeingRefused() throws Exception {
        CompletableFuture<Void> register = new CompletableFuture<>();
        registerWhen = register;
        WorkerNode worker = startWorker();
        hello.get(5, TimeUnit.SECONDS);
        GrpcClient grpc = GrpcClient.client(vertx);
        SocketAddress address = SocketAddress.inetSocketAddress(URI.create(worker.endpoint()).getPort(), "127.0.0.1");
        GenerateCall start = GenerateCall.newBuilder().setStart(GenerateRequest.newBuilder().setRequestId("early")
                .setModel("synthetic").setMaxTokens(5).setChannelId(ByteString.copyFrom(channelId.toBytes()))
                .setChat(ChatMessages.newBuilder().addMessages(ChatMessage.newBuilder().setRole("user").setContent("hi"))))
                .build();
        CompletableFuture<Final> served = generate(grpc, address, start, false);
        CompletableFuture<Final> cancelled = generate(grpc, address, start, true);
        Thread.sleep(200);
        assertThat(served).isNotDone();

        register.complete(null);

        Final fin = served.get(5, TimeUnit.SECONDS);
        assertThat(fin.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
        assertThat(fin.getUsage().getCompletionTokens()).isEqualTo(5);
        Final gone = cancelled.get(5, TimeUnit.SECONDS);
        assertThat(gone.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_CANCELLED);
        assertThat(gone.getUsage()).isEqualTo(Usage.getDefaultInstance());
    }

    /** One Generate call; {@code cancel}: a Cancel right after the start. Completes with its Final. */
    private CompletableFuture<Final> generate(GrpcClient grpc, SocketAddress worker, GenerateCall start, boolean cancel) {
        CompletableFuture<Final> fin = new CompletableFuture<>();
        ClientChains.onContext(vertx, () -> grpc.request(worker, WorkerGrpcClient.Generate).onSuccess(request -> {
            request.write(start);
            if (cancel) {
                request.write(GenerateCall.newBuilder().setCancel(Cancel.getDefaultInstance()).build());
            }
            request.response().onSuccess(response -> response.handler(event -> {
                if (event.hasFinal()) {
                    fin.complete(event.getFinal());
                }
            }).endHandler(v -> fin.completeExceptionally(new AssertionError("ended without a Final: " + response.status()
                    + " " + response.statusMessage()))));
        }));
        return fin;
    }

    private void send(SignedSemiChannel state) {
        GrpcServerRequest<WorkerMessage, GatewayMessage> call = session;
        call.response().write(GatewayMessage.newBuilder()
                .setPayment(Payment.newBuilder().setSignedStateBoc(ByteString.copyFrom(state.boc()))).build());
    }

    private JsonObject waitForChannel(WorkerNode worker, Predicate<JsonObject> condition) throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        JsonObject last = null;
        while (System.nanoTime() < deadline) {
            HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create(worker.endpoint() + "/status")).build(),
                    HttpResponse.BodyHandlers.ofString());
            JsonObject status = new JsonObject(response.body());
            if (!status.getJsonArray("channels").isEmpty()) {
                last = status.getJsonArray("channels").getJsonObject(0);
                if (condition.test(last)) {
                    return last;
                }
            }
            Thread.sleep(20);
        }
        throw new AssertionError("the worker's channel never got there; last: " + last);
    }

    private static <T> T await(Future<T> future) {
        try {
            return future.toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError("future failed", e);
        }
    }
}
