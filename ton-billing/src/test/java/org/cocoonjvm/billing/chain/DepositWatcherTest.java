package org.cocoonjvm.billing.chain;

import static org.assertj.core.api.Assertions.assertThat;
import static org.cocoonjvm.billing.chain.TestChain.ton;

import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.InMemoryAccountBook;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Client deposits into the gateway wallet on the emulator, credited through a real AccountBook. */
class DepositWatcherTest {
    private static LocalChain chain;
    private static ChainWallet client;

    @BeforeAll
    static void startChain() {
        chain = TestChain.startOrSkip();
        client = TestChain.wallet(chain, ton("100"));
    }

    @AfterAll
    static void stopChain() {
        if (chain != null) chain.close();
    }

    /**
     * The ledger wiring: deposit comment → account, the transaction hash as the credit reference.
     */
    private static DepositSink sinkInto(
            AccountBook book, Map<String, String> accountByComment, List<String> calls) {
        return (comment, amount, txHash) -> {
            calls.add(txHash);
            String account = accountByComment.get(comment);
            if (account == null) return DepositSink.Outcome.UNKNOWN_COMMENT;
            return book.credit(account, amount, txHash)
                    ? DepositSink.Outcome.CREDITED
                    : DepositSink.Outcome.ALREADY_CREDITED;
        };
    }

    /** A watcher on the emulator for deposits into {@code gateway}, from the chain's start. */
    private static DepositWatcher watcher(
            ChainWallet gateway, DepositSink sink, Duration confirmation, int pageSize) {
        return new DepositWatcher(
                chain.client(),
                sink,
                chain.clock(),
                new DepositWatcher.Options(gateway.address(), confirmation, pageSize, 0));
    }

    @Test
    void aCommentedTransferIsCreditedOnceAndRescansCreditNothing() {
        ChainWallet gateway = TestChain.wallet(chain, ton("1"));
        AccountBook book = new InMemoryAccountBook(Clock.systemUTC());
        book.open("acct-42");
        List<String> calls = new ArrayList<>();
        DepositSink sink = sinkInto(book, Map.of("cocoon:acct-42", "acct-42"), calls);
        DepositWatcher watcher = watcher(gateway, sink, Duration.ZERO, 10);

        client.transfer(gateway.address(), ton("2.5"), "cocoon:acct-42");
        client.transfer(gateway.address(), ton("0.3"), "nobody");

        DepositWatcher.PollResult first = watcher.poll();
        assertThat(first.credited())
                .singleElement()
                .satisfies(
                        d -> {
                            assertThat(d.comment()).isEqualTo("cocoon:acct-42");
                            // The sender's wallet paid the forwarding fee separately: the full
                            // amount arrived.
                            assertThat(d.amountNanoton()).isEqualTo(2_500_000_000L);
                        });
        assertThat(first.unknownComment())
                .singleElement()
                .satisfies(d -> assertThat(d.amountNanoton()).isEqualTo(300_000_000L));
        assertThat(book.balance("acct-42").availableNanoton()).isEqualTo(2_500_000_000L);

        assertThat(watcher.poll())
                .isEqualTo(new DepositWatcher.PollResult(List.of(), List.of(), 0));
        assertThat(calls).hasSize(2);

        // A restarted watcher rescans from the start; the ledger refuses the second credit.
        DepositWatcher restarted = watcher(gateway, sink, Duration.ZERO, 10);
        assertThat(restarted.poll().credited()).isEmpty();
        assertThat(book.balance("acct-42").availableNanoton()).isEqualTo(2_500_000_000L);
        assertThat(restarted.handledUpToLt()).isEqualTo(watcher.handledUpToLt());
    }

    @Test
    void depositsWaitForConfirmationAndAreCreditedInOrderAcrossPages() {
        ChainWallet gateway = TestChain.wallet(chain, ton("1"));
        AccountBook book = new InMemoryAccountBook(Clock.systemUTC());
        book.open("acct-7");
        DepositSink sink = sinkInto(book, Map.of("pay-7", "acct-7"), new ArrayList<>());
        DepositWatcher watcher = watcher(gateway, sink, Duration.ofMinutes(5), 2);
        for (int i = 1; i <= 5; i++)
            client.transfer(
                    gateway.address(), ton("1").multiply(java.math.BigInteger.valueOf(i)), "pay-7");

        DepositWatcher.PollResult early = watcher.poll();
        assertThat(early.credited()).isEmpty();
        assertThat(early.awaitingConfirmation()).isGreaterThanOrEqualTo(5);

        chain.advanceTime(Duration.ofMinutes(5).plusSeconds(1));
        DepositWatcher.PollResult confirmed = watcher.poll();
        assertThat(confirmed.credited())
                .extracting(DepositWatcher.Deposit::amountNanoton)
                .containsExactly(
                        1_000_000_000L,
                        2_000_000_000L,
                        3_000_000_000L,
                        4_000_000_000L,
                        5_000_000_000L);
        assertThat(book.balance("acct-7").availableNanoton()).isEqualTo(15_000_000_000L);
    }
}
