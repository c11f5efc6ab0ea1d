package org.cocoonjvm.gateway.relay;

/** Watches requests go by: metrics and access logs. Called on the request's event loop; must not block. */
public interface RelayObserver {
    RelayObserver NONE = outcome -> { };

    /** {@code tokens} tokens reached the client {@code nanos} after the previous ones. */
    default void interTokenGap(String model, long nanos, int tokens) {
    }

    void finished(RequestOutcome outcome);

    static RelayObserver all(RelayObserver... observers) {
        return new RelayObserver() {
            @Override
            public void interTokenGap(String model, long nanos, int tokens) {
                for (RelayObserver o : observers) {
                    o.interTokenGap(model, nanos, tokens);
                }
            }

            @Override
            public void finished(RequestOutcome outcome) {
                for (RelayObserver o : observers) {
                    o.finished(outcome);
                }
            }
        };
    }
}
