package org.cocoonjvm.billing.ledger;

import java.time.Instant;
import java.time.temporal.ChronoUnit;

/** Instants as stored: whole microseconds since the epoch, the finest both databases keep exactly. */
final class Micros {
    private Micros() {
    }

    static long of(Instant instant) {
        return ChronoUnit.MICROS.between(Instant.EPOCH, instant);
    }

    static Instant toInstant(long micros) {
        return Instant.EPOCH.plus(micros, ChronoUnit.MICROS);
    }
}
