package org.cocoonjvm.protocol.openai;

/**
 * OpenAI's {@code service_tier}: interactive traffic ({@code default}, also {@code auto}) is served
 * before {@code flex} traffic (bulk jobs such as translation batches) wherever both wait.
 */
public enum ServiceTier {
    DEFAULT,
    FLEX
}
