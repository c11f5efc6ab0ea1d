package org.cocoonjvm.protocol.openai;

import io.vertx.ext.web.Route;
import io.vertx.ext.web.Router;
import java.util.Set;
import java.util.TreeSet;

/** A 405's {@code Allow}: what the gateway and the worker answer a known path asked with the wrong method. */
public final class AllowedMethods {
    private AllowedMethods() {}

    /**
     * The methods the routes for exactly {@code path} answer, HEAD with GET; empty when no route
     * names it with methods (a 404, then). Routes for every method (an authentication step) do not count.
     */
    public static String of(Router router, String path) {
        Set<String> methods = new TreeSet<>();
        for (Route route : router.getRoutes()) {
            if (route.isExactPath() && path.equals(route.getPath()) && route.methods() != null) {
                route.methods().forEach(m -> methods.add(m.name()));
            }
        }
        if (methods.contains("GET")) {
            methods.add("HEAD");
        }
        return String.join(", ", methods);
    }
}
