package org.cocoonjvm.billing.accounts;

import java.util.Objects;

/**
 * How a reservation ended. What was held is either charged or given back, and a charge above the
 * hold is recorded as an overrun instead of being dropped:
 * {@code charged + released == reservation.amount + overrun}.
 *
 * @param chargedNanoton  moved from the balance to spent: the request's actual cost
 * @param releasedNanoton given back to the available balance
 * @param overrunNanoton  how much the actual cost exceeded the reservation (0 normally)
 */
public record Settlement(Reservation reservation, long chargedNanoton, long releasedNanoton,
                         long overrunNanoton) {
    public Settlement {
        Objects.requireNonNull(reservation, "reservation");
        if (chargedNanoton < 0 || releasedNanoton < 0 || overrunNanoton < 0
                || chargedNanoton + releasedNanoton
                   != Math.addExact(reservation.amountNanoton(), overrunNanoton)) {
            throw new IllegalArgumentException("inconsistent settlement of " + reservation
                    + ": charged " + chargedNanoton + ", released " + releasedNanoton
                    + ", overrun " + overrunNanoton);
        }
    }

    /** Charge the actual cost, all of it, and give back whatever of the hold it did not use. */
    public static Settlement charge(Reservation reservation, long actualCostNanoton) {
        if (actualCostNanoton < 0) {
            throw new IllegalArgumentException("an actual cost must be >= 0, got " + actualCostNanoton);
        }
        long held = reservation.amountNanoton();
        return new Settlement(reservation, actualCostNanoton, Math.max(0, held - actualCostNanoton),
                Math.max(0, actualCostNanoton - held));
    }

    /** Give the whole hold back: the request never ran. */
    public static Settlement release(Reservation reservation) {
        return new Settlement(reservation, 0, reservation.amountNanoton(), 0);
    }
}
