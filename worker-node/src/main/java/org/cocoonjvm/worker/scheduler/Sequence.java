package org.cocoonjvm.worker.scheduler;

import java.util.Arrays;
import org.cocoonjvm.protocol.grpc.FinishReason;
import org.cocoonjvm.protocol.grpc.Final;
import org.cocoonjvm.protocol.grpc.GenerateRequest;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.worker.engine.Engine;
import org.cocoonjvm.worker.engine.Slot;
import org.cocoonjvm.worker.engine.Tokenizer;

/**
 * One request's state on the worker. Owned by the engine thread once admitted; the only field
 * other threads touch is {@link #cancelled}.
 */
final class Sequence {
    final long id;
    final GenerateRequest request;
    private final int[] prompt;
    private final int maxContext;
    private final Tokenizer tokenizer;
    private final Tokenizer.Decoder decoder;
    private final StopMatcher stops;
    private final OutputMailbox output;
    /** Who pays for this sequence; engine thread only. */
    final CreditGate.Meter meter;
    /** When it was first skipped for want of payment; -1 while it runs. Engine thread only. */
    long pausedSinceNanos = -1;

    /** Prompt tokens already fed to the engine. */
    private int prefilled;
    private int generated;
    /** Its prompt is metered: from admission, unless it failed before its first token. */
    private boolean promptMetered;
    private int lastToken;
    private FinishReason finish;
    private volatile boolean cancelled;
    /** KV cache blocks reserved for this sequence's longest possible run; set at admission. */
    int kvBlocks;

    Sequence(long id, GenerateRequest request, int[] prompt, Tokenizer tokenizer, int maxContext, OutputMailbox output,
             CreditGate.Meter meter) {
        this.meter = meter;
        this.id = id;
        this.request = request;
        this.prompt = prompt;
        this.maxContext = maxContext;
        this.tokenizer = tokenizer;
        this.decoder = tokenizer.newDecoder();
        this.stops = new StopMatcher(request.getStopList());
        this.output = output;
    }

    /** Joined the running batch: tells the caller the prompt's size before any token. */
    void admitted() {
        promptMetered = true;
        meter.prompt(prompt.length);
        output.accepted(prompt.length);
    }

    void cancel() {
        cancelled = true;
    }

    boolean cancelled() {
        return cancelled;
    }

    boolean finished() {
        return finish != null;
    }

    /** Prompt plus the most tokens it may still generate: what its KV cache could grow to. */
    int worstCaseTokens() {
        int room = maxContext - prompt.length;
        int most = request.getMaxTokens() > 0 ? Math.min(request.getMaxTokens(), room) : room;
        return prompt.length + most;
    }

    /** Past its prompt: feeds one token a step. */
    boolean decoding() {
        return prefilled == prompt.length;
    }

    /** This step's input: the next prefill chunk, or the token sampled last step. */
    Slot nextSlot(int prefillChunk) {
        if (prefilled < prompt.length) {
            int end = Math.min(prompt.length, prefilled + prefillChunk);
            Slot slot = new Slot(id, prefilled, Arrays.copyOfRange(prompt, prefilled, end), end == prompt.length,
                    request.getSampling(), 0);
            prefilled = end;
            return slot;
        }
        return new Slot(id, prompt.length + generated - 1, new int[] {lastToken}, true, request.getSampling(), generated);
    }

    /** Takes the engine's output for this sequence and streams what it adds. */
    void accept(int token) {
        if (token == Engine.NO_TOKEN) {
            return;
        }
        generated++;
        lastToken = token;
        meter.completion(1);
        if (tokenizer.isEndOfSequence(token)) {
            end(FinishReason.FINISH_REASON_STOP, stops.flush(), Engine.NO_TOKEN);
            return;
        }
        String text = stops.push(decoder.next(token));
        if (stops.matched()) {
            end(FinishReason.FINISH_REASON_STOP, text, token);
        } else if (generated == request.getMaxTokens() || prompt.length + generated >= maxContext) {
            end(FinishReason.FINISH_REASON_LENGTH, text + stops.flush(), token);
        } else {
            output.token(token, text);
        }
    }

    /** The caller left: the sequence ends without further output, its usage what was metered. */
    void retire() {
        meter.ended();
        finish = FinishReason.FINISH_REASON_CANCELLED;
        output.finish(fin(finish).build(), meter);
    }

    /**
     * The sequence fails without further output: its engine failed, its gateway did not pay, or
     * ({@code workerStopping}) the worker's stop ran out of grace.
     */
    void fail(String error, boolean workerStopping) {
        if (generated == 0 && promptMetered) {
            // A failure before any output is the worker's (its engine, its shutdown) or an unpaying
            // gateway's: the client gets an error and nothing else, and nobody pays for the prompt.
            meter.prompt(0);
            promptMetered = false;
        }
        meter.ended();
        finish = FinishReason.FINISH_REASON_ERROR;
        output.finish(fin(finish).setError(error).setWorkerStopping(workerStopping).build(), meter);
    }

    /** @param token the token that carries {@code lastText}, or NO_TOKEN for text held back earlier */
    private void end(FinishReason reason, String lastText, int token) {
        if (!lastText.isEmpty() || token != Engine.NO_TOKEN) {
            output.token(token, lastText);
        }
        meter.ended();
        finish = reason;
        output.finish(fin(reason).build(), meter);
    }

    /** Its usage is what the meter was told: a sequence that ended while it waited used nothing. */
    private Final.Builder fin(FinishReason reason) {
        return Final.newBuilder().setFinishReason(reason)
                .setUsage(Usage.newBuilder().setPromptTokens(promptMetered ? prompt.length : 0).setCompletionTokens(generated));
    }
}
