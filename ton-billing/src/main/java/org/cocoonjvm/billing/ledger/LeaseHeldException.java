package org.cocoonjvm.billing.ledger;

import java.time.Duration;
import java.time.Instant;

/**
 * A start refused to take a gateway's lease because another process holds it and looks alive: it
 * renewed the lease within its expiry, and nothing shows that it stopped (it did not release the
 * lease, and it is not a process of this host that no longer runs). Taking it over anyway would
 * fence that gateway: its running requests would be ended at their last checkpoint and it would
 * exit (audit N-3). Nothing was changed.
 *
 * <p>A holder that began to stop is not refused at once: {@link JdbcAccountBook#open} waits for its
 * release up to the bound it recorded ({@link #stoppingUntil()}), and this is thrown only when it
 * has not released by then. A holder that stopped and kept its lease for the settlements it left for
 * its next start ({@link #keptAt()}) is not waited for: it will not release it.
 */
public final class LeaseHeldException extends RuntimeException {
    private final GatewayId gateway;
    private final LeaseHolder holder;
    private final Instant renewedAt;
    private final Duration expiresIn;
    private final Duration renewedAgo;
    private final Instant stoppingUntil;
    private final Instant keptAt;

    LeaseHeldException(GatewayId gateway, LeaseHolder holder, Instant renewedAt, Duration expiresIn, Duration renewedAgo,
                       Instant stoppingUntil, Instant keptAt) {
        super("gateway " + gateway + "'s lease is held by " + holder + ", which renewed it " + seconds(renewedAgo)
                + " s ago (at " + renewedAt + ")" + (keptAt != null ? " and stopped at " + keptAt + ", leaving it to expire"
                + " for the settlements it kept for its next start" : stoppingUntil == null ? ""
                : " and began to stop, to release it by " + stoppingUntil) + "; it expires in " + seconds(expiresIn)
                + " s unless renewed");
        this.gateway = gateway;
        this.holder = holder;
        this.renewedAt = renewedAt;
        this.expiresIn = expiresIn;
        this.renewedAgo = renewedAgo;
        this.stoppingUntil = stoppingUntil;
        this.keptAt = keptAt;
    }

    /** Whole seconds, rounded up, at least 0. */
    public static long seconds(Duration d) {
        return Math.max(0, (d.toMillis() + 999) / 1000);
    }

    public GatewayId gateway() {
        return gateway;
    }

    /** The process holding the lease, as it recorded itself. */
    public LeaseHolder holder() {
        return holder;
    }

    /** When the holder last renewed, by its clock. */
    public Instant renewedAt() {
        return renewedAt;
    }

    /** How long before this start the holder last renewed, by this process's clock against the holder's. */
    public Duration renewedAgo() {
        return renewedAgo;
    }

    /** How long until the lease expires if the holder stops renewing now (a renewal moves it on). */
    public Duration expiresIn() {
        return expiresIn;
    }

    /** When the holder, which began to stop, said it would have released the lease; null when it is not stopping. */
    public Instant stoppingUntil() {
        return stoppingUntil;
    }

    /**
     * When the holder stopped and left its lease to expire, for the settlements it kept for its next
     * start (review R, R-1); null when it did not record that.
     */
    public Instant keptAt() {
        return keptAt;
    }
}
