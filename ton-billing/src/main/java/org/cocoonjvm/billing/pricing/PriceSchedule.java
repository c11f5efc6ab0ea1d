package org.cocoonjvm.billing.pricing;

import java.util.Objects;

/**
 * One model's prices, validated once and never changed.
 *
 * <p>Coefficients are in units of 1/1000 ({@link #COEFFICIENT_ONE} = 1.0x). A worker's coefficient
 * raises both what the client pays and what the worker earns; {@code maxCoefficient} is the
 * highest one the gateway accepts, and reservations are sized with it so that they cover any
 * accepted worker.
 *
 * @param model             the model name clients put in {@code "model"}
 * @param pricePerToken     what the client pays per adjusted token, nanoTON
 * @param workerFeePerToken what the worker earns per adjusted token, nanoTON; at most the price,
 *                          because the gateway keeps the difference and a negative margin would
 *                          pay workers out of the gateway's pocket
 * @param multipliers       per token class, 10000 = 1.0x
 * @param workerCoefficient the coefficient for workers that advertise none (Cocoon's default: 1000)
 * @param maxCoefficient    the largest coefficient accepted, used for reservations (default 4000)
 */
public record PriceSchedule(String model, long pricePerToken, long workerFeePerToken,
                            Multipliers multipliers, int workerCoefficient, int maxCoefficient) {
    public static final int COEFFICIENT_ONE = 1000;
    public static final int COEFFICIENT_LIMIT = 1_000_000_000;
    public static final int DEFAULT_MAX_COEFFICIENT = 4000;

    public PriceSchedule {
        if (model == null || model.isBlank()) {
            throw new IllegalArgumentException("a price schedule needs a model name");
        }
        if (pricePerToken < 0 || workerFeePerToken < 0) {
            throw new IllegalArgumentException("prices must be >= 0 nanoTON, got pricePerToken "
                    + pricePerToken + " and workerFeePerToken " + workerFeePerToken + " for " + model);
        }
        if (workerFeePerToken > pricePerToken) {
            throw new IllegalArgumentException("workerFeePerToken " + workerFeePerToken
                    + " exceeds pricePerToken " + pricePerToken + " for " + model
                    + ": the gateway's margin would be negative");
        }
        Objects.requireNonNull(multipliers, "multipliers");
        Pricing.checkCoefficient("workerCoefficient", workerCoefficient);
        Pricing.checkCoefficient("maxCoefficient", maxCoefficient);
        if (workerCoefficient > maxCoefficient) {
            throw new IllegalArgumentException("workerCoefficient " + workerCoefficient
                    + " exceeds maxCoefficient " + maxCoefficient + " for " + model
                    + ": reservations would not cover the default worker");
        }
    }

    /** Neutral multipliers, coefficient 1.0x, maximum 4.0x. */
    public static PriceSchedule of(String model, long pricePerToken, long workerFeePerToken) {
        return new PriceSchedule(model, pricePerToken, workerFeePerToken, Multipliers.NEUTRAL,
                COEFFICIENT_ONE, DEFAULT_MAX_COEFFICIENT);
    }

    public PriceSchedule withMultipliers(Multipliers newMultipliers) {
        return new PriceSchedule(model, pricePerToken, workerFeePerToken, newMultipliers,
                workerCoefficient, maxCoefficient);
    }

    public PriceSchedule withCoefficients(int newWorkerCoefficient, int newMaxCoefficient) {
        return new PriceSchedule(model, pricePerToken, workerFeePerToken, multipliers,
                newWorkerCoefficient, newMaxCoefficient);
    }
}
