package org.cocoonjvm.gateway.api;

import io.vertx.core.Future;
import io.vertx.ext.web.RoutingContext;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.OpenAiResponses;

/**
 * What an HTTP request's handlers note in its routing context for its access-log line: the
 * error it was refused with, the model it asked for, and a completion's admission: once it
 * succeeded a relay took the request (a relay logs its own, fuller line).
 */
public final class RequestNotes {
    private static final String ERROR = "cocoon.error";
    private static final String MODEL = "cocoon.model";
    private static final String ADMISSION = "cocoon.admission";

    private RequestNotes() {}

    /** Answers with {@code error} (OpenAI's error JSON and status) and notes its code. */
    public static void refuse(RoutingContext ctx, ApiException error) {
        ctx.put(ERROR, error.kind().stableCode());
        OpenAiResponses.error(ctx.response(), error);
    }

    static void noteModel(RoutingContext ctx, String model) {
        ctx.put(MODEL, model);
    }

    /**
     * A completion's admission, as it starts: a client that leaves while it is under way is logged
     * once it is answered, as what it ends in (its relay's line, or a refusal's), not as it leaves.
     */
    static void noteAdmission(RoutingContext ctx, Future<Admission.Admitted> admission) {
        ctx.put(ADMISSION, admission);
    }

    /** The request's admission (a completion's), or null for any other request. */
    public static Future<?> admission(RoutingContext ctx) {
        return ctx.get(ADMISSION);
    }

    public static String error(RoutingContext ctx) {
        return ctx.get(ERROR);
    }

    public static String model(RoutingContext ctx) {
        return ctx.get(MODEL);
    }

    /** Admitted, so a relay took it: every admitted completion is relayed. */
    public static boolean relayed(RoutingContext ctx) {
        Future<?> admission = admission(ctx);
        return admission != null && admission.succeeded();
    }
}
