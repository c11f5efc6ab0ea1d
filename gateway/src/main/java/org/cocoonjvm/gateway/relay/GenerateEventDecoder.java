package org.cocoonjvm.gateway.relay;

import io.vertx.core.buffer.Buffer;
import io.vertx.grpc.common.CodecException;
import io.vertx.grpc.common.GrpcMessage;
import io.vertx.grpc.common.GrpcMessageDecoder;
import io.vertx.grpc.common.ServiceMethod;
import io.vertx.grpc.common.WireFormat;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.GenerateCall;
import org.cocoonjvm.protocol.grpc.GenerateEvent;
import org.cocoonjvm.protocol.grpc.WorkerGrpcClient;

/**
 * Reads the worker's {@code GenerateEvent}s, with a fast path beside protobuf's generated parser
 * for the one event that comes per token: a {@code Delta} of token ids, text and a count. The
 * gateway only counts a delta's tokens, never reads which they are, so the fast path folds the
 * ids into {@code tokens_without_ids} and builds no list for them; it reads the message where it
 * lies (no copy of it, no {@code CodedInputStream}, none of the parser's nested builders). The
 * parse had been about a third of what the gateway's event loops allocated per relayed token
 * (docs/benchmarks.md, twenty-fifth and twenty-sixth sessions).
 *
 * <p>Reject by default: anything the fast path does not expect (another event, an unknown or
 * repeated field, a varint longer than a uint32's, text Java's UTF-8 decoder had to repair or
 * that holds U+FFFD, a count past a uint32) goes to the generated parser, which decides as it
 * always did. So both paths agree on what a message means (its text and its token count);
 * {@code GenerateEventDecoderTest} holds them to that on random and broken messages.
 */
final class GenerateEventDecoder implements GrpcMessageDecoder<GenerateEvent> {
    /** The worker's Generate call, read with this decoder. */
    static final ServiceMethod<GenerateEvent, GenerateCall> GENERATE = ServiceMethod.client(
            WorkerGrpcClient.Generate.serviceName(), WorkerGrpcClient.Generate.methodName(),
            WorkerGrpcClient.Generate.encoder(), new GenerateEventDecoder(WorkerGrpcClient.Generate.decoder()));

    // Tags: field number << 3 | wire type (0 varint, 2 length-delimited).
    private static final int EVENT_DELTA = 1 << 3 | 2;
    private static final int DELTA_IDS_PACKED = 1 << 3 | 2;
    private static final int DELTA_ID = 1 << 3;
    private static final int DELTA_TEXT = 2 << 3 | 2;
    private static final int DELTA_WITHOUT_IDS = 3 << 3;
    private static final long UINT32_MAX = 0xFFFF_FFFFL;
    /** What a varint that is no uint32 reads as: the fast path leaves it to the parser. */
    private static final long NOT_UINT32 = -1;

    private final GrpcMessageDecoder<GenerateEvent> general;

    GenerateEventDecoder(GrpcMessageDecoder<GenerateEvent> general) {
        this.general = general;
    }

    @Override
    public GenerateEvent decode(GrpcMessage message) throws CodecException {
        if (message.format() == WireFormat.PROTOBUF) {
            Delta delta = delta(message.payload());
            if (delta != null) {
                return GenerateEvent.newBuilder().setDelta(delta).build();
            }
        }
        return general.decode(message);
    }

    @Override
    public boolean accepts(WireFormat format) {
        return general.accepts(format);
    }

    /** The event as a Delta with its ids folded into its count, or null where the parser must decide. */
    static Delta delta(Buffer payload) {
        Cursor in = new Cursor(payload);
        if (in.varint() != EVENT_DELTA) {
            return null;
        }
        long length = in.varint();
        if (length != in.end - in.at) {   // the delta is not all the event: another field follows
            return null;
        }
        long ids = 0;
        long withoutIds = -1;
        String text = null;
        while (in.at < in.end) {
            long tag = in.varint();
            if (tag == DELTA_IDS_PACKED) {
                long packed = ids(in);
                if (packed < 0) {
                    return null;
                }
                ids += packed;
            } else if (tag == DELTA_ID) {
                if (in.varint() == NOT_UINT32) {
                    return null;
                }
                ids++;
            } else if (tag == DELTA_TEXT && text == null) {
                text = in.utf8();
                if (text == null) {
                    return null;
                }
            } else if (tag == DELTA_WITHOUT_IDS && withoutIds < 0) {
                withoutIds = in.varint();
                if (withoutIds == NOT_UINT32) {
                    return null;
                }
            } else {
                return null;
            }
        }
        long tokens = ids + Math.max(0, withoutIds);
        if (in.at != in.end || tokens > UINT32_MAX) {
            return null;
        }
        return Delta.newBuilder().setText(text == null ? "" : text).setTokensWithoutIds((int) tokens).build();
    }

    /** How many uint32s a packed run holds, or -1 when it is not one the fast path reads. */
    private static long ids(Cursor in) {
        long length = in.varint();
        if (length == NOT_UINT32 || length > in.end - in.at) {
            return -1;
        }
        int end = in.at + (int) length;
        long count = 0;
        int run = 0;
        for (int i = in.at; i < end; i++) {
            byte b = in.buf.getByte(i);
            run++;
            // A uint32 takes at most 5 bytes, and its fifth carries 4 bits.
            if (run > 5 || run == 5 && (b & 0xF0) != 0) {
                return -1;
            }
            if (b >= 0) {
                count++;
                run = 0;
            }
        }
        in.at = end;
        return run == 0 ? count : -1;
    }

    /**
     * A read position in the message's bytes, read through the {@link Buffer} rather than its
     * {@code ByteBuf}, which Vert.x hands out wrapped (two objects a message).
     */
    private static final class Cursor {
        final Buffer buf;
        int at;
        final int end;

        Cursor(Buffer buf) {
            this.buf = buf;
            this.end = buf.length();
        }

        /** A varint of at most 32 bits, or {@link #NOT_UINT32} (longer, past the end). */
        long varint() {
            long value = 0;
            for (int shift = 0; shift < 35 && at < end; shift += 7) {
                byte b = buf.getByte(at++);
                if (shift == 28 && (b & 0xF0) != 0) {
                    return NOT_UINT32;
                }
                value |= (long) (b & 0x7F) << shift;
                if (b >= 0) {
                    return value;
                }
            }
            return NOT_UINT32;
        }

        /**
         * A length-delimited string (UTF-8, as {@link Buffer#getString(int, int)} reads), or null
         * for the parser to judge. Java's decoder puts U+FFFD for each malformed sequence (overlong
         * forms and encoded surrogates included), so a string without one was well-formed UTF-8;
         * one with it is left to protobuf's check.
         */
        String utf8() {
            long length = varint();
            if (length == NOT_UINT32 || length > end - at) {
                return null;
            }
            String text = buf.getString(at, at + (int) length);
            at += (int) length;
            return text.indexOf('\uFFFD') < 0 ? text : null;
        }
    }
}
