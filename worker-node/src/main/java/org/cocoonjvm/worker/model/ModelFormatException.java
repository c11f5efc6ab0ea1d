package org.cocoonjvm.worker.model;

/** A model's files are malformed, inconsistent, or use something this worker cannot run. */
public class ModelFormatException extends RuntimeException {
    public ModelFormatException(String message) {
        super(message);
    }

    public ModelFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
