package org.cocoonjvm.billing.chain;

import java.math.BigInteger;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;

/**
 * When a channel's money should move on chain. Each side calls it at its own moments (after
 * accepting a state, at shutdown, when the counterparty has been silent) and acts on the answer;
 * who asks whom over the network is wired elsewhere.
 *
 * <p>On-chain steps cost more than many tokens, so the channel settles rarely: cooperatively once
 * what B is owed beyond the last settlement passes {@code threshold}, or at shutdown; with an
 * uncooperative close (quarantine, then finish) only when the counterparty stops answering. Never
 * for dust: an amount at or under {@link ChannelCosts#dustLimit()} would be eaten by the close's
 * forwarding fee and gas.
 */
public final class ChannelSettlement {
    /** What to do now. */
    public sealed interface Action {
        record Keep(String reason) implements Action {}

        /** Ask the counterparty for its close signature, then send the close. */
        record CloseCooperatively(BigInteger owedToB) implements Action {}

        /** Start an uncooperative close with the latest states both parties signed. */
        record CloseUncooperatively(Duration silentFor) implements Action {}
    }

    private final BigInteger threshold;
    private final Duration silenceLimit;
    private final ChannelCosts costs;
    private final Clock clock;

    /**
     * @param threshold settle cooperatively once B is owed at least this much (say 1 TON)
     * @param silenceLimit how long the counterparty may not answer before an uncooperative close
     */
    public ChannelSettlement(
            BigInteger threshold, Duration silenceLimit, ChannelCosts costs, Clock clock) {
        if (threshold.compareTo(costs.dustLimit()) <= 0) {
            throw new IllegalArgumentException(
                    "threshold "
                            + threshold
                            + " nanoTON is dust: a close costs "
                            + costs.dustLimit());
        }
        if (silenceLimit.isNegative() || silenceLimit.isZero())
            throw new IllegalArgumentException("silence limit must be positive");
        this.threshold = threshold;
        this.silenceLimit = silenceLimit;
        this.costs = costs;
        this.clock = clock;
    }

    /**
     * After a state is accepted: {@code owedToB} is its cumulative sent minus what was settled
     * before.
     */
    public Action onStateAccepted(BigInteger owedToB) {
        if (owedToB.compareTo(threshold) >= 0) return new Action.CloseCooperatively(owedToB);
        return new Action.Keep("owed " + owedToB + " is below the threshold " + threshold);
    }

    /** At shutdown: settle anything worth a transaction. */
    public Action onShutdown(BigInteger owedToB) {
        if (owedToB.compareTo(costs.dustLimit()) <= 0)
            return new Action.Keep("owed " + owedToB + " is dust");
        return new Action.CloseCooperatively(owedToB);
    }

    /**
     * When a request to the counterparty went unanswered. {@code atStake} is what this side gets
     * back by closing: B its earnings, A its unspent deposit.
     */
    public Action onCounterpartySilent(Instant lastHeard, BigInteger atStake) {
        Duration silent = Duration.between(lastHeard, clock.instant());
        if (silent.compareTo(silenceLimit) < 0)
            return new Action.Keep("silent for " + silent + ", limit " + silenceLimit);
        if (atStake.compareTo(costs.dustLimit()) <= 0)
            return new Action.Keep("at stake " + atStake + " is dust");
        return new Action.CloseUncooperatively(silent);
    }
}
