package org.cocoonjvm.billing.pricing;

/**
 * Cocoon's per-class price multipliers, in units of 1/10000 ({@link #ONE} = 1.0x).
 *
 * <p>They are uint32 in Cocoon's on-chain parameters, so they are held as {@code long} and
 * checked against the uint32 range: a schedule read from chain always fits.
 *
 * @param prompt     prompt tokens that were not served from the prefix cache
 * @param cached     prompt tokens served from the prefix cache
 * @param completion generated tokens that are not reasoning
 * @param reasoning  generated reasoning tokens
 */
public record Multipliers(long prompt, long cached, long completion, long reasoning) {
    public static final long ONE = 10_000;
    public static final long MAX = 0xFFFF_FFFFL;

    /** Every class at 1.0x, as in Cocoon's test deployment. */
    public static final Multipliers NEUTRAL = new Multipliers(ONE, ONE, ONE, ONE);

    public Multipliers {
        check("prompt", prompt);
        check("cached", cached);
        check("completion", completion);
        check("reasoning", reasoning);
    }

    private static void check(String name, long value) {
        if (value < 0 || value > MAX) {
            throw new IllegalArgumentException(
                    name + " multiplier must be in [0, " + MAX + "] (10000 = 1.0x), got " + value);
        }
    }
}
