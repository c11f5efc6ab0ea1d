package org.cocoonjvm.gateway.relay;

/** Watches requests go by: metrics and access logs. Called on the request's event loop; must not block. */
public interface RelayObserver {
    RelayObserver NONE = outcome -> { };

    /**
     * Where one request's inter-token gaps go, asked for once per request (at its second delta) so
     * that each token costs no lookup by model.
     */
    default TokenGaps tokenGaps(String model) {
        return TokenGaps.NONE;
    }

    void finished(RequestOutcome outcome);

    static RelayObserver all(RelayObserver... observers) {
        return new RelayObserver() {
            @Override
            public TokenGaps tokenGaps(String model) {
                TokenGaps all = TokenGaps.NONE;
                for (RelayObserver o : observers) {
                    TokenGaps each = o.tokenGaps(model);
                    if (each != TokenGaps.NONE) {
                        TokenGaps before = all;
                        all = before == TokenGaps.NONE ? each : (nanos, tokens) -> {
                            before.gap(nanos, tokens);
                            each.gap(nanos, tokens);
                        };
                    }
                }
                return all;
            }

            @Override
            public void finished(RequestOutcome outcome) {
                for (RelayObserver o : observers) {
                    o.finished(outcome);
                }
            }
        };
    }

    /** One request's inter-token gaps. */
    @FunctionalInterface
    interface TokenGaps {
        TokenGaps NONE = (nanos, tokens) -> { };

        /** {@code tokens} tokens reached the client {@code nanos} after the previous ones. */
        void gap(long nanos, int tokens);
    }
}
