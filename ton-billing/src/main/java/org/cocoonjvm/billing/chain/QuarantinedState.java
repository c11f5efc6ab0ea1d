package org.cocoonjvm.billing.chain;

import java.math.BigInteger;
import java.time.Instant;
import org.ton.ton4j.cell.Cell;
import org.ton.ton4j.cell.CellSlice;

/**
 * The states an uncooperative close submitted, as the contract holds them until it is finished:
 * what each party's semi-channel said then, when the quarantine began and who began it. The payee
 * reads it to see whether a close it did not start pays it less than the payer last signed.
 *
 * @param startedAt    when the quarantine began, on the chain's clock; a challenge does not move it
 * @param submittedByA the payer submitted the states held now: only B may answer them. A
 *                     challenge by B makes it false
 * @param challenged   answered once already: the contract takes no second answer
 */
public record QuarantinedState(
        long seqnoA, BigInteger sentA, long seqnoB, BigInteger sentB, Instant startedAt,
        boolean submittedByA, boolean challenged) {

    /**
     * Parses the contract's cell: A's body, B's body (each seqno:uint64, sent:Coins and the
     * conditionals' HashmapE), then quarantine_starts:uint32, committed_by_A and challenged, one
     * bit each; the last bit is in the contract's code, not in its published scheme.
     * ChannelLifecycleTest reads it before and after a challenge on the real contract.
     */
    static QuarantinedState parse(Cell cell) {
        CellSlice s = CellSlice.beginParse(cell);
        long seqnoA = s.loadUint(64).longValueExact();
        BigInteger sentA = s.loadCoins();
        s.loadMaybeRefX();
        long seqnoB = s.loadUint(64).longValueExact();
        BigInteger sentB = s.loadCoins();
        s.loadMaybeRefX();
        Instant startedAt = Instant.ofEpochSecond(s.loadUint(32).longValueExact());
        return new QuarantinedState(seqnoA, sentA, seqnoB, sentB, startedAt, s.loadBit(), s.loadBit());
    }
}
