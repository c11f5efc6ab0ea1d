package org.cocoonjvm.gateway.relay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.internal.ContextInternal;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The event loop's timers against what a Vert.x timer does: each runs once, not before its delay,
 * on the context it was set on, unless cancelled; lanes shared by many timers keep that whatever
 * the order of cancels, a lane taken over by a shorter delay included.
 */
class EventLoopTimersTest {
    private Vertx vertx;
    private Context context;
    private EventLoopTimers timers;

    @BeforeEach
    void start() throws Exception {
        vertx = Vertx.vertx();
        context = vertx.getOrCreateContext();
        timers = onLoop(() -> new EventLoopTimers(vertx));
    }

    @AfterEach
    void stop() throws Exception {
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    void timersOfOneDelay_fireInTheOrderSet_noneBeforeItsDelay() throws Exception {
        List<Integer> fired = new CopyOnWriteArrayList<>();
        List<Long> lateness = new CopyOnWriteArrayList<>();
        CompletableFuture<Void> last = new CompletableFuture<>();
        onLoop(() -> {
            for (int i = 0; i < 20; i++) {
                int n = i;
                long due = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(30);
                timers.set(30, v -> {
                    lateness.add(System.nanoTime() - due);
                    fired.add(n);
                    if (n == 19) {
                        last.complete(null);
                    }
                });
            }
            return null;
        });
        last.get(5, TimeUnit.SECONDS);
        assertThat(fired).containsExactlyElementsOf(range(20));
        assertThat(lateness).allMatch(late -> late >= 0);
    }

    @Test
    void aCancelledTimer_doesNotFire_andCancellingAgainOrAfterItFired_doesNothing() throws Exception {
        List<String> fired = new CopyOnWriteArrayList<>();
        CompletableFuture<Void> after = new CompletableFuture<>();
        onLoop(() -> {
            EventLoopTimers.Timer first = timers.set(20, v -> fired.add("first"));
            EventLoopTimers.Timer middle = timers.set(20, v -> fired.add("middle"));
            EventLoopTimers.Timer last = timers.set(20, v -> fired.add("last"));
            first.cancel();  // the head: the lane's Vert.x timer still fires, and finds it gone
            middle.cancel();
            middle.cancel();
            EventLoopTimers.cancel(null);
            timers.set(60, v -> {
                last.cancel();  // fired already
                after.complete(null);
            });
            return null;
        });
        after.get(5, TimeUnit.SECONDS);
        assertThat(fired).containsExactly("last");
    }

    @Test
    void aTimer_runsOnTheContextItWasSetOn() throws Exception {
        ContextInternal request = ((ContextInternal) context).duplicate();  // as an HTTP request's handlers run
        CompletableFuture<Context> ranOn = new CompletableFuture<>();
        request.runOnContext(v -> timers.set(5, due -> ranOn.complete(Vertx.currentContext())));
        assertThat(ranOn.get(5, TimeUnit.SECONDS)).isSameAs(request);
    }

    @Test
    void anActionThatThrows_leavesTheOthersOfItsLaneToRun() throws Exception {
        List<Throwable> reported = new CopyOnWriteArrayList<>();
        context.exceptionHandler(reported::add);
        CompletableFuture<Void> second = new CompletableFuture<>();
        onLoop(() -> {
            timers.set(10, v -> {
                throw new IllegalStateException("boom");
            });
            timers.set(10, v -> second.complete(null));
            return null;
        });
        second.get(5, TimeUnit.SECONDS);
        assertThat(reported).singleElement().extracting(Throwable::getMessage).isEqualTo("boom");
    }

    @Test
    void actions_maySetAndCancelTimersOfTheirOwnLane() throws Exception {
        List<String> fired = new CopyOnWriteArrayList<>();
        CompletableFuture<Void> done = new CompletableFuture<>();
        onLoop(() -> {
            EventLoopTimers.Timer[] later = new EventLoopTimers.Timer[1];
            timers.set(10, v -> {
                fired.add("first");
                later[0].cancel();
                timers.set(10, again -> {
                    fired.add("set by the first");
                    done.complete(null);
                });
            });
            later[0] = timers.set(10, v -> fired.add("cancelled by the first"));
            return null;
        });
        done.get(5, TimeUnit.SECONDS);
        assertThat(fired).containsExactly("first", "set by the first");
    }

    @Test
    void aNewDelay_afterEveryLaneIsTaken_firesOnItsOwnTime() throws Exception {
        CompletableFuture<Long> firedAfter = new CompletableFuture<>();
        onLoop(() -> {
            // Every lane taken by a long delay, and left empty with its Vert.x timer still set.
            List<EventLoopTimers.Timer> long_ = new ArrayList<>();
            for (int i = 0; i < EventLoopTimers.LANES; i++) {
                long_.add(timers.set(60_000 + i, v -> { }));
            }
            long_.forEach(EventLoopTimers.Timer::cancel);
            long set = System.nanoTime();
            timers.set(20, v -> firedAfter.complete(System.nanoTime() - set));
            return null;
        });
        assertThat(TimeUnit.NANOSECONDS.toMillis(firedAfter.get(5, TimeUnit.SECONDS))).isBetween(20L, 4_000L);
    }

    @Test
    void moreDelaysThanLanes_eachStillFires() throws Exception {
        int delays = EventLoopTimers.LANES + 3;
        List<Integer> fired = new CopyOnWriteArrayList<>();
        CompletableFuture<Void> all = new CompletableFuture<>();
        onLoop(() -> {
            for (int i = 0; i < delays; i++) {
                int n = i;
                timers.set(10 + i, v -> {
                    fired.add(n);
                    if (fired.size() == delays) {
                        all.complete(null);
                    }
                });
            }
            return null;
        });
        all.get(5, TimeUnit.SECONDS);
        assertThat(fired).containsExactlyInAnyOrderElementsOf(range(delays));
    }

    @Test
    void theTimersOfAnUndeployedVerticle_doNotFire() throws Exception {
        List<String> fired = new CopyOnWriteArrayList<>();
        String deployment = vertx.deployVerticle(new VerticleBase() {
            @Override
            public Future<?> start() {
                EventLoopTimers own = new EventLoopTimers(vertx);
                for (int i = 0; i < EventLoopTimers.LANES; i++) {
                    own.set(200, v -> fired.add("in a lane"));
                    own.set(60_000 + i, v -> { });
                }
                own.set(200 + EventLoopTimers.LANES, v -> fired.add("of its own"));  // no lane left
                return Future.succeededFuture();
            }
        }).await(5, TimeUnit.SECONDS);
        vertx.undeploy(deployment).await(5, TimeUnit.SECONDS);
        Thread.sleep(600);
        assertThat(fired).isEmpty();
    }

    @Test
    void aTimerSetOutsideAContext_isRefused() throws Exception {
        CompletableFuture<Throwable> refused = new CompletableFuture<>();
        ((ContextInternal) context).nettyEventLoop().execute(() -> {  // the loop's thread, no Vert.x context
            try {
                timers.set(10, v -> { });
                refused.complete(null);
            } catch (IllegalStateException e) {
                refused.complete(e);
            }
        });
        assertThat(refused.get(5, TimeUnit.SECONDS)).hasMessageContaining("outside a Vert.x context");
    }

    @Test
    void useOffTheEventLoop_isRefused() throws Exception {
        EventLoopTimers.Timer timer = onLoop(() -> timers.set(60_000, v -> { }));
        assertThatThrownBy(() -> timers.set(10, v -> { })).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("used from " + Thread.currentThread().getName());
        assertThatThrownBy(timer::cancel).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> new EventLoopTimers(vertx)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("must be made on their event loop");
    }

    private <T> T onLoop(Callable<T> work) throws Exception {
        CompletableFuture<T> result = new CompletableFuture<>();
        context.runOnContext(v -> {
            try {
                result.complete(work.call());
            } catch (Throwable e) {
                result.completeExceptionally(e);
            }
        });
        return result.get(5, TimeUnit.SECONDS);
    }

    private static List<Integer> range(int n) {
        return IntStream.range(0, n).boxed().toList();
    }
}
