package org.cocoonjvm.worker.kernels;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import org.cocoonjvm.protocol.grpc.SamplingParams;
import org.cocoonjvm.worker.engine.Engine;
import org.cocoonjvm.worker.engine.ModelInfo;
import org.cocoonjvm.worker.engine.Slot;
import org.cocoonjvm.worker.engine.Tokenizer;
import org.cocoonjvm.worker.model.LoadedModel;

/**
 * Runs a real transformer on the native kernel library: weights, KV cache, forward pass and
 * sampling all live in C (or CUDA); each step crosses into native code once and brings back only
 * token ids.
 */
public final class NativeEngine implements Engine {
    private final LoadedModel model;
    private final NativeModel kernels;
    private final NativeEngineOptions options;
    /** sequence id -> KV slot; engine thread only. */
    private final Map<Long, Integer> slots = new HashMap<>();
    private final ArrayDeque<Integer> freeSlots = new ArrayDeque<>();

    public NativeEngine(LoadedModel model, NativeEngineOptions options) {
        this.model = model;
        this.options = options;
        this.kernels = new NativeModel(KernelLibrary.get(), model.weights(), options.threads(),
                options.kvTokens() / options.blockTokens(), options.blockTokens(), options.maxBatch(), options.maxStepTokens());
        for (int i = 0; i < options.maxBatch(); i++) {
            freeSlots.add(i);
        }
    }

    @Override
    public ModelInfo model() {
        return model.info();
    }

    @Override
    public String kind() {
        return "native-" + KernelLibrary.get().backend();
    }

    @Override
    public int maxBatch() {
        return options.maxBatch();
    }

    @Override
    public int maxStepTokens() {
        return options.maxStepTokens();
    }

    @Override
    public KvBudget kvBudget() {
        return new KvBudget(kernels.kvBlocks(), kernels.blockTokens());
    }

    @Override
    public Tokenizer tokenizer() {
        return model.tokenizer();
    }

    @Override
    public void step(List<Slot> batch, int[] next) {
        int offset = 0;
        for (int i = 0; i < batch.size(); i++) {
            Slot s = batch.get(i);
            Integer slot = slots.get(s.sequenceId());
            if (slot == null) {
                slot = freeSlots.pop();  // the scheduler never runs more than maxBatch sequences
                slots.put(s.sequenceId(), slot);
            }
            SamplingParams p = s.sampling();
            long seed = p.hasSeed() ? p.getSeed() : ThreadLocalRandom.current().nextLong();
            kernels.entry(i, slot, s.position(), s.input(), offset, s.sample(), p.getTemperature(), p.getTopP(),
                    p.getTopK(), p.getPresencePenalty(), p.getFrequencyPenalty(), seed);
            offset += s.input().length;
        }
        kernels.step(batch.size(), next, null);
    }

    @Override
    public void release(long sequenceId) {
        Integer slot = slots.remove(sequenceId);
        if (slot != null) {
            kernels.free(slot);
            freeSlots.push(slot);
        }
    }

    /** Peak host (and device) bytes the kernel library has held. */
    public long peakBytes() {
        return kernels.peakBytes();
    }

    @Override
    public void close() {
        try {
            kernels.close();
        } finally {
            model.close();
        }
    }
}
