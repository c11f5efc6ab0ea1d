package org.cocoonjvm.gateway.registry;

import java.util.List;
import org.cocoonjvm.protocol.grpc.ModelRef;

/**
 * How a client names a model: by its name, or as {@code name@hash} to pin the weights. The one
 * place that rule is written, for routing, the registry's known models, {@code /v1/models} and
 * the logs and views that show a worker's models.
 */
public final class ModelKeys {
    private ModelKeys() {
    }

    /** {@code name@hash}: the id that pins the model's weights. */
    public static String id(ModelRef model) {
        return id(model.getName(), model.getHash());
    }

    /** {@code name@hash}. */
    public static String id(String name, String hash) {
        return name + "@" + hash;
    }

    /** Every name a client may ask for the model by: its name, and name@hash. */
    public static List<String> keys(ModelRef model) {
        return List.of(model.getName(), id(model));
    }

    /** Whether {@code asked} names the model: its name, or name@hash. */
    public static boolean matches(ModelRef model, String asked) {
        return matches(model.getName(), model.getHash(), asked);
    }

    /**
     * Whether {@code asked} is {@code name} or {@code name@hash}. Compared in place: routing asks
     * this for every model of every worker, and building name@hash allocated a string each time.
     */
    public static boolean matches(String name, String hash, String asked) {
        return name.equals(asked) || asked != null && asked.length() == name.length() + 1 + hash.length()
                && asked.startsWith(name) && asked.charAt(name.length()) == '@' && asked.endsWith(hash);
    }
}
