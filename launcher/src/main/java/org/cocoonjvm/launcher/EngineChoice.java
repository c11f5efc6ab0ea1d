package org.cocoonjvm.launcher;

import org.cocoonjvm.worker.engine.Engine;
import org.cocoonjvm.worker.engine.SyntheticEngine;

/** The {@code --engine} options shared by {@code demo} and {@code worker}. */
final class EngineChoice {
    enum Kind { synthetic, nativeEngine }

    private EngineChoice() {}

    static Kind parse(String name) {
        return switch (name) {
            case "synthetic" -> Kind.synthetic;
            case "native" -> Kind.nativeEngine;
            default -> throw new Cocoon.UsageException("--engine must be 'synthetic' or 'native', got '" + name + "'");
        };
    }

    static Engine create(String name, double syntheticTokensPerSecond, int maxBatch) {
        return switch (parse(name)) {
            case synthetic -> new SyntheticEngine(syntheticTokensPerSecond, maxBatch, 4096);
            case nativeEngine -> throw new Cocoon.UsageException(
                    "the native engine is not built yet; run with --engine synthetic");
        };
    }
}
