package org.cocoonjvm.worker.payments;

import org.cocoonjvm.protocol.grpc.WorkerLoad;

/**
 * Tokens a worker served.
 *
 * @param completion tokens it generated
 * @param prompt     prompt tokens it fed to its model
 */
public record TokenCounts(long completion, long prompt) {
    public static final TokenCounts NONE = new TokenCounts(0, 0);

    /** What a run counted since its start. */
    static TokenCounts of(WorkerLoad run) {
        return new TokenCounts(run.getTokensGenerated(), run.getPromptTokens());
    }

    TokenCounts plus(TokenCounts more) {
        return new TokenCounts(completion + more.completion, prompt + more.prompt);
    }
}
