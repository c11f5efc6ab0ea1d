package org.cocoonjvm.worker.payments;

import org.cocoonjvm.billing.pricing.PriceSchedule;
import org.cocoonjvm.billing.pricing.RunningFee;

/**
 * Whether the credit window lets a channel's sequences run between the gateway's payments. The
 * gateway pays after every {@code everyTokens} tokens (and every {@code everyMs} while fees are
 * unpaid); a window that covers fewer tokens than that pauses generation until each payment comes,
 * several times slower, with nothing failing (audit P, P-3). Said once per model and fee when a
 * gateway offers its prices, and shown in {@code /status}.
 */
final class CreditWindowCheck {
    /** The window a warning asks for: this many of the gateway's payment rounds' fees. */
    static final int ROUNDS = 2;

    private CreditWindowCheck() {}

    /** nanoTON a sequence earns for {@code tokens} generated tokens; Long.MAX_VALUE when that overflows. */
    static long completionFee(PriceSchedule schedule, long tokens) {
        try {
            return new RunningFee(schedule, schedule.workerCoefficient()).addCompletion(tokens);
        } catch (ArithmeticException | IllegalArgumentException e) {
            return Long.MAX_VALUE;
        }
    }

    /** How many generated tokens' fees the window holds (at most Long.MAX_VALUE / 2: no fee is "all"). */
    static long tokensCovered(PriceSchedule schedule, long window) {
        long perMillion = completionFee(schedule, 1_000_000);
        if (perMillion == 0) {
            return Long.MAX_VALUE / 2;
        }
        if (perMillion == Long.MAX_VALUE) {
            long perToken = completionFee(schedule, 1);
            return perToken == 0 ? Long.MAX_VALUE / 2 : window / perToken;
        }
        return (long) Math.min(Long.MAX_VALUE / 2, Math.floor(window * 1_000_000.0 / perMillion));
    }

    /**
     * The warning for {@code schedule}'s model, or null when {@code window} holds a payment round.
     *
     * @param everyTokens the gateway's payment round in tokens (its offer's {@code every_tokens}); 0 counts as 1
     */
    static String warning(String channel, PriceSchedule schedule, long window, long everyTokens, long everyMs) {
        long round = Math.max(1, everyTokens);
        long covered = tokensCovered(schedule, window);
        if (covered >= round) {
            return null;
        }
        long wanted = completionFee(schedule, ROUNDS * round);
        return "the credit window (--credit-window-nanoton " + window + ") holds " + covered + " token(s) of model '"
                + schedule.model() + "' at its fee of " + schedule.workerFeePerToken() + " nanoTON per token (coefficient "
                + schedule.workerCoefficient() + "/" + PriceSchedule.COEFFICIENT_ONE + "), fewer than the " + round
                + " tokens after which the gateway pays on channel " + channel + " (or every " + everyMs + " ms): generation "
                + "pauses for each payment and runs several times slower; set --credit-window-nanoton to at least "
                + (wanted == Long.MAX_VALUE ? "more than " + Long.MAX_VALUE / 2 : wanted) + " (" + ROUNDS * round
                + " tokens' fees)";
    }
}
