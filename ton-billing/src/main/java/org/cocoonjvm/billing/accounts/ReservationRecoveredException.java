package org.cocoonjvm.billing.accounts;

/**
 * Recovery ended this reservation before its owner did: a restart of its gateway, or another
 * gateway's sweep after its lease expired. It was charged its last recorded progress, once
 * ({@link #recovered()}); its owner's late calls are refused, so that usage metered after that
 * progress is neither billed nor paid to a worker. A sign that the caller's gateway lost its lease.
 */
public final class ReservationRecoveredException extends AccountException {
    private final Settlement recovered;

    /** @param recoveredBy who ran the recovery, for the message */
    public ReservationRecoveredException(Settlement recovered, String recoveredBy) {
        super("reservation " + recovered.reservation().id() + " was already ended by recovery (" + recoveredBy
                + ") at its last recorded progress, charging " + recovered.chargedNanoton() + " nanoTON", false);
        this.recovered = recovered;
    }

    /** What the recovery charged and released. */
    public Settlement recovered() {
        return recovered;
    }

    @Override
    public String code() {
        return "reservation_recovered";
    }
}
