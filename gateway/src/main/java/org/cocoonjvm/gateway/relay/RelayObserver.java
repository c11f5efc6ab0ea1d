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

    /**
     * Where one request's completion tokens are counted as the relay passes them on, asked for once
     * per request (at its first delta) so that a delta costs no lookup by model. What a request
     * counted here is in its outcome ({@link RequestOutcome#liveCompletionTokens}): its end counts
     * only the rest.
     */
    default GeneratedTokens generatedTokens(String model) {
        return GeneratedTokens.NONE;
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
            public GeneratedTokens generatedTokens(String model) {
                GeneratedTokens all = GeneratedTokens.NONE;
                for (RelayObserver o : observers) {
                    GeneratedTokens each = o.generatedTokens(model);
                    if (each != GeneratedTokens.NONE) {
                        GeneratedTokens before = all;
                        all = before == GeneratedTokens.NONE ? each : tokens -> {
                            before.generated(tokens);
                            each.generated(tokens);
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

    /** One request's completion tokens, counted as they are relayed. */
    @FunctionalInterface
    interface GeneratedTokens {
        GeneratedTokens NONE = tokens -> { };

        /** The relay passed on {@code tokens} more completion tokens, or learned of them for the bill. */
        void generated(int tokens);
    }
}
