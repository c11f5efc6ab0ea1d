package org.cocoonjvm.billing.channel;

/**
 * One party's {@code SemiChannelBody}: its sequence number and the cumulative amount it has sent
 * over the channel. Conditional payments are not used (the dictionary is always empty).
 *
 * @param seqno       raised by one with every new state; kept below {@link #SEQNO_LIMIT}
 * @param sentNanoton cumulative, never decreasing
 */
public record SemiChannelBody(long seqno, long sentNanoton) {
    /**
     * Seqnos stay below this. The contract stores committed seqnos as uint32 and commits
     * {@code seqno + 1} when a close finishes, so the largest usable seqno is {@code 2^32 - 2}.
     */
    public static final long SEQNO_LIMIT = (1L << 32) - 1;

    public static final SemiChannelBody INITIAL = new SemiChannelBody(0, 0);

    public SemiChannelBody {
        if (seqno < 0 || seqno >= SEQNO_LIMIT) {
            throw new IllegalArgumentException("seqno must be in [0, " + SEQNO_LIMIT + "), got " + seqno);
        }
        if (sentNanoton < 0) {
            throw new IllegalArgumentException("sent must be >= 0 nanoTON, got " + sentNanoton);
        }
    }
}
