package org.cocoonjvm.worker.serve;

import io.vertx.core.net.SocketAddress;
import java.time.Duration;
import java.time.Instant;

/**
 * What {@link GatewayLink} remembers of its failures to register, to decide what its log says: the
 * problem last logged and when (the same one is said again only once a minute), and since when its
 * tries have been dropped unanswered (after a while the log points at attestation). Apart from the
 * link because it is log policy, not session state: the link only asks whether a problem is new
 * and what words an unanswered try gets. On the link's event loop only, like the link.
 */
final class LinkProblems {
    /** A worker retrying against the same failure (unreachable, refused) logs it again only this often. */
    private static final Duration PROBLEM_LOG_EVERY = Duration.ofMinutes(1);
    /**
     * How long tries must have been dropped unanswered, one after another, before the log blames
     * attestation. A starting gateway's launcher holds its ports (and the kernel accepts into their
     * backlog) until the gateway listens, seconds later: every routine restart drops tries too, and
     * blamed attestation that no gateway here uses (audit Q, Q-6).
     */
    static final Duration DROPPED_BEFORE_ATTESTATION_HINT = Duration.ofSeconds(10);

    /** The last failure to register that was logged, and when: the same one is logged once a minute. */
    private String lastProblem;
    /** When the tries began to be dropped unanswered, one after another; null while they are not (see {@link #unreachable}). */
    private Instant droppedSince;
    private Instant lastProblemLogged = Instant.EPOCH;

    /** True when {@code problem} is not the one last logged, or that was a minute ago; it then counts as logged now. */
    boolean isNew(String problem) {
        Instant now = Instant.now();
        if (problem.equals(lastProblem) && now.isBefore(lastProblemLogged.plus(PROBLEM_LOG_EVERY))) {
            return false;
        }
        lastProblem = problem;
        lastProblemLogged = now;
        return true;
    }

    /** The worker is registered: whatever fails next is a new problem, logged at once. */
    void registered() {
        lastProblem = null;
    }

    /** The gateway answered a try: it is not the one dropping tries. */
    void answered() {
        droppedSince = null;
    }

    /**
     * The problem to log for a try the gateway did not answer ({@code why}), counting how long tries
     * have been dropped one after another.
     *
     * @param tls whether the link dials the gateway with RA-TLS
     */
    String unanswered(SocketAddress gateway, String why, boolean tls) {
        Instant now = Instant.now();
        if (!dropped(why, tls)) {
            droppedSince = null;
        } else if (droppedSince == null) {
            droppedSince = now;
        }
        return unreachable(gateway, why, tls, droppedSince == null ? Duration.ZERO : Duration.between(droppedSince, now));
    }

    /**
     * Whether a try got a connection that was then dropped: what a TLS port does with plaintext,
     * an attested gateway with a worker it refuses in the handshake, and a starting gateway's held
     * port. A refused connection is a gateway that is down, not one that turns this worker away.
     */
    private static boolean dropped(String why, boolean tls) {
        String said = String.valueOf(why);
        return tls ? !said.contains("Connection refused") : said.contains("closed");
    }

    /**
     * The problem logged for a try the gateway did not answer. The hint at attestation comes only
     * once tries have been dropped for {@link #DROPPED_BEFORE_ATTESTATION_HINT}: sooner, a gateway
     * that is starting explains them as well.
     *
     * @param droppedFor how long tries have been dropped one after another; zero when this one was not
     */
    static String unreachable(SocketAddress gateway, String why, boolean tls, Duration droppedFor) {
        String unreachable = "could not reach gateway " + gateway + " (" + why;
        if (droppedFor.compareTo(DROPPED_BEFORE_ATTESTATION_HINT) < 0) {
            return unreachable + ")";
        }
        // Not the time itself: the problem's text must repeat for its log line to be said once a minute.
        String lasting = "; dropped for over " + DROPPED_BEFORE_ATTESTATION_HINT.toSeconds() + " s";
        if (tls) {
            return unreachable + lasting + ", so the gateway may have refused this worker's attestation in the TLS"
                    + " handshake: its /admin/workers lists the reason under refused)";
        }
        return unreachable + lasting + ": if " + gateway + " is an attested gateway's worker port,"
                + " this worker needs --attestation (the gateway lists it as tls_required under refused in /admin/workers))";
    }
}
