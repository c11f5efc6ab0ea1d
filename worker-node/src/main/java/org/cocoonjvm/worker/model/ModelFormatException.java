package org.cocoonjvm.worker.model;

import com.fasterxml.jackson.core.JacksonException;
import io.vertx.core.json.DecodeException;

/** A model's files are malformed, inconsistent, or use something this worker cannot run. */
public class ModelFormatException extends RuntimeException {
    public ModelFormatException(String message) {
        super(message);
    }

    public ModelFormatException(String message, Throwable cause) {
        super(message, cause);
    }

    /**
     * {@code source} does not parse as JSON: Jackson's reason and position in one line, without
     * the second line its message adds about the (redacted) source.
     */
    static ModelFormatException malformedJson(String source, DecodeException e) {
        String reason = e.getCause() instanceof JacksonException j
                ? j.getOriginalMessage() + (j.getLocation() == null ? ""
                        : " (line " + j.getLocation().getLineNr() + ", column " + j.getLocation().getColumnNr() + ")")
                : e.getMessage();
        return new ModelFormatException(source + ": " + reason, e);
    }
}
