package org.cocoonjvm.protocol.openai;

import org.cocoonjvm.protocol.grpc.GenerateRequest;

/**
 * A chat completion request that passed {@link ChatRequestParser}. Only the parser constructs one
 * (the constructor is package-private), so code that takes it never re-checks the fields.
 */
public final class ValidChatRequest {
    private final String model;
    private final boolean stream;
    private final boolean includeUsage;
    private final GenerateRequest generate;

    ValidChatRequest(String model, boolean stream, boolean includeUsage, GenerateRequest generate) {
        this.model = model;
        this.stream = stream;
        this.includeUsage = includeUsage;
        this.generate = generate;
    }

    /** The model the client asked for, as it appears in {@code /v1/models}. */
    public String model() {
        return model;
    }

    /** Answer as Server-Sent Events rather than one JSON document. */
    public boolean stream() {
        return stream;
    }

    /** The client asked for the usage chunk ({@code stream_options.include_usage}). */
    public boolean includeUsage() {
        return includeUsage;
    }

    /** What to send to a worker, under the given request id. */
    public GenerateRequest generate(String requestId) {
        return generate.toBuilder().setRequestId(requestId).build();
    }
}
