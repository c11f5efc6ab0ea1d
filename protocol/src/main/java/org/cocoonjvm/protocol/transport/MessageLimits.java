package org.cocoonjvm.protocol.transport;

/** How large the gRPC messages between a gateway and its workers may be. */
public final class MessageLimits {
    /**
     * The largest {@code Generate} request a worker reads. Vert.x's default, 256 KiB, refused long
     * prompts with {@code RESOURCE_EXHAUSTED}, which the gateway took for a busy worker. A constant,
     * not a worker option: a worker serves whatever gateway it registers with and cannot know that
     * gateway's body limit, and an option would have to be kept in step with every gateway's by
     * hand. Instead gateways keep their body limit under {@link #MAX_CLIENT_BODY_BYTES}. Far above
     * the 4 MiB the launcher's gateway takes: a prompt for a million-token context fits. Only
     * gateways call the worker's gRPC service, so the bound guards memory against a bug, not an
     * attacker.
     */
    public static final int MAX_REQUEST_BYTES = 64 << 20;

    /**
     * The largest client body a gateway may take. Re-encoding a body as protobuf never makes its
     * text larger (JSON escapes only shrink, and field names become one-byte tags); the gateway adds
     * a few small fields of its own (a channel id, sampling defaults), for which the rest is room.
     */
    public static final long MAX_CLIENT_BODY_BYTES = MAX_REQUEST_BYTES - (1 << 20);

    private MessageLimits() {}
}
