/**
 * What a request costs, in nanoTON, by Cocoon's pricing formula with exact integer math.
 *
 * <ul>
 *   <li>{@link org.cocoonjvm.billing.pricing.PriceSchedule} – one model's prices: per-token price and
 *       worker fee, the four {@link org.cocoonjvm.billing.pricing.Multipliers}, the worker coefficient
 *       and the maximum coefficient used for reservations.</li>
 *   <li>{@link org.cocoonjvm.billing.pricing.TokenCounts} – the usage a worker reported.</li>
 *   <li>{@link org.cocoonjvm.billing.pricing.Pricing} – the formula and its rounding rule, defined once:
 *       {@code cost} after a request, {@code reservation} before it.</li>
 *   <li>{@link org.cocoonjvm.billing.pricing.Cost} – the result, split between worker and gateway and
 *       between prompt and completion.</li>
 * </ul>
 */
package org.cocoonjvm.billing.pricing;
