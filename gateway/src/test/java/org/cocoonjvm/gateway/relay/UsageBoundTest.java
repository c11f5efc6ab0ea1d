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
}
