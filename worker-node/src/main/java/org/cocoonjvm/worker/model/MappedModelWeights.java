package org.cocoonjvm.worker.model;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;

/**
 * {@link ModelWeights} over memory-mapped files (and, for the few tensors a loader had to
 * rearrange, copies). Owns the {@link Arena} that holds the mappings; {@link #close()} unmaps
 * everything at once, after which no {@link Tensor#data()} it gave out may be touched.
 *
 * <p>The constructor checks the tensors against the config: every tensor the config implies
 * is present, has exactly {@link ModelConfig#shape} and as many bytes as its dtype needs; norms
 * and biases are F32, F16 or BF16 (never quantised).
 */
public final class MappedModelWeights implements ModelWeights {
    private final ModelConfig config;
    private final Arena arena;
    private final Map<TensorKind, Tensor[]> tensors = new EnumMap<>(TensorKind.class);
    private final List<Tensor> all = new ArrayList<>();

    /**
     * @param found  every recognised tensor of the file(s), by kind and layer
     * @param naming the file format's name for a (kind, layer), for error messages
     * @param source the file or directory, for error messages
     */
    public MappedModelWeights(ModelConfig config, Arena arena, Map<TensorNames.Ref, Tensor> found,
                              BiFunction<TensorKind, Integer, String> naming, String source) {
        this.config = config;
        this.arena = arena;
        for (Map.Entry<TensorNames.Ref, Tensor> e : found.entrySet()) {
            TensorKind kind = e.getKey().kind();
            int layer = e.getKey().layer();
            Tensor t = e.getValue();
            if (kind.perLayer && layer >= config.layers()) {
                throw new ModelFormatException(source + ": tensor " + t.name() + " belongs to layer " + layer
                        + " but the model has " + config.layers() + " layers");
            }
            if (config.shape(kind) == null) {
                if (kind == TensorKind.OUTPUT) {
                    continue; // tied embeddings: some checkpoints still carry a copy; the kernels use the embedding
                }
                throw new ModelFormatException(source + ": unexpected tensor " + t.name() + " (the config has "
                        + switch (kind) {
                            case BQ, BK, BV -> "no attention biases";
                            case Q_NORM, K_NORM -> "no q/k norms";
                            default -> "no " + kind;
                        } + ")");
            }
            tensors.computeIfAbsent(kind, k -> new Tensor[kind.perLayer ? config.layers() : 1])[Math.max(layer, 0)] = t;
        }
        for (TensorKind kind : TensorKind.values()) {
            long[] expected = config.shape(kind);
            if (expected == null) {
                continue;
            }
            for (int layer = 0; layer < (kind.perLayer ? config.layers() : 1); layer++) {
                Tensor[] row = tensors.get(kind);
                Tensor t = row == null ? null : row[layer];
                String name = naming.apply(kind, layer);
                if (t == null) {
                    throw new ModelFormatException(source + ": missing tensor " + name + " (expected shape "
                            + Tensors.shape(expected) + ")");
                }
                if (!Arrays.equals(t.shape(), expected)) {
                    throw new ModelFormatException(source + ": tensor " + t.name() + " has shape "
                            + Tensors.shape(t.shape()) + ", expected " + Tensors.shape(expected)
                            + " from the config (" + config.architecture() + ", hidden " + config.hidden()
                            + ", heads " + config.heads() + "/" + config.kvHeads() + ", head_dim " + config.headDim()
                            + ", ffn " + config.ffnHidden() + ", vocab " + config.vocab() + ")");
                }
                if (kind.isVector() && t.dtype() == DType.Q8_0) {
                    throw new ModelFormatException(source + ": tensor " + t.name() + " is Q8_0; norms and biases must be F32, F16 or BF16");
                }
                long bytes;
                try {
                    bytes = t.dtype().bytes(t.elements());
                } catch (IllegalArgumentException ex) {
                    throw new ModelFormatException(source + ": tensor " + t.name() + ": " + ex.getMessage());
                }
                if (t.data().byteSize() != bytes) {
                    throw new ModelFormatException(source + ": tensor " + t.name() + " has " + t.data().byteSize()
                            + " bytes of data; " + t.dtype() + " " + Tensors.shape(t.shape()) + " needs " + bytes);
                }
                all.add(t);
            }
        }
    }

    @Override
    public ModelConfig config() {
        return config;
    }

    @Override
    public Tensor tensor(TensorKind kind, int layer) {
        Tensor[] row = tensors.get(kind);
        if (row == null) {
            return null;
        }
        if (!kind.perLayer) {
            return row[0];
        }
        if (layer < 0 || layer >= row.length) {
            throw new IndexOutOfBoundsException("layer " + layer + " of " + row.length);
        }
        return row[layer];
    }

    /** Every tensor the model uses, model-wide ones first, then by kind and layer. */
    public List<Tensor> tensors() {
        return List.copyOf(all);
    }

    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }
}
