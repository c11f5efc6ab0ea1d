package org.cocoonjvm.gateway.api;

import java.util.concurrent.ThreadLocalRandom;

/**
 * Request ids: in the access log, the {@code x-request-id} header (or gRPC's
 * {@code cocoon-request-id}) and, for a relayed completion, its chunks and the worker's logs.
 * They name requests; they need to be unique, not secret, so no SecureRandom (nor a UUID, which
 * uses it) on a path every request takes.
 */
public final class RequestIds {
    private RequestIds() {}

    /** Random hex digits (32) after the prefix a completion's id has ({@code chatcmpl-}, {@code cmpl-}). */
    static String completion(String prefix) {
        return prefix + random();
    }

    /** A request answered without a relay (a refusal, a model list): {@code req_}, as OpenAI's own request ids. */
    public static String answered() {
        return "req_" + random();
    }

    private static String random() {
        ThreadLocalRandom random = ThreadLocalRandom.current();
        return Long.toHexString(random.nextLong() | Long.MIN_VALUE) + Long.toHexString(random.nextLong() | Long.MIN_VALUE);
    }
}
