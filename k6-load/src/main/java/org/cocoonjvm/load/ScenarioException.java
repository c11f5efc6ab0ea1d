package org.cocoonjvm.load;

/** A parameter file, an override or a threshold expression that cannot be used as written. */
public final class ScenarioException extends RuntimeException {
    public ScenarioException(String message) {
        super(message);
    }
}
