package org.cocoonjvm.protocol.openai;

/**
 * OpenAI's {@code service_tier}: interactive traffic ({@code default}, also {@code auto}) is served
 * before {@code flex} traffic (bulk jobs such as translation batches) wherever both wait.
 */
public enum ServiceTier {
    DEFAULT("default"),
    FLEX("flex");

    private final String wireName;

    ServiceTier(String wireName) {
        this.wireName = wireName;
    }

    /** As the API spells it, and as logs and metric tags show it. */
    public String wireName() {
        return wireName;
    }
}
