package org.cocoonjvm.worker.model;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.Map;
import java.util.function.Consumer;

/** Helpers shared by the model tests. */
final class TestModels {
    private TestModels() {
    }

    static RandomModel.Written writeBoth(RandomModelSpec spec, Path dir) throws IOException {
        return RandomModel.write(spec, dir, EnumSet.allOf(ModelFormat.class));
    }

    /** One tensor replaced in a GGUF copy: a new ggml type and raw bytes. */
    record Replacement(String name, int ggmlType, long[] hfShape, byte[] data) {
    }

    /**
     * Copies a GGUF, letting {@code editMetadata} change the key/values (an insertion-ordered map)
     * and replacing tensors by name.
     */
    static void copyGguf(Path from, Path to, Consumer<Map<String, GgufFile.Value>> editMetadata,
                         Replacement... replacements) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            GgufFile f = GgufFile.open(from, arena);
            Map<String, GgufFile.Value> meta = new java.util.LinkedHashMap<>(f.metadata());
            editMetadata.accept(meta);
            GgufWriter w = new GgufWriter();
            meta.forEach(w::put);
            outer:
            for (GgufFile.TensorInfo t : f.tensors()) {
                for (Replacement r : replacements) {
                    if (r.name().equals(t.name())) {
                        w.addTensor(t.name(), r.hfShape() != null ? r.hfShape() : t.shape(), r.ggmlType(), r.data());
                        continue outer;
                    }
                }
                w.addTensor(t.name(), t.shape(), t.ggmlType(), f.data(t).toArray(ValueLayout.JAVA_BYTE));
            }
            w.write(to);
        }
    }
}
