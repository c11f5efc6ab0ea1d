package org.cocoonjvm.gateway;

import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.cocoonjvm.worker.engine.Engine;
import org.cocoonjvm.worker.engine.Slot;

/** An engine whose step throws once {@link #failing} is set, after {@link #stepMs}, as a kernel error would. */
final class FailingEngine extends DelegatingEngine {
    final AtomicBoolean failing = new AtomicBoolean();
    volatile long stepMs;

    FailingEngine(Engine engine) {
        super(engine);
    }

    @Override
    public void step(List<Slot> slots, int[] next) {
        if (failing.get()) {
            try {
                Thread.sleep(stepMs);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            throw new IllegalStateException("injected kernel error");
        }
        engine.step(slots, next);
    }
}
