package org.cocoonjvm.gateway.relay;

import static org.assertj.core.api.Assertions.assertThat;

import org.cocoonjvm.protocol.grpc.Delta;
import org.cocoonjvm.protocol.grpc.Usage;
import org.cocoonjvm.protocol.openai.CompletionSink;
import org.junit.jupiter.api.Test;

class UsageBoundTest {
    private final UsageBound bound = UsageBound.of(100, 1, true, 16);

    @Test
    void anHonestReport_isTakenAsItIs() {
        Usage honest = Usage.newBuilder().setPromptTokens(30).setCachedTokens(10).setCompletionTokens(11).setReasoningTokens(3).build();

        assertThat(bound.trusted(honest, 11)).isSameAs(honest);
    }

    /** Counts are uint32: one past 2^31 read as an int was negative, and passed every bound (review Y, Y-1). */
    @Test
    void countsPast2pow31_areBoundedAsTheLargeNumbersTheyAre() {
        Usage claimed = Usage.newBuilder().setPromptTokens(-2).setCachedTokens(-1).setCompletionTokens(-2).setReasoningTokens(-1).build();

        Usage trusted = bound.trusted(claimed, 11);

        assertThat(trusted.getPromptTokens()).isEqualTo(100 + 64 + 8);
        assertThat(trusted.getCachedTokens()).isEqualTo(trusted.getPromptTokens());
        assertThat(trusted.getCompletionTokens()).isEqualTo(11);
        assertThat(trusted.getReasoningTokens()).isEqualTo(11);
        assertThat(CompletionSink.tokens(Delta.newBuilder().addTokenIds(7).setTokensWithoutIds(0xFFFFFFFE).build()))
                .as("a delta's count, as the relay bounds it").isEqualTo(4_294_967_295L);
    }

    @Test
    void theCompletion_isNoMoreThanWasRelayed_norThanMaxTokens() {
        Usage claimed = Usage.newBuilder().setPromptTokens(30).setCompletionTokens(1000).build();

        assertThat(bound.trusted(claimed, 11).getCompletionTokens()).isEqualTo(11);
        assertThat(bound.trusted(claimed, 40).getCompletionTokens()).isEqualTo(16);
    }

    /** A forwarding worker's upstream may render a long default system prompt the gateway was not told of (review Y, Y-2). */
    @Test
    void aChatWhoseTemplateNoWorkerAnnounced_mayCountFarMoreThanItsBytes() {
        Usage forwarded = Usage.newBuilder().setPromptTokens(600).setCompletionTokens(5).build();

        assertThat(UsageBound.of(24, 1, false, 16).trusted(forwarded, 5)).isSameAs(forwarded);
        assertThat(UsageBound.of(24, 1, true, 16).trusted(forwarded, 5).getPromptTokens()).isEqualTo(24 + 64 + 8);
    }

    /**
     * Review Y, Y-4: a worker that registered after admission (a retry may pick it) with a larger
     * context, on a request without max_tokens, is held to its own context as far as the hold's
     * amount covers it, never further, and never to less than the hold's own bound.
     */
    @Test
    void aWorkerAnnouncingALargerContext_isBoundByIt_withinWhatTheHoldCovers() {
        UsageBound.Hold hold = new UsageBound.Hold(100, 20, 1, 4096, false);
        UsageBound held = hold.bound();

        assertThat(hold.boundFor(8192, 20, (p, c) -> true)).isEqualTo(new UsageBound(held.promptTokens(), 8192));
        assertThat(hold.boundFor(8192, 20, (p, c) -> p + c <= 6000)).isEqualTo(new UsageBound(held.promptTokens(),
                6000 - held.promptTokens()));
        assertThat(hold.boundFor(8192, 20, (p, c) -> false)).as("covered by nothing: the hold's own").isEqualTo(held);
        assertThat(hold.boundFor(2048, 20, (p, c) -> true)).as("a smaller context: the hold's own").isEqualTo(held);
        assertThat(new UsageBound.Hold(100, 20, 1, 16, true).boundFor(8192, 20, (p, c) -> true).completionTokens())
                .as("max_tokens is the request's own limit").isEqualTo(16);
    }

    /** A worker whose chat template writes more than the ones at admission announced: its prompt bound counts it, if the hold covers it. */
    @Test
    void aWorkerAnnouncingALargerTemplate_isBoundByIt_withinWhatTheHoldCovers() {
        UsageBound.Hold hold = new UsageBound.Hold(100, 20, 2, 16, true);

        assertThat(hold.boundFor(4096, 500, (p, c) -> true).promptTokens()).isEqualTo(100 + 500 + 64 + 8 * 2);
        assertThat(hold.boundFor(4096, 500, (p, c) -> p < 600)).isEqualTo(hold.bound());
        assertThat(new UsageBound.Hold(100, 0, 2, 16, true).boundFor(4096, 20, (p, c) -> true))
                .as("no template announced at admission: its slack already covers 20").isEqualTo(new UsageBound.Hold(100, 0, 2, 16, true).bound());
    }
}
