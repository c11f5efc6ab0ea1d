package org.cocoonjvm.launcher;

import org.cocoonjvm.worker.engine.Engine;
import org.cocoonjvm.worker.engine.SyntheticEngine;
import picocli.CommandLine.Option;

/** The engine options shared by {@code demo} and {@code worker} (a picocli mixin). */
final class EngineChoice {
    @Option(names = "--engine", defaultValue = "synthetic", description = "synthetic | native. Default: ${DEFAULT-VALUE}.")
    String engine;

    @Option(names = "--synthetic-rate", defaultValue = "25",
            description = "Tokens per second per sequence of the synthetic engine. Default: ${DEFAULT-VALUE}.")
    double syntheticRate;

    @Option(names = "--max-batch", defaultValue = "64", description = "Sequences per engine step. Default: ${DEFAULT-VALUE}.")
    int maxBatch;

    /** Checks the options before anything starts, so a typo fails fast with one line. */
    void validate() {
        switch (engine) {
            case "synthetic" -> { }
            case "native" -> throw new Cocoon.UsageException("the native engine is not built yet; run with --engine synthetic");
            default -> throw new Cocoon.UsageException("--engine must be 'synthetic' or 'native', got '" + engine + "'");
        }
        if (!(syntheticRate > 0) || maxBatch < 1) {
            throw new Cocoon.UsageException("--synthetic-rate and --max-batch must be positive");
        }
    }

    Engine create() {
        validate();
        return new SyntheticEngine(syntheticRate, maxBatch, 4096);
    }
}
