package org.cocoonjvm.protocol.hello;

/**
 * The most a worker may announce in its Hello. What it announces sizes every client's hold for its
 * model (the largest context and chat template among the model's workers) and its share of the
 * traffic (capacity): a gateway refuses values past these, true of no model or machine (one
 * worker's 4e9 template tokens had every client of its model refused 402: audit X, X-5), and a
 * worker checks its own before it starts, so that it is not refused at every registration.
 */
public final class HelloLimits {
    public static final long MAX_CAPACITY = 65_536;
    public static final long MAX_CONTEXT = 1L << 24;
    public static final long MAX_TEMPLATE_TOKENS = 65_536;

    private HelloLimits() {
    }
}
