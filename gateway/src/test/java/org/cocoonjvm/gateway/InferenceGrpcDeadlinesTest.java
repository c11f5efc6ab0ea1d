package org.cocoonjvm.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.gateway.InferenceGrpc.chat;
import static org.cocoonjvm.gateway.TestNetwork.ACCOUNT;
import static org.cocoonjvm.gateway.TestNetwork.API_KEY;
import static org.cocoonjvm.gateway.TestNetwork.eventually;

import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.grpc.client.GrpcClientOptions;
import io.vertx.grpc.common.GrpcStatus;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.cocoonjvm.billing.accounts.InMemoryAccountBook;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.gateway.relay.RelayOptions;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import org.cocoonjvm.worker.scheduler.SchedulerOptions;
import org.cocoonjvm.worker.serve.WorkerNode;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Many concurrent {@code Generate} calls whose deadlines ({@code grpc-timeout}) pass while their
 * worker is still generating or still has them queued, against a client that enforces its
 * deadlines itself, as gRPC's own clients do, and a ledger that is slow to settle. Every call must
 * end with the gateway's own {@code DEADLINE_EXCEEDED}, its cost trailers and its request id, and
 * the costs told must add up to what the account was charged (audit N, N-2: from about ten
 * concurrent calls the client's own timer fired first, so calls were billed with no cost told,
 * and the queued ones had no request id to look them up by).
 */
class InferenceGrpcDeadlinesTest {
    private static final int CALLS = 40;
    /** How long each of the ledger's calls takes once the calls are admitted: the settlements queue. */
    private static final long SLOW_LEDGER_MS = 40;

    private TestNetwork net;
    private ExecutorService ledgerThread;
    private volatile long ledgerDelayMs;

    @AfterEach
    void stop() {
        if (net != null) {
            net.close();
        }
        if (ledgerThread != null) {
            ledgerThread.shutdownNow();
        }
    }

    @Test
    void manyCallsPastTheirDeadlines_eachGetsTheGatewaysDeadlineExceeded_withItsCostAndId_andTheCostsAddUpToTheSpend()
            throws Exception {
        // One ledger thread, as a busy database: once every call is admitted, each call into the
        // book waits behind the others, so a settlement can be a second or more in coming.
        ledgerThread = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "slow-ledger");
            t.setDaemon(true);
            return t;
        });
        Executor ledger = task -> ledgerThread.execute(() -> {
            long delay = ledgerDelayMs;
            if (delay > 0) {
                try {
                    Thread.sleep(delay);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            task.run();
        });
        net = new TestNetwork(KeyLimits.UNLIMITED, RelayOptions.DEFAULTS, TestNetwork.START_BALANCE,
                new InMemoryAccountBook(Clock.systemUTC()), ledger);
        // Ten sequences at a time at 10 tokens/s, 400 tokens each: every reply outlasts its
        // deadline, and thirty of the calls wait in the worker's queue, with no token, until theirs.
        WorkerNode worker = net.addWorker(new SyntheticEngine(10, 10, 4096, 400), SchedulerOptions.DEFAULTS, 2_000);
        InferenceGrpc enforcing = new InferenceGrpc(net, new GrpcClientOptions().setScheduleDeadlineAutomatically(true));
        // One call cut at its deadline first: a cold JVM's first pass through a path (classes
        // loaded, code interpreted) can hold the event loops for a good part of the margin.
        InferenceGrpc.Call warmUp = TestNetwork.await(io.vertx.core.Future.fromCompletionStage(
                enforcing.generate(API_KEY, chat("synthetic").build(), 1_000).ended));
        assertThat(warmUp.status).isEqualTo(GrpcStatus.DEADLINE_EXCEEDED);
        eventually("the warm-up call is settled", () -> net.accounts.balance(ACCOUNT).reservedNanoton() == 0);
        // Its worker slot is held until the worker's Final (after the answer): the forty below fill all 40.
        eventually("the warm-up call's worker stopped", () -> net.gateway.registry().all().iterator().next().inFlight() == 0);
        long spentBefore = net.accounts.balance(ACCOUNT).spentNanoton();

        List<InferenceGrpc.Call> calls = new ArrayList<>();
        List<Long> deadlines = new ArrayList<>();
        for (int i = 0; i < CALLS; i++) {
            long deadlineMs = 2_000 + (i % 4) * 500L;  // 2, 2.5, 3 and 3.5 s: cut 250 to 350 ms before
            deadlines.add(deadlineMs);
            calls.add(enforcing.generate(API_KEY, chat("synthetic").setMaxTokens(1_000).build(), deadlineMs));
        }
        // Each call has its headers, with its id, as soon as it is admitted: the queued ones too.
        eventually("every call is admitted and has its headers", 10_000, () -> calls.stream().allMatch(c -> c.headers != null));
        ledgerDelayMs = SLOW_LEDGER_MS;

        // A call that the client's own timer ended has no status to wait for: those are named below.
        try {
            CompletableFuture.allOf(calls.stream().map(c -> c.ended.handle((ok, failure) -> null)).toArray(CompletableFuture[]::new))
                    .get(10, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            // asserted call by call
        }

        long told = 0;
        long lateMs = 0;
        String latest = "";
        Set<String> ids = new HashSet<>();
        for (int i = 0; i < CALLS; i++) {
            InferenceGrpc.Call call = calls.get(i);
            long deadlineMs = deadlines.get(i);
            String which = "call " + i + " (deadline " + deadlineMs + " ms)";
            assertThat(call.ended).as(which + " ended with a status, not the client's own cancel").isCompleted()
                    .isNotCompletedExceptionally();
            assertThat(call.status).as(which).isEqualTo(GrpcStatus.DEADLINE_EXCEEDED);
            assertThat(call.metadata("cocoon-error")).as(which + ": the gateway's answer, not the client's own timer")
                    .isEqualTo("timeout");
            String id = call.headers.get("cocoon-request-id");
            assertThat(id).as(which + ": its id").startsWith("chatcmpl-");
            ids.add(id);
            assertThat(TimeUnit.NANOSECONDS.toMillis(call.headersNanos - call.sentNanos))
                    .as(which + ": its headers came at admission, long before its end").isLessThan(deadlineMs / 2);
            // How long after the gateway's cut (its margin before the deadline) the answer came, for the log.
            long late = TimeUnit.NANOSECONDS.toMillis(call.endedNanos - call.sentNanos)
                    - (deadlineMs - org.cocoonjvm.gateway.api.InferenceEndpoint.answerMarginMs(deadlineMs));
            if (late > lateMs) {
                lateMs = late;
                latest = which + ", headers after " + TimeUnit.NANOSECONDS.toMillis(call.headersNanos - call.sentNanos) + " ms";
            }
            String cost = call.metadata("cocoon-total-cost-nanoton");
            assertThat(cost).as(which + ": what it cost").isNotNull();
            assertThat(call.metadata("cocoon-prompt-tokens")).as(which).isNotNull();
            long tokens = call.deltas().stream().mapToLong(e -> e.getDelta().getTokens()).sum();
            assertThat(Long.parseLong(call.metadata("cocoon-completion-tokens"))).as(which + ": the tokens it was sent")
                    .isEqualTo(tokens);
            told += Long.parseLong(cost);
        }
        System.out.println("InferenceGrpcDeadlinesTest: the latest answer came " + lateMs + " ms after its cut: " + latest);
        assertThat(ids).as("one id per call").hasSize(CALLS);
        assertThat(calls).as("some calls were running").anyMatch(c -> !c.deltas().isEmpty());
        assertThat(calls).as("some were still queued, with no token").anyMatch(c -> c.deltas().isEmpty());

        // The settlements, behind the slow ledger, come after the answers: they charge what was told.
        eventually("every call is settled", 20_000, () -> net.accounts.balance(ACCOUNT).reservedNanoton() == 0);
        long spent = net.accounts.balance(ACCOUNT).spentNanoton() - spentBefore;
        assertThat(spent).as("charged, against %d told", told).isPositive().isEqualTo(told);

        // Each billed call can be looked up by the id in its headers, at the cost it was told.
        ledgerDelayMs = 0;
        for (InferenceGrpc.Call call : calls) {
            String id = call.headers.get("cocoon-request-id");
            long cost = Long.parseLong(call.metadata("cocoon-total-cost-nanoton"));
            TestNetwork.Reply reply = net.call(HttpMethod.GET, "/v1/requests/" + id, API_KEY, null);
            if (cost == 0) {
                assertThat(reply.status()).as(id + ", billed nothing").isEqualTo(404);
            } else {
                assertThat(reply.status()).as(id).isEqualTo(200);
                assertThat(reply.json().getJsonObject("usage").getLong("total_cost")).as(id).isEqualTo(cost);
            }
        }

        // The worker is paid all it metered, the tokens it made between the cut and its stop
        // included (the gateway's to pay, not the clients'): its channel agrees with its own count.
        eventually("the worker is paid all it metered", 10_000, () -> channel(worker).getLong("unpaid_nanoton") == 0);
        assertThat(channel(worker).getLong("sent_nanoton")).as("paid, of %d billed at twice the worker's fee", spent)
                .isGreaterThanOrEqualTo(spent / 2);
    }

    @Test
    void theMargin_isATenthOfTheDeadline_from250msTo1s_neverMoreThanHalfOfIt() {
        assertThat(org.cocoonjvm.gateway.api.InferenceEndpoint.answerMarginMs(1_500)).isEqualTo(250);
        assertThat(org.cocoonjvm.gateway.api.InferenceEndpoint.answerMarginMs(3_000)).isEqualTo(300);
        assertThat(org.cocoonjvm.gateway.api.InferenceEndpoint.answerMarginMs(30_000)).isEqualTo(1_000);
        assertThat(org.cocoonjvm.gateway.api.InferenceEndpoint.answerMarginMs(300)).isEqualTo(150);
        assertThat(org.cocoonjvm.gateway.api.InferenceEndpoint.answerMarginMs(1)).isZero();
    }

    private JsonObject channel(WorkerNode worker) {
        JsonArray channels = net.workerStatus(worker).getJsonArray("channels");
        assertThat(channels).hasSize(1);
        return channels.getJsonObject(0);
    }
}
