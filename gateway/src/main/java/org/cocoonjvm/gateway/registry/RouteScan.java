package org.cocoonjvm.gateway.registry;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import org.cocoonjvm.gateway.registry.WorkerRegistry.Route;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.ErrorKind;
import org.cocoonjvm.protocol.openai.ServiceTier;

import static org.cocoonjvm.gateway.registry.WorkerRegistry.RECENTLY_SERVED_RETRY_AFTER_S;
import static org.cocoonjvm.gateway.registry.WorkerRegistry.secondsUntil;

/**
 * One pass of {@link WorkerRegistry#pick} over the workers for a route: those it may go to, and
 * why each other one serving the model may not; then the least loaded of them, or what to answer
 * when none can take the request. Apart from the registry so that the rule's arithmetic and its
 * refusals read in one place; one is made per pick (as before) and read on the picking thread only.
 */
final class RouteScan {
    /** Healthy, routable workers with room for the route's tier. */
    final List<RegisteredWorker> candidates = new ArrayList<>();
    /** Some registered worker serves the model, healthy or not. */
    boolean served;
    /** Some worker serving it was already tried for this request. */
    boolean excludedSome;
    /** Some routable worker had no room left for the route's tier. */
    boolean full;
    /** Healthy workers whose breaker is open, and the time until the first of them half-opens. */
    int failing;
    long untilHalfOpen = Long.MAX_VALUE;
    /** Healthy workers closing their payment channel: back with a new one within seconds. */
    int closing;
    /** Healthy workers the operator cordoned. */
    int cordoned;
    /** The candidates' measured speeds, those that have one. */
    double speedSum;
    int speedCount;

    void candidate(RegisteredWorker w) {
        candidates.add(w);
        if (w.speed() > 0) {
            speedSum += w.speed();
            speedCount++;
        }
    }

    double meanSpeed() {
        return speedCount == 0 ? 1 : speedSum / speedCount;
    }

    /**
     * The candidate with the fewest requests in flight per unit of capacity, weighted by its
     * speed against the candidates' mean; ties go to a random one.
     */
    RegisteredWorker leastLoaded() {
        double meanSpeed = meanSpeed();
        List<RegisteredWorker> best = new ArrayList<>(2);
        double bestScore = Double.MAX_VALUE;
        for (RegisteredWorker w : candidates) {
            double relativeSpeed = w.speed() > 0 ? w.speed() / meanSpeed : 1;
            double score = (w.inFlight() + 1) / (w.capacity() * relativeSpeed);
            if (score < bestScore) {
                best.clear();
                bestScore = score;
            }
            if (score == bestScore) {
                best.add(w);
            }
        }
        return best.get(best.size() == 1 ? 0 : ThreadLocalRandom.current().nextInt(best.size()));
    }

    /** Why workers serve the route's model, none was tried, and none can take it now; in this order of precedence. */
    ApiException refusal(Route route) {
        if (full && route.tier() == ServiceTier.FLEX) {
            return ApiException.retryLater(ErrorKind.RATE_LIMITED, "Flex capacity for '" + route.model()
                    + "' is exhausted; retry later or use the default service tier.", 1);
        }
        if (full) {  // a busy worker takes it in a moment, whatever keeps the others
            return ApiException.retryLater(ErrorKind.NO_CAPACITY, "No worker can serve '" + route.model() + "' right now.", 1);
        }
        if (failing > 0) {
            // Retry-After 1 would spend a client's retries while no worker can be tried: come back when one can.
            int wait = secondsUntil(untilHalfOpen);
            return ApiException.retryLater(ErrorKind.NO_CAPACITY, "No worker can serve '" + route.model() + "' right now: "
                    + (failing == 1 ? "its worker is" : "its " + failing + " workers are") + " failing (circuit breaker"
                    + " open after " + RegisteredWorker.BREAKER_THRESHOLD + " failures in a row); "
                    + (failing == 1 ? "it is" : "the first is") + " tried again in " + wait + " s.", wait);
        }
        if (closing > 0) {
            return ApiException.retryLater(ErrorKind.NO_CAPACITY, "No worker can serve '" + route.model() + "' right now: "
                    + (closing == 1 ? "its worker is settling a payment channel, and takes"
                    : "its " + closing + " workers are settling payment channels, and take")
                    + " new requests again once those running on it are done; retry shortly.", 1);
        }
        if (cordoned > 0) {
            // Only the operator brings it back: no time to promise, so the hint a client's backoff starts from.
            return ApiException.retryLater(ErrorKind.NO_CAPACITY, "No worker can serve '" + route.model() + "' right now: "
                    + (cordoned == 1 ? "its worker is" : "its " + cordoned + " workers are")
                    + " taken out of service by the gateway's operator.", RECENTLY_SERVED_RETRY_AFTER_S);
        }
        return ApiException.retryLater(ErrorKind.NO_CAPACITY, "No worker can serve '" + route.model() + "' right now.", 1);
    }
}
