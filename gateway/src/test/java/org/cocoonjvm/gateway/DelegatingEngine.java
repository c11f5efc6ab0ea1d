package org.cocoonjvm.gateway;

import java.util.List;
import org.cocoonjvm.worker.engine.Engine;
import org.cocoonjvm.worker.engine.ModelInfo;
import org.cocoonjvm.worker.engine.Slot;
import org.cocoonjvm.worker.engine.Tokenizer;

/** An engine that passes everything to another: tests override the one part they change. */
abstract class DelegatingEngine implements Engine {
    protected final Engine engine;

    DelegatingEngine(Engine engine) {
        this.engine = engine;
    }

    @Override
    public ModelInfo model() {
        return engine.model();
    }

    @Override
    public String kind() {
        return engine.kind();
    }

    @Override
    public int maxBatch() {
        return engine.maxBatch();
    }

    @Override
    public int maxStepTokens() {
        return engine.maxStepTokens();
    }

    @Override
    public KvBudget kvBudget() {
        return engine.kvBudget();
    }

    @Override
    public Tokenizer tokenizer() {
        return engine.tokenizer();
    }

    @Override
    public void step(List<Slot> slots, int[] next) {
        engine.step(slots, next);
    }

    @Override
    public void release(long sequenceId) {
        engine.release(sequenceId);
    }

    @Override
    public void close() {
        engine.close();
    }
}
