package org.cocoonjvm.billing.chain;

/** The official contract's {@code get_channel_state}, in order. */
public enum ChannelStatus {
    UNINITED,
    OPEN,
    CLOSURE_STARTED,
    SETTLING_CONDITIONALS,
    AWAITING_FINALIZATION;

    static ChannelStatus of(int code) {
        if (code < 0 || code >= values().length) {
            throw new ChainException("bad_channel_state", "get_channel_state returned " + code);
        }
        return values()[code];
    }
}
