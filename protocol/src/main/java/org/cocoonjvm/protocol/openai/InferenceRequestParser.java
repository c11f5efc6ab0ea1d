package org.cocoonjvm.protocol.openai;

import java.util.List;
import org.cocoonjvm.protocol.PrintableIds;
import org.cocoonjvm.protocol.grpc.ChatMessage;
import org.cocoonjvm.protocol.grpc.ChatMessages;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.InferenceRequest;
import org.cocoonjvm.protocol.grpc.Priority;
import org.cocoonjvm.protocol.grpc.SamplingParams;

/**
 * Turns a gRPC {@code Inference.Generate} request into the same {@link ValidRequest} that
 * {@link RequestParser} makes of the equivalent OpenAI JSON, so everything after validation
 * (admission, routing, the relay) cannot tell the two APIs apart. Limits and messages come from
 * {@link RequestLimits}; {@code param} names the proto field ({@code sampling.temperature},
 * {@code chat.messages[1].role}).
 *
 * <p>What differs is what proto3 can express: an absent {@code sampling} means OpenAI's defaults,
 * while inside a present one a zero means what {@code worker.proto} says (temperature 0 greedy,
 * top_p and top_k 0 off); a message's content cannot be null, so an unset one is the empty string,
 * which JSON accepts too. The answer is always a stream that ends with usage.
 */
public final class InferenceRequestParser {
    /** The longest {@code client_request_id}, which is echoed back and must stay log-safe. */
    public static final int MAX_CLIENT_REQUEST_ID = 128;

    private InferenceRequestParser() {}

    public static ValidRequest parse(InferenceRequest request) {
        String model = RequestLimits.nonEmpty(request.getModel(), "model");
        GenerateRequest.Builder generate = GenerateRequest.newBuilder().setModel(model);
        CompletionMeta.Flavor flavor = switch (request.getInputCase()) {
            case CHAT -> {
                generate.setChat(messages(request.getChat()));
                yield CompletionMeta.Flavor.CHAT;
            }
            case PROMPT -> {
                generate.setPrompt(RequestLimits.wellFormed(RequestLimits.nonEmpty(request.getPrompt(), "prompt"), "prompt"));
                yield CompletionMeta.Flavor.TEXT;
            }
            case INPUT_NOT_SET -> throw ApiException.invalid("chat", "One of 'chat' or 'prompt' is required.");
        };
        if (request.hasMaxTokens()) {
            generate.setMaxTokens(RequestLimits.maxTokens(Integer.toUnsignedLong(request.getMaxTokens()), "max_tokens"));
        }
        generate.setSampling(request.hasSampling() ? sampling(request.getSampling())
                : SamplingParams.newBuilder().setTemperature(RequestLimits.DEFAULT_TEMPERATURE).build());
        stops(request.getStopList(), generate);
        ServiceTier tier = switch (request.getServiceTier()) {
            case PRIORITY_DEFAULT -> ServiceTier.DEFAULT;
            case PRIORITY_FLEX -> ServiceTier.FLEX;
            case UNRECOGNIZED -> throw ApiException.invalid("service_tier",
                    "'service_tier' must be DEFAULT or FLEX, got " + request.getServiceTierValue() + ".");
        };
        generate.setPriority(tier == ServiceTier.FLEX ? Priority.PRIORITY_FLEX : Priority.PRIORITY_DEFAULT);
        clientRequestId(request.getClientRequestId());
        return new ValidRequest(model, ValidRequest.Delivery.STREAM_WITH_USAGE, flavor, tier, generate.build());
    }

    private static ChatMessages messages(ChatMessages chat) {
        if (chat.getMessagesCount() == 0) {
            throw ApiException.invalid("chat.messages", "'chat.messages' must not be empty.");
        }
        for (int i = 0; i < chat.getMessagesCount(); i++) {
            ChatMessage m = chat.getMessages(i);
            RequestLimits.role(m.getRole(), "chat.messages[" + i + "].role");
            RequestLimits.wellFormed(m.getContent(), "chat.messages[" + i + "].content");
        }
        return chat;
    }

    private static SamplingParams sampling(SamplingParams s) {
        RequestLimits.temperature(s.getTemperature(), "sampling.temperature");
        RequestLimits.topP(s.getTopP(), "sampling.top_p");
        RequestLimits.topK(Integer.toUnsignedLong(s.getTopK()), "sampling.top_k");
        RequestLimits.penalty(s.getPresencePenalty(), "sampling.presence_penalty");
        RequestLimits.penalty(s.getFrequencyPenalty(), "sampling.frequency_penalty");
        return s;
    }

    private static void stops(List<String> stops, GenerateRequest.Builder generate) {
        RequestLimits.stopCount(stops.size(), "stop", "a list");
        for (int i = 0; i < stops.size(); i++) {
            generate.addStop(RequestLimits.stop(stops.get(i), "stop[" + i + "]"));
        }
    }

    private static void clientRequestId(String id) {
        String problem = PrintableIds.problem(id, MAX_CLIENT_REQUEST_ID);
        if (problem != null) {
            throw ApiException.invalid("client_request_id", "'client_request_id' " + problem + ".");
        }
    }
}
