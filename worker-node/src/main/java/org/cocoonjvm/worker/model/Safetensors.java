package org.cocoonjvm.worker.model;

import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The safetensors format: an 8-byte little-endian header length, a JSON header naming each
 * tensor's dtype, shape and byte range, then the data. Reading maps the file; nothing is copied.
 */
public final class Safetensors {
    /** One tensor's header entry; offsets are relative to the start of the data section. */
    public record Entry(String name, String dtype, long[] shape, long begin, long end) {
    }

    /** A tensor to write. */
    public record Data(String name, DType dtype, long[] shape, byte[] bytes) {
    }

    private static final long MAX_HEADER = 100L << 20;

    private Safetensors() {
    }

    /** Maps the file into {@code arena} and returns its tensors, by name, in header order. */
    public static Map<String, Tensor> map(Path file, Arena arena) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) {
                throw new ModelFormatException(file + ": too short for a safetensors file (" + size + " bytes)");
            }
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(lenBuf, 0);
            long headerLen = lenBuf.flip().getLong();
            if (headerLen < 2 || headerLen > MAX_HEADER || 8 + headerLen > size) {
                throw new ModelFormatException(file + ": not a safetensors file (header length " + headerLen
                        + ", file size " + size + ")");
            }
            ByteBuffer header = ByteBuffer.allocate((int) headerLen);
            while (header.hasRemaining() && ch.read(header, 8 + header.position()) > 0) {
                // read fully
            }
            List<Entry> entries = parseHeader(new String(header.array(), StandardCharsets.UTF_8), file.toString());
            long dataStart = 8 + headerLen;
            MemorySegment all = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            Map<String, Tensor> out = new java.util.LinkedHashMap<>();
            for (Entry e : entries) {
                if (e.begin() < 0 || e.end() < e.begin() || dataStart + e.end() > size) {
                    throw new ModelFormatException(file + ": tensor " + e.name() + " has data_offsets [" + e.begin()
                            + ", " + e.end() + "] outside the file's " + (size - dataStart) + " data bytes");
                }
                DType dtype = switch (e.dtype()) {
                    case "F32" -> DType.F32;
                    case "F16" -> DType.F16;
                    case "BF16" -> DType.BF16;
                    default -> throw new ModelFormatException(file + ": tensor " + e.name() + " has dtype " + e.dtype()
                            + "; supported: F32, F16, BF16");
                };
                out.put(e.name(), new Tensor(e.name(), dtype, e.shape(), all.asSlice(dataStart + e.begin(), e.end() - e.begin())));
            }
            return out;
        }
    }

    static List<Entry> parseHeader(String json, String source) {
        JsonObject h;
        try {
            h = new JsonObject(json.strip());
        } catch (DecodeException e) {
            throw ModelFormatException.malformedJson(source + ": malformed safetensors header", e);
        }
        List<Entry> out = new ArrayList<>();
        for (Map.Entry<String, Object> e : h) {
            if (e.getKey().equals("__metadata__")) {
                continue;
            }
            if (!(e.getValue() instanceof JsonObject t) || !(t.getValue("shape") instanceof JsonArray shape)
                    || !(t.getValue("data_offsets") instanceof JsonArray offs) || offs.size() != 2
                    || !(t.getValue("dtype") instanceof String dtype)) {
                throw new ModelFormatException(source + ": malformed safetensors entry for " + e.getKey());
            }
            long[] s = new long[shape.size()];
            for (int i = 0; i < s.length; i++) {
                s[i] = shape.getLong(i);
            }
            out.add(new Entry(e.getKey(), dtype, s, offs.getLong(0), offs.getLong(1)));
        }
        return out;
    }

    /** Writes tensors in the given order; the header is padded with spaces to a multiple of 8 bytes. */
    public static void write(Path file, List<Data> tensors, Map<String, String> metadata) throws IOException {
        JsonObject h = new JsonObject();
        if (metadata != null && !metadata.isEmpty()) {
            JsonObject m = new JsonObject();
            metadata.forEach(m::put);
            h.put("__metadata__", m);
        }
        long offset = 0;
        for (Data t : tensors) {
            String dtype = switch (t.dtype()) {
                case F32 -> "F32";
                case F16 -> "F16";
                case BF16 -> "BF16";
                case Q8_0 -> throw new IllegalArgumentException("safetensors has no Q8_0: " + t.name());
            };
            JsonArray shape = new JsonArray();
            for (long d : t.shape()) {
                shape.add(d);
            }
            h.put(t.name(), new JsonObject().put("dtype", dtype).put("shape", shape)
                    .put("data_offsets", new JsonArray().add(offset).add(offset + t.bytes().length)));
            offset += t.bytes().length;
        }
        byte[] header = h.encode().getBytes(StandardCharsets.UTF_8);
        int padded = (header.length + 7) / 8 * 8;
        try (OutputStream out = new java.io.BufferedOutputStream(Files.newOutputStream(file), 1 << 16)) {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded).array());
            out.write(header);
            for (int i = header.length; i < padded; i++) {
                out.write(' ');
            }
            for (Data t : tensors) {
                out.write(t.bytes());
            }
        }
    }
}
