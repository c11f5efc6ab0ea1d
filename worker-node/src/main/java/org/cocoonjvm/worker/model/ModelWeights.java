package org.cocoonjvm.worker.model;

/** A model's weights as stored in its files; closing unmaps them. */
public interface ModelWeights extends AutoCloseable {
    ModelConfig config();

    /**
     * @param layer ignored for tensors that are not {@link TensorKind#perLayer}
     * @return the tensor, or null when the model has none of that kind (e.g. OUTPUT when tied)
     */
    Tensor tensor(TensorKind kind, int layer);

    @Override
    void close();
}
