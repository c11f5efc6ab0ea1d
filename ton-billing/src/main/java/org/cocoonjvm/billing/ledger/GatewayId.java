package org.cocoonjvm.billing.ledger;

import java.util.regex.Pattern;

/**
 * Which gateway a ledger call speaks for, when several share one database: it owns the reservations
 * it takes, its lease, its payment key and its channels. Stable across restarts (a restart with the
 * same id recovers that gateway's open reservations and keeps its channels), unique among the
 * gateways on one ledger (a second process with the same id takes the lease over and the first one
 * is fenced out).
 *
 * @param value 1 to 64 characters of {@code [A-Za-z0-9._-]}: it is stored and logged as is
 */
public record GatewayId(String value) {
    private static final Pattern FORM = Pattern.compile("[A-Za-z0-9._-]{1,64}");

    /** A lone gateway's id, and the owner of everything written before gateways had ids (V6). */
    public static final GatewayId DEFAULT = new GatewayId("default");

    public GatewayId {
        if (value == null || !FORM.matcher(value).matches()) {
            throw new IllegalArgumentException("a gateway id is 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-', got "
                    + (value == null ? "none" : "'" + value + "'"));
        }
    }

    @Override
    public String toString() {
        return value;
    }
}
