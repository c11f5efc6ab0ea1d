package org.cocoonjvm.protocol.openai;

import org.cocoonjvm.protocol.grpc.ChatMessage;
import org.cocoonjvm.protocol.grpc.GenerateRequest;

/**
 * A completion request that passed validation. Only the parsers in this package construct one
 * ({@link RequestParser} for OpenAI JSON, {@link InferenceRequestParser} for the gRPC API; the
 * constructor is package-private), so code that takes it never re-checks the fields.
 */
public final class ValidRequest {
    private final String model;
    private final boolean stream;
    private final boolean includeUsage;
    private final boolean continuousUsage;
    private final CompletionMeta.Flavor flavor;
    private final ServiceTier tier;
    private final GenerateRequest generate;

    /**
     * How the answer is delivered: see {@link #stream()}, {@link #includeUsage()} and
     * {@link #continuousUsage()}.
     */
    record Delivery(boolean stream, boolean includeUsage, boolean continuousUsage) {
        /** The gRPC API's only delivery: a stream whose usage comes in its own last event. */
        static final Delivery STREAM_WITH_USAGE = new Delivery(true, true, false);
    }

    ValidRequest(String model, Delivery delivery, CompletionMeta.Flavor flavor, ServiceTier tier, GenerateRequest generate) {
        this.model = model;
        this.stream = delivery.stream();
        this.includeUsage = delivery.includeUsage();
        this.continuousUsage = delivery.continuousUsage();
        this.flavor = flavor;
        this.tier = tier;
        this.generate = generate;
    }

    /** The model the client asked for, as it appears in {@code /v1/models}. */
    public String model() {
        return model;
    }

    /** Answer as Server-Sent Events rather than one JSON document. */
    public boolean stream() {
        return stream;
    }

    /** The client asked for the usage chunk ({@code stream_options.include_usage}). */
    public boolean includeUsage() {
        return includeUsage;
    }

    /**
     * The client asked for the usage so far on every chunk ({@code stream_options.continuous_usage_stats},
     * vLLM's): what a forwarding worker in front of this one bills a stream cut short by.
     */
    public boolean continuousUsage() {
        return continuousUsage;
    }

    /** Chat ({@code /v1/chat/completions}) or text ({@code /v1/completions}). */
    public CompletionMeta.Flavor flavor() {
        return flavor;
    }

    public ServiceTier tier() {
        return tier;
    }

    /**
     * What every chunk of this request's completion {@code id} repeats, created now.
     *
     * @param usageAlways report the usage whether or not the client asked (the gateway's rule: a
     *                    client always learns what a request cost)
     */
    public CompletionMeta meta(String id, boolean usageAlways) {
        CompletionMeta.UsageReport usage = includeUsage ? CompletionMeta.UsageReport.OWN_CHUNK
                : usageAlways ? CompletionMeta.UsageReport.FINISH_CHUNK : CompletionMeta.UsageReport.NONE;
        return new CompletionMeta(id, System.currentTimeMillis() / 1000, model, usage, flavor, tier);
    }

    /** max_tokens as given; 0 when the client set none. */
    public int maxTokens() {
        return generate.getMaxTokens();
    }

    /**
     * A hash of the prompt's stable prefix (the leading system/developer messages) for routing
     * repeated prompts to the worker whose KV cache may hold them; 0 when there is none.
     */
    public long prefixHash() {
        if (!generate.hasChat()) {
            return 0;
        }
        long h = 0xcbf29ce484222325L;  // FNV-1a: cheap, and collisions only cost a cache miss
        boolean any = false;
        for (var m : generate.getChat().getMessagesList()) {
            if (!m.getRole().equals("system") && !m.getRole().equals("developer")) {
                break;
            }
            any = true;
            String text = m.getContent();
            for (int i = 0; i < text.length(); i++) {
                h = (h ^ text.charAt(i)) * 0x100000001b3L;
            }
        }
        if (!any) {
            return 0;
        }
        for (int i = 0; i < model.length(); i++) {
            h = (h ^ model.charAt(i)) * 0x100000001b3L;
        }
        return h == 0 ? 1 : h;
    }

    /**
     * The prompt's size in UTF-8 bytes (its roles and contents), the bound on its tokens that
     * reservations and the tokens-per-minute estimate use: no tokenizer makes more tokens of text
     * than it has bytes (a byte-level BPE makes at most one a byte, a byte fallback one a byte),
     * while characters undercount (a CJK character is three byte-level tokens, an emoji four for
     * its two UTF-16 units). Not bounded by it: what a chat template writes around the messages.
     */
    public long promptBytes() {
        if (!generate.hasChat()) {
            return utf8Length(generate.getPrompt());
        }
        long bytes = 0;
        for (ChatMessage m : generate.getChat().getMessagesList()) {
            bytes += utf8Length(m.getRole()) + utf8Length(m.getContent());
        }
        return bytes;
    }

    private static long utf8Length(String text) {
        long bytes = text.length();  // one for every ASCII char; what the others add, below
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c >= 0x80) {
                // 2 bytes below U+0800, else 3; a surrogate pair is 4 for its two chars (2 each).
                bytes += c < 0x800 || Character.isSurrogate(c) ? 1 : 2;
            }
        }
        return bytes;
    }

    /** The messages of a chat request, which its model's chat template wraps; 0 for a plain prompt. */
    public int chatMessages() {
        return generate.hasChat() ? generate.getChat().getMessagesCount() : 0;
    }

    /** What to send to a worker, under the given request id. */
    public GenerateRequest generate(String requestId) {
        return generate.toBuilder().setRequestId(requestId).build();
    }

    /** The id prefix OpenAI uses for this kind of completion. */
    public String idPrefix() {
        return flavor == CompletionMeta.Flavor.CHAT ? "chatcmpl-" : "cmpl-";
    }
}
