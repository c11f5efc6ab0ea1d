package org.cocoonjvm.worker.engine;

import org.cocoonjvm.protocol.grpc.SamplingParams;

/**
 * One sequence's share of an engine step.
 *
 * @param sequenceId stable for the sequence's whole life; keys its KV cache
 * @param position   how many of its tokens the KV cache already holds
 * @param input      the tokens to feed now: a prefill chunk, or the one token sampled last step
 * @param sample     sample a next token after this input (false for a non-final prefill chunk)
 * @param sampling   the request's sampling parameters
 * @param generated  how many tokens the sequence has sampled so far (seeds per-step randomness)
 */
public record Slot(long sequenceId, int position, int[] input, boolean sample, SamplingParams sampling, int generated) {}
