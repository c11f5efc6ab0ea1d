package org.cocoonjvm.billing.ledger;

/**
 * This gateway's lease is no longer its own: its incarnation was fenced, either because its lease
 * expired and another gateway's sweep ended its open reservations, or because another process
 * started with the same {@link GatewayId}. Nothing of the refused call took effect. The process must
 * stop serving: whatever it still meters is not billed, so it must not be paid either. Restarting
 * (a new incarnation, with recovery) is the way back.
 */
public final class LeaseLostException extends RuntimeException {
    private final GatewayId gateway;
    private final long epoch;

    public LeaseLostException(GatewayId gateway, long epoch, String what) {
        super("gateway " + gateway + " (epoch " + epoch + ") no longer holds its lease: " + what
                + "; this process must stop serving and be restarted", null, false, false);
        this.gateway = gateway;
        this.epoch = epoch;
    }

    public GatewayId gateway() {
        return gateway;
    }

    /** The incarnation that was fenced. */
    public long epoch() {
        return epoch;
    }
}
