package org.cocoonjvm.billing.accounts;

import java.security.SecureRandom;
import java.util.regex.Pattern;

/**
 * Deposit comments: the text a client puts in a TON transfer's comment so the deposit watcher can
 * tell whose deposit it is. They are random rather than derived from the account id, so a comment
 * seen on chain reveals nothing about the key or account behind it.
 */
public final class DepositComments {
    /** No 0/o, 1/l/i: clients copy these by hand into wallet apps. */
    private static final String ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789";
    /** 31^16 > 2^79: collisions are negligible, and the ledger's unique constraint catches one anyway. */
    private static final int LENGTH = 16;
    private static final Pattern FORMAT = Pattern.compile("cocoon-[" + ALPHABET + "]{" + LENGTH + "}");
    private static final SecureRandom RANDOM = new SecureRandom();

    private DepositComments() {
    }

    public static String random() {
        StringBuilder comment = new StringBuilder("cocoon-");
        for (int i = 0; i < LENGTH; i++) {
            comment.append(ALPHABET.charAt(RANDOM.nextInt(ALPHABET.length())));
        }
        return comment.toString();
    }

    /** True for a string this class could have made; the watcher ignores transfers whose comment is not. */
    public static boolean wellFormed(String comment) {
        return comment != null && FORMAT.matcher(comment).matches();
    }

    static void check(String comment) {
        if (!wellFormed(comment)) {
            throw new IllegalArgumentException("not a deposit comment: " + comment);
        }
    }
}
