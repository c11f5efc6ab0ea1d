package org.cocoonjvm.protocol.openai;

import org.cocoonjvm.protocol.grpc.Usage;

/**
 * What every chunk of one completion repeats.
 *
 * @param id           {@code chatcmpl-…} or {@code cmpl-…}; also the request id sent to the worker
 * @param created      Unix seconds
 * @param model        echoed as the client sent it
 * @param usage        where a stream reports its usage
 * @param flavor       chat or text completion: decides the objects' shapes
 * @param tier         the tier that served it: a chat completion says which, as OpenAI's do
 */
public record CompletionMeta(String id, long created, String model, UsageReport usage, Flavor flavor, ServiceTier tier) {

    /** Where a stream's usage goes (a JSON document always carries it). */
    public enum UsageReport {
        /** Nowhere: the client did not ask (a worker's own endpoint, as OpenAI's). */
        NONE,
        /**
         * A {@code "usage"} field on the finish-reason chunk, and beside {@code "error"} in a
         * mid-stream error's event: how the gateway always reports what a request cost when the
         * client did not ask for the usage chunk. Not an extra chunk with empty {@code choices}:
         * that breaks every client loop that reads {@code choices[0]} of each chunk, the official
         * SDKs' README examples among them (audit M, M-1).
         */
        FINISH_CHUNK,
        /** A chunk of its own, {@code "choices":[]}, before {@code [DONE]}: OpenAI's {@code stream_options.include_usage}. */
        OWN_CHUNK
    }

    /** The two OpenAI completion APIs. */
    public enum Flavor {
        CHAT("chat.completion.chunk", "chat.completion"),
        TEXT("text_completion", "text_completion");

        final String chunkObject;
        final String documentObject;

        Flavor(String chunkObject, String documentObject) {
            this.chunkObject = chunkObject;
            this.documentObject = documentObject;
        }
    }

    public CompletionMeta(String id, long created, String model, UsageReport usage) {
        this(id, created, model, usage, Flavor.CHAT, ServiceTier.DEFAULT);
    }

    /**
     * {@code "id":…,"object":…,"created":…,"model":…} without braces, for hand-built chunks, and a
     * chat completion's {@code "service_tier"} (OpenAI's text completions have none).
     */
    StringBuilder appendHeader(StringBuilder out, String object) {
        out.append("\"id\":");
        JsonText.appendString(out, id);
        out.append(",\"object\":\"").append(object).append("\",\"created\":").append(created).append(",\"model\":");
        JsonText.appendString(out, model);
        return flavor == Flavor.CHAT ? out.append(",\"service_tier\":\"").append(tier.wireName()).append('"') : out;
    }

    static StringBuilder appendUsage(StringBuilder out, Usage usage, UsageCost cost) {
        out.append("{\"prompt_tokens\":").append(usage.getPromptTokens())
                .append(",\"completion_tokens\":").append(usage.getCompletionTokens())
                .append(",\"total_tokens\":").append((long) usage.getPromptTokens() + usage.getCompletionTokens())
                .append(",\"prompt_tokens_details\":{\"cached_tokens\":").append(usage.getCachedTokens())
                .append("},\"completion_tokens_details\":{\"reasoning_tokens\":").append(usage.getReasoningTokens())
                .append('}');
        if (cost != null) {
            out.append(",\"prompt_total_cost\":").append(cost.promptTotalCost())
                    .append(",\"completion_total_cost\":").append(cost.completionTotalCost())
                    .append(",\"total_cost\":").append(cost.totalCost());
        }
        return out.append('}');
    }
}
