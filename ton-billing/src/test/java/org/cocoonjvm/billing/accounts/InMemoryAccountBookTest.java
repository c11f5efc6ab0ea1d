package org.cocoonjvm.billing.accounts;

import java.time.Clock;
import java.time.Duration;

import org.cocoonjvm.billing.pricing.TokenCounts;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class InMemoryAccountBookTest extends AccountBookContract {

    @Override
    protected AccountBook newBook(Clock clock) {
        return new InMemoryAccountBook(clock, Duration.ofMinutes(10));
    }

    @Test
    void endedReservation_isRememberedForTheRetentionThenForgotten() {
        book.credit("alice", 1_000, "tx-1");
        Reservation reservation = book.reserve("alice", 100);
        Settlement first = book.settle(reservation, 40);

        clock.advance(Duration.ofMinutes(10));
        book.release(book.reserve("alice", 1));   // ending another reservation sweeps old outcomes
        assertThat(book.settle(reservation, 90)).isEqualTo(first);

        clock.advance(Duration.ofSeconds(1));
        book.release(book.reserve("alice", 1));
        assertThatThrownBy(() -> book.settle(reservation, 90))
                .isInstanceOf(UnknownReservationException.class).hasMessageContaining("PT10M");
        assertThat(book.balance("alice")).isEqualTo(new AccountState("alice", 960, 0, 40));
    }

    @Test
    void billedRequest_isKeptForTheRetentionThenForgotten() {
        book.credit("alice", 1_000, "tx-1");
        book.settle(book.reserve("alice", 100), new RequestRecord("chatcmpl-1", "worker-1", null, "m",
                new TokenCounts(10, 0, 20, 0), 40, 20));

        clock.advance(Duration.ofMinutes(10));
        book.release(book.reserve("alice", 1));
        assertThat(book.request("alice", "chatcmpl-1")).isPresent();

        clock.advance(Duration.ofSeconds(1));
        book.release(book.reserve("alice", 1));
        assertThat(book.request("alice", "chatcmpl-1")).isEmpty();
    }
}
