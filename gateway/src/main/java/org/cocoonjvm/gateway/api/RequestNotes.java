package org.cocoonjvm.gateway.api;

import io.vertx.ext.web.RoutingContext;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.OpenAiResponses;

/**
 * What an HTTP request's handlers note in its routing context for its access-log line: the
 * error it was refused with, the model it asked for, and whether a relay took it (a relay logs
 * its own, fuller line).
 */
public final class RequestNotes {
    private static final String ERROR = "cocoon.error";
    private static final String MODEL = "cocoon.model";
    private static final String RELAYED = "cocoon.relayed";

    private RequestNotes() {}

    /** Answers with {@code error} (OpenAI's error JSON and status) and notes its code. */
    public static void refuse(RoutingContext ctx, ApiException error) {
        ctx.put(ERROR, error.kind().stableCode());
        OpenAiResponses.error(ctx.response(), error);
    }

    static void noteModel(RoutingContext ctx, String model) {
        ctx.put(MODEL, model);
    }

    static void noteRelayed(RoutingContext ctx) {
        ctx.put(RELAYED, Boolean.TRUE);
    }

    public static String error(RoutingContext ctx) {
        return ctx.get(ERROR);
    }

    public static String model(RoutingContext ctx) {
        return ctx.get(MODEL);
    }

    public static boolean relayed(RoutingContext ctx) {
        return ctx.get(RELAYED) != null;
    }
}
