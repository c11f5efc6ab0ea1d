package org.cocoonjvm.gateway.registry;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.cocoonjvm.billing.accounts.MutableClock;
import org.cocoonjvm.protocol.grpc.Hello;
import org.cocoonjvm.protocol.grpc.ModelRef;
import org.cocoonjvm.protocol.grpc.WorkerLoad;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.openai.ServiceTier;
import org.junit.jupiter.api.Test;

/** The routing rule, on the registry alone, with a hand-driven clock. */
class WorkerRegistryTest {
    private final AtomicLong now = new AtomicLong(1_000_000_000L);
    private static final Instant START = Instant.parse("2025-06-01T12:00:00Z");
    private static final long START_SECONDS = START.getEpochSecond();
    private final MutableClock wall = new MutableClock(START);
    private final WorkerRegistry registry = new WorkerRegistry(100, 25, now::get, wall);

    private RegisteredWorker worker(String id, int capacity) {
        try {
            return registry.register(hello(id, capacity, ""));
        } catch (WorkerRefusedException e) {
            throw new AssertionError(e);
        }
    }

    /** Each worker id its own port: an endpoint is one worker's. */
    private static final java.util.Map<String, Integer> PORTS = new java.util.concurrent.ConcurrentHashMap<>();

    private static Hello hello(String id, int capacity, String paymentKey) {
        return hello(id, capacity, paymentKey, "http://127.0.0.1:" + PORTS.computeIfAbsent(id, k -> 9000 + PORTS.size()));
    }

    private static Hello hello(String id, int capacity, String paymentKey, String endpoint) {
        return Hello.newBuilder().setWorkerId(id).setEndpoint(endpoint)
                .addModels(ModelRef.newBuilder().setName("m").setHash("h").setMaxContext(4096)).setCapacity(capacity)
                .setPaymentPublicKey(ByteString.copyFromUtf8(paymentKey)).build();
    }

    /**
     * What a worker announces sizes every client's hold for its model and its share of traffic:
     * values no model or machine has are refused, naming the field (audit X, X-5: one worker's
     * template of 4e9 tokens had every client of the model refused 402).
     */
    @Test
    void announcementsPastWhatAnyModelOrMachineHas_areRefused_namingTheField() {
        ModelRef model = hello("w", 4, "").getModels(0);
        record Case(Hello hello, String named) {}
        for (Case c : List.of(
                new Case(hello("w", 70_000, ""), "capacity 70000, past the 65536"),
                new Case(hello("w", -1, ""), "capacity 4294967295"),
                new Case(hello("w", 4, "").toBuilder().setModels(0, model.toBuilder().setMaxContext(1 << 25)).build(),
                        "max_context of m 33554432"),
                new Case(hello("w", 4, "").toBuilder().setModels(0, model.toBuilder().setChatTemplateTokens(-96_000_000)).build(),
                        "chat_template_tokens of m 4198967296"),
                new Case(hello("w", 4, "").toBuilder().setModels(0, model.toBuilder().setChatMessageTokens(70_000)).build(),
                        "chat_message_tokens of m 70000"))) {
            assertThatThrownBy(() -> registry.register(c.hello())).as(c.named())
                    .isInstanceOfSatisfying(WorkerRefusedException.class, e -> {
                        assertThat(e.code()).isEqualTo("invalid_hello");
                        assertThat(e.getMessage()).contains(c.named());
                    });
        }
        assertThat(registry.all()).isEmpty();
        assertThat(worker("w", 65_536).capacity()).as("the limit itself is taken").isEqualTo(65_536);
    }

    @Test
    void aLiveIdIsTakenOverByTheSameKeyOnly_andFreedWhenItsSessionEnds() throws Exception {
        RegisteredWorker first = registry.register(hello("w", 4, "key-a"));

        assertThatThrownBy(() -> registry.checkIdFree(hello("w", 4, "key-b")))
                .isInstanceOfSatisfying(WorkerRefusedException.class, e -> assertThat(e.code()).isEqualTo("worker_id_in_use"));
        assertThatThrownBy(() -> registry.register(hello("w", 4, "key-b")))
                .isInstanceOfSatisfying(WorkerRefusedException.class, e -> assertThat(e.getMessage())
                        .startsWith("worker id 'w' is in use by another worker"));
        assertThatThrownBy(() -> registry.register(hello("w", 4, ""))).isInstanceOf(WorkerRefusedException.class);
        assertThat(registry.all()).containsExactly(first);

        RegisteredWorker restarted = registry.register(hello("w", 8, "key-a"));
        assertThat(registry.all()).containsExactly(restarted);
        registry.remove(first, WorkerRegistry.Departure.GONE);  // the old session's end removes nothing now
        assertThat(registry.all()).containsExactly(restarted);

        registry.remove(restarted, WorkerRegistry.Departure.GONE);
        assertThat(registry.register(hello("w", 4, "key-b")).capacity()).isEqualTo(4);
    }

    /**
     * A second worker announcing a registered worker's endpoint is refused: its requests would go
     * to that worker, which the gateway would credit to it (audit I, I-6). The same worker
     * reconnecting keeps it; once the holder leaves, it is free.
     */
    @Test
    void anEndpointIsOneWorkers_whileItsSessionLives() throws Exception {
        RegisteredWorker honest = registry.register(hello("honest", 4, "key-a", "http://127.0.0.1:7001"));

        assertThatThrownBy(() -> registry.checkIdFree(hello("freeloader", 4, "key-b", "http://127.0.0.1:7001")))
                .isInstanceOfSatisfying(WorkerRefusedException.class, e -> assertThat(e.code()).isEqualTo("endpoint_in_use"));
        assertThatThrownBy(() -> registry.checkIdFree(hello("honest", 4, "key-b", "http://127.0.0.1:7001")))
                .isInstanceOfSatisfying(WorkerRefusedException.class, e -> assertThat(e.code()).isEqualTo("worker_id_in_use"));
        assertThatThrownBy(() -> registry.register(hello("freeloader", 4, "key-b", "http://127.0.0.1:7001")))
                .isInstanceOfSatisfying(WorkerRefusedException.class, e -> {
                    assertThat(e.code()).isEqualTo("endpoint_in_use");
                    assertThat(e.getMessage()).contains("registered by worker 'honest'");
                });
        RegisteredWorker again = registry.register(hello("honest", 4, "key-a", "http://127.0.0.1:7001"));
        assertThat(registry.all()).containsExactly(again);

        registry.remove(again, WorkerRegistry.Departure.GONE);
        registry.remove(honest, WorkerRegistry.Departure.GONE);
        assertThat(registry.register(hello("freeloader", 4, "key-b", "http://127.0.0.1:7001")).id()).isEqualTo("freeloader");
    }

    private RegisteredWorker pick(ServiceTier tier, long affinity) {
        return registry.pick(new WorkerRegistry.Route("m", tier, Set.of(), affinity));
    }

    @Test
    void aModelWhoseLastWorkerLeftRecently_isUnavailableForNow_andUnknownLater() {
        registry.remove(worker("only", 2), WorkerRegistry.Departure.GONE);

        assertThatThrownBy(() -> pick(ServiceTier.DEFAULT, 0)).isInstanceOfSatisfying(ApiException.class, e -> {
            assertThat(e.kind()).isEqualTo(ErrorKind.NO_CAPACITY);
            assertThat(e.retryAfterSeconds()).isEqualTo(WorkerRegistry.RECENTLY_SERVED_RETRY_AFTER_S);
        });
        assertThatThrownBy(() -> registry.pick(new WorkerRegistry.Route("m@h", ServiceTier.DEFAULT, Set.of(), 0)))
                .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.kind()).isEqualTo(ErrorKind.NO_CAPACITY));
        assertThatThrownBy(() -> registry.pick(new WorkerRegistry.Route("never", ServiceTier.DEFAULT, Set.of(), 0)))
                .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.kind()).isEqualTo(ErrorKind.MODEL_NOT_FOUND));

        // Listed as long as it is not unknown, as it was served.
        assertThat(registry.knownModels()).singleElement().satisfies(known -> {
            assertThat(known.model().getName()).isEqualTo("m");
            assertThat(known.model().getHash()).isEqualTo("h");
            assertThat(known.createdSeconds()).isEqualTo(START_SECONDS);
        });

        now.addAndGet(WorkerRegistry.RECENTLY_SERVED_NANOS + 1);
        assertThatThrownBy(() -> pick(ServiceTier.DEFAULT, 0))
                .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.kind()).isEqualTo(ErrorKind.MODEL_NOT_FOUND));
        assertThat(registry.knownModels()).isEmpty();
    }

    /**
     * A model whose only worker left to settle its channel, saying it comes straight back, is
     * unavailable for as long as that takes: {@code Retry-After: 1}, not the 5 s for a worker gone,
     * which the OpenAI SDKs wait out (audit K, K-4).
     */
    @Test
    void aModelWhoseLastWorkerLeftToComeBack_isRetriedInASecond() {
        registry.remove(worker("only", 2), WorkerRegistry.Departure.RETURNING);
        now.addAndGet(TimeUnit.MILLISECONDS.toNanos(200));

        assertThatThrownBy(() -> pick(ServiceTier.DEFAULT, 0)).isInstanceOfSatisfying(ApiException.class, e -> {
            assertThat(e.kind()).isEqualTo(ErrorKind.NO_CAPACITY);
            assertThat(e.retryAfterSeconds()).isEqualTo(1);
            assertThat(e.getMessage()).contains("settle its payment channel", "expected back within 1 s");
        });
    }

    /**
     * The wait announced is what the model's last return took (on chain, a new channel is a
     * deploy); a worker later than that by more than the grace counts as gone.
     */
    @Test
    void theWaitForAReturningWorker_isWhatItsLastReturnTook_untilItIsOverdue() {
        registry.remove(worker("only", 2), WorkerRegistry.Departure.RETURNING);
        now.addAndGet(TimeUnit.MILLISECONDS.toNanos(7_500));
        registry.remove(worker("only", 2), WorkerRegistry.Departure.RETURNING);
        now.addAndGet(TimeUnit.SECONDS.toNanos(2));

        assertThatThrownBy(() -> pick(ServiceTier.DEFAULT, 0)).isInstanceOfSatisfying(ApiException.class,
                e -> assertThat(e.retryAfterSeconds()).isEqualTo(6));
        now.addAndGet(TimeUnit.MILLISECONDS.toNanos(5_500));
        assertThatThrownBy(() -> pick(ServiceTier.DEFAULT, 0)).isInstanceOfSatisfying(ApiException.class,
                e -> assertThat(e.retryAfterSeconds()).isEqualTo(1));
        now.addAndGet(WorkerRegistry.RETURN_GRACE_NANOS + 1);
        assertThatThrownBy(() -> pick(ServiceTier.DEFAULT, 0)).isInstanceOfSatisfying(ApiException.class, e -> {
            assertThat(e.retryAfterSeconds()).isEqualTo(WorkerRegistry.RECENTLY_SERVED_RETRY_AFTER_S);
            assertThat(e.getMessage()).doesNotContain("expected back");
        });
    }

    @Test
    void aModelsCreationTime_isItsFirstRegistration_keptWhileSomeWorkerServesIt() {
        RegisteredWorker first = worker("first", 2);
        now.addAndGet(WorkerRegistry.RECENTLY_SERVED_NANOS * 2);
        wall.advance(Duration.ofNanos(WorkerRegistry.RECENTLY_SERVED_NANOS * 2));
        RegisteredWorker second = worker("second", 2);
        registry.remove(first, WorkerRegistry.Departure.GONE);  // a departure prunes what left long ago, never a model still served

        assertThat(registry.knownModels()).singleElement()
                .satisfies(known -> assertThat(known.createdSeconds()).isEqualTo(START_SECONDS));

        // Gone past the window, it is forgotten: served again, it is a new model.
        registry.remove(second, WorkerRegistry.Departure.GONE);
        now.addAndGet(WorkerRegistry.RECENTLY_SERVED_NANOS + 1);
        wall.advance(Duration.ofSeconds(1));
        registry.remove(worker("third", 2), WorkerRegistry.Departure.GONE);
        assertThat(registry.knownModels()).singleElement()
                .satisfies(known -> assertThat(known.createdSeconds()).isGreaterThan(START_SECONDS));
    }

    @Test
    void everyWorkerFailing_isNoCapacity_untilTheFirstBreakerHalfOpens() {
        RegisteredWorker a = worker("a", 4);
        RegisteredWorker b = worker("b", 4);
        for (int i = 0; i < RegisteredWorker.BREAKER_THRESHOLD; i++) {
            a.failed(now.get());
        }
        now.addAndGet(TimeUnit.MILLISECONDS.toNanos(2_500));
        for (int i = 0; i < RegisteredWorker.BREAKER_THRESHOLD; i++) {
            b.failed(now.get());
        }
        registry.heartbeat(a, WorkerLoad.getDefaultInstance());
        registry.heartbeat(b, WorkerLoad.getDefaultInstance());

        // a half-opens in 7.5 s: rounded up.
        assertThatThrownBy(() -> pick(ServiceTier.DEFAULT, 0)).isInstanceOfSatisfying(ApiException.class, e -> {
            assertThat(e.kind()).isEqualTo(ErrorKind.NO_CAPACITY);
            assertThat(e.retryAfterSeconds()).isEqualTo(8);
            assertThat(e.getMessage()).contains("2 workers", "failing", "circuit breaker");
        });
    }

    @Test
    void leastInFlightPerCapacity_wins() {
        RegisteredWorker small = worker("small", 2);
        RegisteredWorker big = worker("big", 8);
        small.started();
        big.started();
        assertThat(pick(ServiceTier.DEFAULT, 0)).isSameAs(big);
    }

    @Test
    void measuredSpeed_weighsTheChoice() {
        RegisteredWorker slow = worker("slow", 4);
        RegisteredWorker fast = worker("fast", 4);
        slow.recordSpeed(11, TimeUnit.SECONDS.toNanos(1));   // 11 tokens/s
        fast.recordSpeed(101, TimeUnit.SECONDS.toNanos(1));  // 101 tokens/s
        fast.started();
        fast.started();
        // Two in flight on the fast one still beats none on one that is nine times slower.
        assertThat(pick(ServiceTier.DEFAULT, 0)).isSameAs(fast);
    }

    @Test
    void unknownModel_is404_andNoHealthyWorker_is503() {
        assertThatThrownBy(() -> registry.pick(new WorkerRegistry.Route("other", ServiceTier.DEFAULT, Set.of(), 0)))
                .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.kind()).isEqualTo(ErrorKind.MODEL_NOT_FOUND));
        worker("w", 4);
        now.addAndGet(TimeUnit.MILLISECONDS.toNanos(301));  // three heartbeat intervals of silence
        assertThatThrownBy(() -> pick(ServiceTier.DEFAULT, 0))
                .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.kind()).isEqualTo(ErrorKind.NO_CAPACITY));
    }

    @Test
    void heartbeat_keepsAWorkerHealthy() {
        RegisteredWorker w = worker("w", 4);
        now.addAndGet(TimeUnit.MILLISECONDS.toNanos(250));
        registry.heartbeat(w, WorkerLoad.getDefaultInstance());
        now.addAndGet(TimeUnit.MILLISECONDS.toNanos(250));
        assertThat(pick(ServiceTier.DEFAULT, 0)).isSameAs(w);
    }

    @Test
    void circuitBreaker_opensAfterThreeFailures_andClosesLater() {
        RegisteredWorker flaky = worker("flaky", 4);
        RegisteredWorker steady = worker("steady", 4);
        for (int i = 0; i < RegisteredWorker.BREAKER_THRESHOLD; i++) {
            flaky.failed(now.get());
        }
        steady.started();
        steady.started();
        assertThat(pick(ServiceTier.DEFAULT, 0)).isSameAs(steady);
        now.addAndGet(RegisteredWorker.BREAKER_OPEN_NANOS + 1);
        registry.heartbeat(flaky, WorkerLoad.getDefaultInstance());
        registry.heartbeat(steady, WorkerLoad.getDefaultInstance());
        assertThat(pick(ServiceTier.DEFAULT, 0)).isSameAs(flaky);
    }

    @Test
    void flex_onlyBelowCapacity_default_overcommits() {
        RegisteredWorker w = worker("w", 1);
        w.started();
        assertThatThrownBy(() -> pick(ServiceTier.FLEX, 0))
                .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.kind()).isEqualTo(ErrorKind.RATE_LIMITED));
        assertThat(pick(ServiceTier.DEFAULT, 0)).isSameAs(w);
    }

    @Test
    void flex_leavesAReserveToDefault() {
        RegisteredWorker w = worker("w", 4);
        w.started();
        w.started();
        assertThat(pick(ServiceTier.FLEX, 0)).isSameAs(w);
        w.started();   // three of four: the fourth is default's
        assertThatThrownBy(() -> pick(ServiceTier.FLEX, 0))
                .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.kind()).isEqualTo(ErrorKind.RATE_LIMITED));
        assertThat(pick(ServiceTier.DEFAULT, 0)).isSameAs(w);
    }

    @Test
    void flexRoom_reservesAQuarter_atLeastOneSlot_neverTheLast() {
        assertThat(registry.flexRoom(1)).isEqualTo(1);
        assertThat(registry.flexRoom(2)).isEqualTo(1);
        assertThat(registry.flexRoom(7)).isEqualTo(6);
        assertThat(registry.flexRoom(16)).isEqualTo(12);
        assertThat(new WorkerRegistry(100, 0, now::get, Clock.systemUTC()).flexRoom(16)).isEqualTo(16);
        assertThat(new WorkerRegistry(100, 100, now::get, Clock.systemUTC()).flexRoom(16)).isEqualTo(1);
    }

    @Test
    void prefixAffinity_sticksWhileTheWorkerIsNotMuchBusier() {
        RegisteredWorker a = worker("a", 8);
        RegisteredWorker b = worker("b", 8);
        RegisteredWorker first = pick(ServiceTier.DEFAULT, 42);
        RegisteredWorker other = first == a ? b : a;
        first.started();
        first.started();
        assertThat(pick(ServiceTier.DEFAULT, 42)).isSameAs(first);   // two more than the other: within the slack
        first.started();
        assertThat(pick(ServiceTier.DEFAULT, 42)).isSameAs(other);   // three more: least loaded wins
    }

    @Test
    void retries_neverReturnToAWorkerAlreadyTried() {
        RegisteredWorker a = worker("a", 4);
        worker("b", 4);
        RegisteredWorker second = registry.pick(new WorkerRegistry.Route("m", ServiceTier.DEFAULT, Set.of("b"), 0));
        assertThat(second).isSameAs(a);
        assertThat(registry.pick(new WorkerRegistry.Route("m", ServiceTier.DEFAULT, Set.of("a", "b"), 0))).isNull();
    }
    /** An operator's cordon keeps a worker out of routing, across its reconnects, until it is lifted. */
    @Test
    void aCordonedWorker_isNotRouted_evenAfterItReconnects_untilUncordoned() throws Exception {
        RegisteredWorker a = worker("a", 4);
        worker("b", 4);
        assertThat(registry.cordons().add("b")).isTrue();
        assertThat(registry.cordons().add("b")).as("already").isFalse();
        for (int i = 0; i < 20; i++) {
            assertThat(pick(ServiceTier.DEFAULT, 0)).isSameAs(a);
        }

        registry.cordons().add("a");
        assertThatThrownBy(() -> pick(ServiceTier.DEFAULT, 0)).isInstanceOfSatisfying(ApiException.class, e -> {
            assertThat(e.kind()).isEqualTo(ErrorKind.NO_CAPACITY);
            assertThat(e.getMessage()).contains("its 2 workers are taken out of service by the gateway's operator");
            assertThat(e.retryAfterSeconds()).isEqualTo(WorkerRegistry.RECENTLY_SERVED_RETRY_AFTER_S);
        });

        registry.remove(a, WorkerRegistry.Departure.GONE);
        RegisteredWorker back = worker("a", 4);
        assertThat(registry.available(back)).as("its cordon outlived the session").isFalse();
        assertThat(registry.cordons().remove("a")).isTrue();
        assertThat(pick(ServiceTier.DEFAULT, 0)).isSameAs(back);
    }
}
