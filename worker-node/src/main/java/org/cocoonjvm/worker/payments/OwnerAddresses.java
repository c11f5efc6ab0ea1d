package org.cocoonjvm.worker.payments;

import io.vertx.core.json.JsonObject;
import org.cocoonjvm.billing.chain.TonAddresses;
import org.ton.ton4j.address.Address;

/**
 * The one form in which the owner's views ({@code /status}, {@code /earnings}, {@code cocoon worker
 * earnings}) give TON addresses: user-friendly as wallets and explorers show them, a contract
 * bounceable ({@code EQ…}), a wallet non-bounceable ({@code UQ…}, as the launcher prints it), each
 * beside its raw form ({@code <field>_raw}, {@code 0:…}) as the gateway's journal and refusals name
 * it. {@code /status} gave the payout address as typed and the contracts raw, so an owner could
 * not match the two by eye (audit P, P-7). No address is null in both fields, never an empty string.
 */
public final class OwnerAddresses {
    private OwnerAddresses() {}

    /** Puts a contract's address, stored raw or empty off chain. */
    static JsonObject putContract(JsonObject json, String field, String address) {
        return put(json, field, address, true);
    }

    /** Puts a wallet's address (a payout address), in any form, or none when empty or null. */
    public static JsonObject putWallet(JsonObject json, String field, String address) {
        return put(json, field, address, false);
    }

    private static JsonObject put(JsonObject json, String field, String address, boolean contract) {
        if (address == null || address.isEmpty()) {
            return json.putNull(field).putNull(field + "_raw");
        }
        Address parsed = TonAddresses.parse(address);
        return json.put(field, contract ? parsed.toBounceable() : parsed.toNonBounceable()).put(field + "_raw", parsed.toRaw());
    }
}
