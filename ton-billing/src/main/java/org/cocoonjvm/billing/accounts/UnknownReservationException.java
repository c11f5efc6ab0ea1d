package org.cocoonjvm.billing.accounts;

/**
 * The book has no record of this reservation: it was issued by another book, altered, or closed so
 * long ago that its outcome was forgotten. Nothing was charged. A bug in the caller, hence the
 * stack trace.
 */
public final class UnknownReservationException extends AccountException {
    private final Reservation reservation;

    public UnknownReservationException(Reservation reservation, String why) {
        super("unknown reservation " + reservation + ": " + why, true);
        this.reservation = reservation;
    }

    public Reservation reservation() {
        return reservation;
    }

    @Override
    public String code() {
        return "unknown_reservation";
    }
}
