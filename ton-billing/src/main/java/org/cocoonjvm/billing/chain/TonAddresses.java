package org.cocoonjvm.billing.chain;

import org.ton.ton4j.address.Address;

/**
 * Parses TON addresses that come from outside (a worker's Hello, options, a gateway's terms).
 * ton4j reports a malformed address with a plain {@link Error} (e.g. "User-friendly address
 * should contain strictly 48 characters" for an empty one), which {@code catch (RuntimeException)}
 * lets through: on an event loop it escaped as an unhandled exception and left the caller with
 * no answer. Here every such failure becomes an {@link IllegalArgumentException}.
 */
public final class TonAddresses {
    private TonAddresses() {}

    /**
     * @param address any standard form: raw {@code 0:<hex>} or user-friendly (48 characters)
     * @throws IllegalArgumentException naming what is wrong with it
     */
    public static Address parse(String address) {
        if (address == null || address.isBlank()) {
            throw new IllegalArgumentException("no address given");
        }
        try {
            return Address.of(address);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        } catch (VirtualMachineError | LinkageError e) {
            throw e;
        } catch (Error e) {
            // ton4j's own parse failures: a malformed string cannot be a reason to take the process down.
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }
}
