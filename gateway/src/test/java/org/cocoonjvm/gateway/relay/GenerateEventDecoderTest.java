package org.cocoonjvm.gateway.relay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.netty.buffer.Unpooled;
import io.vertx.core.internal.buffer.BufferInternal;
import io.vertx.grpc.common.CodecException;
import io.vertx.grpc.common.GrpcMessage;
import io.vertx.grpc.common.GrpcMessageDecoder;
import io.vertx.grpc.common.WireFormat;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.cocoonjvm.protocol.grpc.Accepted;
import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.FinishReason;
import org.cocoonjvm.protocol.grpc.GenerateEvent;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.protocol.grpc.WorkerGrpcClient;
import org.junit.jupiter.api.Test;

/**
 * The fast path and protobuf's generated parser must mean the same thing by every message: the
 * same event, and for a delta the same text and token count. Random messages, then the same
 * messages broken at random; seeded, so a failure says which message.
 */
class GenerateEventDecoderTest {
    private static final GrpcMessageDecoder<GenerateEvent> PARSER = WorkerGrpcClient.Generate.decoder();
    private static final GrpcMessageDecoder<GenerateEvent> DECODER = GenerateEventDecoder.GENERATE.decoder();
    private static final String[] PIECES = {"", "a", " the", "Hello, world", "é", "日本語", "🙂", "\"quoted\"\n", "\u0000", "\uFFFD"};

    @Test
    void aDeltaIsReadWithItsIdsFoldedIntoItsCount() {
        GenerateEvent event = GenerateEvent.newBuilder().setDelta(Delta.newBuilder().addAllTokenIds(List.of(5, 6, 7))
                .setText(" hi").setTokensWithoutIds(2)).build();

        GenerateEvent read = decode(DECODER, event.toByteArray(), 0, 0);

        assertThat(read.getDelta().getTokenIdsCount()).isZero();
        assertThat(read.getDelta().getTokensWithoutIds()).isEqualTo(5);
        assertThat(read.getDelta().getText()).isEqualTo(" hi");
    }

    @Test
    void randomEventsMeanTheSameToBothPaths() {
        Random random = new Random(20261125);
        int fast = 0;
        for (int i = 0; i < 20_000; i++) {
            byte[] bytes = randomEvent(random).toByteArray();
            GenerateEvent parsed = decode(PARSER, bytes, 0, 0);
            GenerateEvent read = decode(DECODER, bytes, random.nextInt(3), random.nextInt(3));
            assertThat(meaning(read)).as("message %d: %s", i, Arrays.toString(bytes)).isEqualTo(meaning(parsed));
            if (parsed.hasDelta() && read.getDelta().getTokenIdsCount() == 0 && parsed.getDelta().getTokenIdsCount() > 0) {
                fast++;
            }
        }
        assertThat(fast).as("deltas with ids read by the fast path").isGreaterThan(5_000);
    }

    @Test
    void brokenMessagesAreRefusedOrReadAlikeByBothPaths() {
        Random random = new Random(7);
        for (int i = 0; i < 20_000; i++) {
            byte[] bytes = randomEvent(random).toByteArray();
            byte[] broken = switch (random.nextInt(3)) {
                case 0 -> Arrays.copyOf(bytes, random.nextInt(bytes.length + 1));       // cut short
                case 1 -> flipOne(bytes, random);
                default -> appendOne(bytes, random);
            };
            String parsed = outcome(PARSER, broken);
            assertThat(outcome(DECODER, broken)).as("message %d: %s", i, Arrays.toString(broken)).isEqualTo(parsed);
        }
    }

    @Test
    void textThatIsNotUtf8IsRefusedAsTheParserRefusesIt() {
        // A delta (field 1) holding text (field 2) of one byte, 0xFF, which no UTF-8 string has.
        byte[] bytes = {0x0A, 0x03, 0x12, 0x01, (byte) 0xFF};

        assertThatThrownBy(() -> decode(PARSER, bytes, 0, 0)).isInstanceOf(CodecException.class);
        assertThatThrownBy(() -> decode(DECODER, bytes, 0, 0)).isInstanceOf(CodecException.class);
    }

    @Test
    void aCountPastAUint32IsLeftExactToTheParser() {
        GenerateEvent event = GenerateEvent.newBuilder().setDelta(Delta.newBuilder().addAllTokenIds(List.of(1, 2, 3))
                .setTokensWithoutIds(-1)).build();

        GenerateEvent read = decode(DECODER, event.toByteArray(), 0, 0);

        assertThat(read).isEqualTo(event);
        assertThat(meaning(read)).isEqualTo("DELTA  " + (3 + 0xFFFF_FFFFL));
    }

    private static GenerateEvent randomEvent(Random random) {
        return switch (random.nextInt(10)) {
            case 0 -> GenerateEvent.newBuilder().setAccepted(Accepted.newBuilder().setPromptTokens(random.nextInt(5000))).build();
            case 1 -> GenerateEvent.newBuilder().setFinal(Final.newBuilder().setFinishReason(FinishReason.FINISH_REASON_STOP)
                    .setUsage(Usage.newBuilder().setCompletionTokens(random.nextInt(1000)))).build();
            default -> {
                Delta.Builder delta = Delta.newBuilder();
                int ids = random.nextInt(5) == 0 ? 0 : random.nextInt(40);
                for (int i = 0; i < ids; i++) {
                    delta.addTokenIds(random.nextBoolean() ? random.nextInt(200_000) : random.nextInt());
                }
                StringBuilder text = new StringBuilder();
                for (int i = random.nextInt(4); i > 0; i--) {
                    text.append(PIECES[random.nextInt(PIECES.length)]);
                }
                delta.setText(text.toString());
                if (random.nextInt(3) == 0) {
                    delta.setTokensWithoutIds(random.nextInt(8) == 0 ? random.nextInt() : random.nextInt(100));
                }
                yield GenerateEvent.newBuilder().setDelta(delta).build();
            }
        };
    }

    /** What the relay reads of an event: for a delta its text and token count, else the whole event. */
    private static String meaning(GenerateEvent event) {
        if (!event.hasDelta()) {
            return event.toString();
        }
        Delta delta = event.getDelta();
        return "DELTA " + delta.getText() + " " + (delta.getTokenIdsCount() + Integer.toUnsignedLong(delta.getTokensWithoutIds()));
    }

    private static String outcome(GrpcMessageDecoder<GenerateEvent> decoder, byte[] bytes) {
        try {
            return meaning(decode(decoder, bytes, 0, 0));
        } catch (CodecException e) {
            return "refused";
        }
    }

    /** Decodes {@code bytes} as a gRPC message payload lying between {@code before} and {@code after} other bytes, as a slice of a frame does. */
    private static GenerateEvent decode(GrpcMessageDecoder<GenerateEvent> decoder, byte[] bytes, int before, int after) {
        byte[] frame = new byte[before + bytes.length + after];
        Arrays.fill(frame, (byte) 0x0A);
        System.arraycopy(bytes, 0, frame, before, bytes.length);
        BufferInternal payload = BufferInternal.buffer(Unpooled.wrappedBuffer(frame).slice(before, bytes.length));
        return decoder.decode(GrpcMessage.message("identity", WireFormat.PROTOBUF, payload));
    }

    private static byte[] flipOne(byte[] bytes, Random random) {
        byte[] copy = bytes.clone();
        if (copy.length > 0) {
            copy[random.nextInt(copy.length)] ^= (byte) (1 << random.nextInt(8));
        }
        return copy;
    }

    private static byte[] appendOne(byte[] bytes, Random random) {
        byte[] copy = Arrays.copyOf(bytes, bytes.length + 1 + random.nextInt(3));
        for (int i = bytes.length; i < copy.length; i++) {
            copy[i] = (byte) random.nextInt(256);
        }
        return copy;
    }
}
