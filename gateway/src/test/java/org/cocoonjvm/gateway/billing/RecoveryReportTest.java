package org.cocoonjvm.gateway.billing;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.billing.accounts.InMemoryAccountBook;
import org.cocoonjvm.billing.accounts.RecoveredReservation;
import org.cocoonjvm.billing.accounts.Reservation;
import org.cocoonjvm.billing.accounts.ReservationLabel;
import org.cocoonjvm.billing.accounts.Settlement;
import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.gateway.billing.RequestBilling.RecoveryReporter;
import org.junit.jupiter.api.Test;

/**
 * What the ledger's recovery ended reaches the node's reporter (audit V, V-8): the launcher runs
 * the start's recovery before the node exists, so what it ends is held until the node sets its
 * reporter, then told in order, with the sweeps' after it.
 */
class RecoveryReportTest {
    private static final String ACCOUNT = "acct-recovery";

    @Test
    void whatRecoveryEndsBeforeTheReporterIsSet_isHeldForIt_thenToldInOrder() throws Exception {
        InMemoryAccountBook book = new InMemoryAccountBook(Clock.systemUTC());
        book.open(ACCOUNT);
        book.credit(ACCOUNT, 1_000_000, "grant");
        TonRequestBilling billing = new TonRequestBilling(book, Runnable::run, model -> PriceSchedule.of(model, 2, 1), null);
        billing.reserve("chatcmpl-1", "key-1", ACCOUNT, "m", 10, 10).toCompletableFuture().get(5, TimeUnit.SECONDS);

        List<RecoveredReservation> restarted = billing.recoverOpenReservations();
        // A peer's reservation from before V14: nothing known of its request.
        RecoveredReservation swept = new RecoveredReservation(Settlement.release(new Reservation(ACCOUNT, 99, 5)), null, null, null);
        billing.swept(List.of(swept));
        List<Map.Entry<RecoveredReservation, String>> told = new ArrayList<>();
        billing.reportRecovered((recovered, errorCode) -> told.add(Map.entry(recovered, errorCode)));
        billing.swept(List.of(swept));

        assertThat(restarted).singleElement().satisfies(r -> assertThat(r.label())
                .isEqualTo(new ReservationLabel("chatcmpl-1", "key-1", "m")));
        assertThat(told).containsExactly(Map.entry(restarted.getFirst(), RecoveryReporter.GATEWAY_RESTARTED),
                Map.entry(swept, RecoveryReporter.GATEWAY_LEASE_EXPIRED), Map.entry(swept, RecoveryReporter.GATEWAY_LEASE_EXPIRED));
    }
}
