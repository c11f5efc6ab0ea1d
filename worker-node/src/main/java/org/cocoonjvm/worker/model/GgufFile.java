package org.cocoonjvm.worker.model;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A GGUF file (versions 2 and 3, little-endian), memory-mapped: header, metadata key/values,
 * tensor infos and the data section. Layout:
 * <pre>
 *   "GGUF" u32 version, u64 tensor_count, u64 kv_count
 *   kv_count  × (string key, u32 value_type, value)          strings: u64 length + UTF-8
 *   tensor_count × (string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset)
 *   padding to general.alignment (default 32), then the data; each offset is from the data start
 * </pre>
 * {@code ne[0]} is the innermost (fastest-varying) dimension, the reverse of Hugging Face's shape.
 */
public final class GgufFile {
    public static final int MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
    public static final int DEFAULT_ALIGNMENT = 32;

    /** Metadata value types. */
    public enum ValueType {
        UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64;

        static ValueType of(int id, String where) {
            if (id < 0 || id >= values().length) {
                throw new ModelFormatException(where + ": unknown GGUF value type " + id);
            }
            return values()[id];
        }
    }

    /**
     * A metadata value. Integers of every width are {@link Long} (UINT64 as its bit pattern),
     * FLOAT32 a {@link Float}, FLOAT64 a {@link Double}, BOOL a {@link Boolean}, STRING a
     * {@link String}; an ARRAY is an unmodifiable {@code List} of such values, with
     * {@code elementType} saying which.
     */
    public record Value(ValueType type, ValueType elementType, Object value) {
        public static Value of(ValueType type, Object value) {
            return new Value(type, null, value);
        }

        public static Value array(ValueType elementType, List<?> values) {
            return new Value(ValueType.ARRAY, elementType, List.copyOf(values));
        }

        public long asLong() {
            if (value instanceof Number n && !(value instanceof Float) && !(value instanceof Double)) {
                return n.longValue();
            }
            throw new IllegalStateException("not an integer: " + this);
        }

        /** FLOAT32 values are widened through their shortest decimal form (1e-6f gives 1e-6, not 9.99999997e-7). */
        public double asDouble() {
            if (value instanceof Float f) {
                return Double.parseDouble(Float.toString(f));
            }
            if (value instanceof Number n) {
                return n.doubleValue();
            }
            throw new IllegalStateException("not a number: " + this);
        }

        public String asString() {
            if (value instanceof String s) {
                return s;
            }
            throw new IllegalStateException("not a string: " + this);
        }

        @SuppressWarnings("unchecked")
        public List<Object> asList() {
            if (value instanceof List<?> l) {
                return (List<Object>) l;
            }
            throw new IllegalStateException("not an array: " + this);
        }

        @Override
        public String toString() {
            if (value instanceof List<?> l) {
                return "array<" + elementType + ">[" + l.size() + "]";
            }
            return type + ":" + value;
        }
    }

    /**
     * @param dims     GGUF order, innermost first ({@code ne[0]} = in_features of a matrix)
     * @param ggmlType the ggml type id (see {@link GgmlType})
     * @param offset   from the start of the data section
     */
    public record TensorInfo(String name, long[] dims, int ggmlType, long offset) {
        /** Hugging Face order: outermost first. */
        public long[] shape() {
            long[] s = new long[dims.length];
            for (int i = 0; i < dims.length; i++) {
                s[i] = dims[dims.length - 1 - i];
            }
            return s;
        }

        public long elements() {
            long n = 1;
            for (long d : dims) {
                n *= d;
            }
            return n;
        }
    }

    private final Path path;
    private final int version;
    private final Map<String, Value> metadata;
    private final List<TensorInfo> tensors;
    private final long alignment;
    private final long dataOffset;
    private final MemorySegment file;

    private GgufFile(Path path, int version, Map<String, Value> metadata, List<TensorInfo> tensors, long alignment,
                     long dataOffset, MemorySegment file) {
        this.path = path;
        this.version = version;
        this.metadata = metadata;
        this.tensors = tensors;
        this.alignment = alignment;
        this.dataOffset = dataOffset;
        this.file = file;
    }

    /** Maps the file into {@code arena} (the tensors' data stays valid while it is open) and parses its header. */
    public static GgufFile open(Path path, Arena arena) throws IOException {
        MemorySegment seg;
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
        }
        return parse(path, seg);
    }

    /** Header and metadata only; the data is unmapped again before this returns. */
    public static GgufFile readHeader(Path path) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            GgufFile f = open(path, arena);
            return new GgufFile(path, f.version, f.metadata, f.tensors, f.alignment, f.dataOffset, null);
        }
    }

    private static GgufFile parse(Path path, MemorySegment seg) {
        Reader r = new Reader(seg, path.toString());
        if (seg.byteSize() < 24 || r.u32() != MAGIC) {
            throw new ModelFormatException(path + ": not a GGUF file (no GGUF magic)");
        }
        int version = r.u32();
        if (version != 2 && version != 3) {
            if (Integer.reverseBytes(version) == 2 || Integer.reverseBytes(version) == 3) {
                throw new ModelFormatException(path + ": big-endian GGUF files are not supported");
            }
            throw new ModelFormatException(path + ": GGUF version " + version + " is not supported (2 or 3)");
        }
        long tensorCount = r.u64();
        long kvCount = r.u64();
        if (tensorCount < 0 || kvCount < 0 || tensorCount > seg.byteSize() || kvCount > seg.byteSize()) {
            throw new ModelFormatException(path + ": corrupt GGUF header (" + tensorCount + " tensors, " + kvCount + " keys)");
        }
        Map<String, Value> metadata = new LinkedHashMap<>();
        for (long i = 0; i < kvCount; i++) {
            String key = r.string();
            ValueType type = ValueType.of(r.u32(), path + " key " + key);
            metadata.put(key, r.value(type, key));
        }
        List<TensorInfo> tensors = new ArrayList<>();
        for (long i = 0; i < tensorCount; i++) {
            String name = r.string();
            int nDims = r.u32();
            if (nDims < 1 || nDims > 4) {
                throw new ModelFormatException(path + ": tensor " + name + " has " + nDims + " dimensions");
            }
            long[] dims = new long[nDims];
            for (int d = 0; d < nDims; d++) {
                dims[d] = r.u64();
                if (dims[d] < 0) {
                    throw new ModelFormatException(path + ": tensor " + name + " has a negative dimension");
                }
            }
            tensors.add(new TensorInfo(name, dims, r.u32(), r.u64()));
        }
        Value alignValue = metadata.get("general.alignment");
        long alignment = alignValue == null ? DEFAULT_ALIGNMENT : alignValue.asLong();
        if (alignment < 1 || Long.bitCount(alignment) != 1) {
            throw new ModelFormatException(path + ": general.alignment " + alignment + " is not a power of two");
        }
        long dataOffset = (r.pos + alignment - 1) / alignment * alignment;
        return new GgufFile(path, version, Collections.unmodifiableMap(metadata), List.copyOf(tensors), alignment,
                dataOffset, seg);
    }

    public Path path() {
        return path;
    }

    public int version() {
        return version;
    }

    public Map<String, Value> metadata() {
        return metadata;
    }

    public Value get(String key) {
        return metadata.get(key);
    }

    public List<TensorInfo> tensors() {
        return tensors;
    }

    public TensorInfo tensor(String name) {
        for (TensorInfo t : tensors) {
            if (t.name().equals(name)) {
                return t;
            }
        }
        return null;
    }

    public long alignment() {
        return alignment;
    }

    /** Where the data section starts in the file. */
    public long dataOffset() {
        return dataOffset;
    }

    /** The tensor's bytes in the mapped file; fails for types this worker cannot size. */
    public MemorySegment data(TensorInfo t) {
        if (file == null) {
            throw new IllegalStateException("opened with readHeader: no data");
        }
        long bytes = GgmlType.bytes(t);
        long start = dataOffset + t.offset();
        if (t.offset() < 0 || start + bytes > file.byteSize()) {
            throw new ModelFormatException(path + ": tensor " + t.name() + " lies outside the file (offset " + t.offset()
                    + ", " + bytes + " bytes, file " + file.byteSize() + " bytes)");
        }
        return file.asSlice(start, bytes);
    }

    /** Sequential little-endian reads with bounds checks that name the file. */
    private static final class Reader {
        private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

        private final MemorySegment seg;
        private final String where;
        long pos;

        Reader(MemorySegment seg, String where) {
            this.seg = seg;
            this.where = where;
        }

        private void need(long n) {
            if (n < 0 || pos + n > seg.byteSize()) {
                throw new ModelFormatException(where + ": GGUF header runs past the end of the file (at byte " + pos + ")");
            }
        }

        int u32() {
            need(4);
            int v = seg.get(U32, pos);
            pos += 4;
            return v;
        }

        long u64() {
            need(8);
            long v = seg.get(U64, pos);
            pos += 8;
            return v;
        }

        String string() {
            long len = u64();
            need(len);
            if (len > Integer.MAX_VALUE) {
                throw new ModelFormatException(where + ": GGUF string of " + len + " bytes");
            }
            String s = new String(seg.asSlice(pos, len).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
            pos += len;
            return s;
        }

        Value value(ValueType type, String key) {
            if (type == ValueType.ARRAY) {
                ValueType elem = ValueType.of(u32(), where + " key " + key);
                long n = u64();
                if (n < 0 || n > seg.byteSize() - pos) {
                    throw new ModelFormatException(where + ": array " + key + " claims " + n + " elements");
                }
                List<Object> list = new ArrayList<>((int) n);
                for (long i = 0; i < n; i++) {
                    list.add(scalar(elem, key));
                }
                return new Value(ValueType.ARRAY, elem, Collections.unmodifiableList(list));
            }
            return Value.of(type, scalar(type, key));
        }

        Object scalar(ValueType type, String key) {
            Object v;
            switch (type) {
                case UINT8, INT8, BOOL -> {
                    need(1);
                    byte b = seg.get(ValueLayout.JAVA_BYTE, pos);
                    v = type == ValueType.BOOL ? (Object) (b != 0) : (Object) (long) (type == ValueType.UINT8 ? b & 0xff : b);
                    pos += 1;
                }
                case UINT16, INT16 -> {
                    need(2);
                    short s = seg.get(U16, pos);
                    v = (long) (type == ValueType.UINT16 ? s & 0xffff : s);
                    pos += 2;
                }
                case UINT32 -> v = Integer.toUnsignedLong(u32());
                case INT32 -> v = (long) u32();
                case UINT64, INT64 -> v = u64();
                case FLOAT32 -> {
                    need(4);
                    v = seg.get(F32, pos);
                    pos += 4;
                }
                case FLOAT64 -> {
                    need(8);
                    v = seg.get(F64, pos);
                    pos += 8;
                }
                case STRING -> v = string();
                case ARRAY -> throw new ModelFormatException(where + ": nested arrays in " + key + " are not supported");
                default -> throw new AssertionError(type);
            }
            return v;
        }
    }
}
