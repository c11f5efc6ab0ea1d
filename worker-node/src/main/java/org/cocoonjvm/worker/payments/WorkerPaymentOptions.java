package org.cocoonjvm.worker.payments;

import java.nio.file.Path;

/**
 * How a worker is paid.
 *
 * @param stateDir            where the payment key and each channel's latest state are kept; null
 *                            keeps them in memory only (tests and the demo: a restart forgets them)
 * @param payoutAddress       the TON address a channel pays out to on close; may be empty until
 *                            the on-chain side is wired in
 * @param creditWindowNanoton how much the gateway may owe before its sequences are paused
 * @param paymentTimeoutMs    how long a paused sequence waits for a payment before it fails
 */
public record WorkerPaymentOptions(Path stateDir, String payoutAddress, long creditWindowNanoton, long paymentTimeoutMs) {
    /** In memory, a window of 1,000,000 nanoTON (0.001 TON), 10 s to pay. */
    public static final WorkerPaymentOptions IN_MEMORY = new WorkerPaymentOptions(null, "", 1_000_000, 10_000);

    public WorkerPaymentOptions {
        if (payoutAddress == null) {
            throw new IllegalArgumentException("payoutAddress may be empty, not null");
        }
        if (creditWindowNanoton < 0 || paymentTimeoutMs < 1) {
            throw new IllegalArgumentException("creditWindowNanoton must be >= 0 and paymentTimeoutMs >= 1, got "
                    + creditWindowNanoton + " and " + paymentTimeoutMs);
        }
    }
}
