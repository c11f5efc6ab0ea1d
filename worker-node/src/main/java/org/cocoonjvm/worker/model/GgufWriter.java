package org.cocoonjvm.worker.model;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes GGUF version 3 (little-endian): metadata in insertion order, tensors in insertion order,
 * each tensor's data aligned to {@code general.alignment} (32 unless set). Output depends only on
 * what was added, so the same inputs give the same bytes.
 */
public final class GgufWriter {
    private record PendingTensor(String name, long[] dims, int ggmlType, byte[] data) {
    }

    private final Map<String, GgufFile.Value> metadata = new LinkedHashMap<>();
    private final List<PendingTensor> tensors = new ArrayList<>();

    public GgufWriter put(String key, GgufFile.Value value) {
        metadata.put(key, value);
        return this;
    }

    public GgufWriter putString(String key, String value) {
        return put(key, GgufFile.Value.of(GgufFile.ValueType.STRING, value));
    }

    public GgufWriter putUint32(String key, long value) {
        return put(key, GgufFile.Value.of(GgufFile.ValueType.UINT32, value));
    }

    public GgufWriter putFloat32(String key, double value) {
        return put(key, GgufFile.Value.of(GgufFile.ValueType.FLOAT32, (float) value));
    }

    public GgufWriter putBool(String key, boolean value) {
        return put(key, GgufFile.Value.of(GgufFile.ValueType.BOOL, value));
    }

    /**
     * @param shape Hugging Face order (outermost first); stored reversed, as GGUF wants
     * @param data  exactly the bytes of the tensor in {@code ggmlType}
     */
    public GgufWriter addTensor(String name, long[] shape, int ggmlType, byte[] data) {
        long[] dims = new long[shape.length];
        for (int i = 0; i < shape.length; i++) {
            dims[i] = shape[shape.length - 1 - i];
        }
        tensors.add(new PendingTensor(name, dims, ggmlType, data));
        return this;
    }

    public void write(Path file) throws IOException {
        GgufFile.Value alignValue = metadata.get("general.alignment");
        long alignment = alignValue == null ? GgufFile.DEFAULT_ALIGNMENT : alignValue.asLong();
        try (OutputStream raw = Files.newOutputStream(file); CountingStream out = new CountingStream(new BufferedOutputStream(raw, 1 << 16))) {
            out.u32(GgufFile.MAGIC);
            out.u32(3);
            out.u64(tensors.size());
            out.u64(metadata.size());
            for (Map.Entry<String, GgufFile.Value> e : metadata.entrySet()) {
                out.string(e.getKey());
                out.u32(e.getValue().type().ordinal());
                writeValue(out, e.getValue());
            }
            long offset = 0;
            for (PendingTensor t : tensors) {
                out.string(t.name());
                out.u32(t.dims().length);
                for (long d : t.dims()) {
                    out.u64(d);
                }
                out.u32(t.ggmlType());
                out.u64(offset);
                offset = align(offset + t.data().length, alignment);
            }
            out.pad(alignment);
            for (PendingTensor t : tensors) {
                out.write(t.data());
                out.pad(alignment);
            }
        }
    }

    private static long align(long x, long alignment) {
        return (x + alignment - 1) / alignment * alignment;
    }

    private static void writeValue(CountingStream out, GgufFile.Value v) throws IOException {
        if (v.type() == GgufFile.ValueType.ARRAY) {
            List<Object> list = v.asList();
            out.u32(v.elementType().ordinal());
            out.u64(list.size());
            for (Object o : list) {
                writeScalar(out, v.elementType(), o);
            }
        } else {
            writeScalar(out, v.type(), v.value());
        }
    }

    private static void writeScalar(CountingStream out, GgufFile.ValueType type, Object o) throws IOException {
        switch (type) {
            case UINT8, INT8 -> out.write(((Number) o).intValue());
            case BOOL -> out.write((Boolean) o ? 1 : 0);
            case UINT16, INT16 -> out.u16(((Number) o).intValue());
            case UINT32, INT32 -> out.u32(((Number) o).intValue());
            case UINT64, INT64 -> out.u64(((Number) o).longValue());
            case FLOAT32 -> out.u32(Float.floatToRawIntBits(((Number) o).floatValue()));
            case FLOAT64 -> out.u64(Double.doubleToRawLongBits(((Number) o).doubleValue()));
            case STRING -> out.string((String) o);
            case ARRAY -> throw new IllegalArgumentException("nested GGUF arrays are not supported");
        }
    }

    private static final class CountingStream extends OutputStream {
        private final OutputStream out;
        private final ByteBuffer buf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        private long count;

        CountingStream(OutputStream out) {
            this.out = out;
        }

        @Override
        public void write(int b) throws IOException {
            out.write(b);
            count++;
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
            count += len;
        }

        void u16(int v) throws IOException {
            write(buf.clear().putShort((short) v).array(), 0, 2);
        }

        void u32(int v) throws IOException {
            write(buf.clear().putInt(v).array(), 0, 4);
        }

        void u64(long v) throws IOException {
            write(buf.clear().putLong(v).array(), 0, 8);
        }

        void string(String s) throws IOException {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            write(b, 0, b.length);
        }

        void pad(long alignment) throws IOException {
            while (count % alignment != 0) {
                write(0);
            }
        }

        @Override
        public void close() throws IOException {
            out.close();
        }
    }
}
