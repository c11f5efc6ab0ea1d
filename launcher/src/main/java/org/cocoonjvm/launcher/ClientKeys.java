package org.cocoonjvm.launcher;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.UnknownAccountException;
import org.cocoonjvm.gateway.api.ApiKey;
import org.cocoonjvm.gateway.limits.KeyLimits;
import org.cocoonjvm.protocol.openai.ApiException;
import org.cocoonjvm.protocol.openai.BearerKeys;

/**
 * A gateway's client keys, each named after its own SHA-256 digest: its account (and the key id
 * in the logs) follows the key wherever it appears among the keys, so revoking or reordering keys
 * never hands one client's money to another.
 */
final class ClientKeys {
    /**
     * Digest hex digits in a key's name: 64 bits, so a few thousand keys collide with a chance
     * around 10⁻¹², and a name reveals no more of the key than its digest does.
     */
    private static final int NAME_HEX_DIGITS = 16;

    private ClientKeys() {}

    /**
     * Accounts named by position ({@code account-1}, {@code account-2}, …), as gateways opened them
     * for their {@code --api-key}s before accounts were named by digest: no key reaches them now.
     * They were opened together, so they are numbered without gaps. Returns a warning naming them
     * and what they hold, if the ledger has any.
     */
    static Optional<String> positionalAccounts(AccountBook book) {
        long balance = 0;
        int count = 0;
        while (true) {
            try {
                balance += book.balance("account-" + (count + 1)).balanceNanoton();
            } catch (UnknownAccountException e) {
                break;
            }
            count++;
        }
        return count == 0 ? Optional.empty() : Optional.of("ledger: account-1 to account-" + count + " (" + balance + " nanoTON in all) "
                + "were named by their key's position on the command line; no key reaches them now "
                + "(gateway/README.md, \"Accounts\")");
    }

    /** An account a key line names: the launcher's own names ({@code account-<hex>}) and other plain ids. */
    private static final Pattern ACCOUNT = Pattern.compile("[A-Za-z0-9._-]{1,64}");
    /** A key given by its digest, so the file holds no key a reader could spend. */
    static final String DIGEST_PREFIX = "sha256:";
    private static final Pattern DIGEST = Pattern.compile("[0-9a-f]{64}");

    /**
     * The keys by digest, as {@code GatewayOptions} holds them; the same key given twice is one key.
     * A line is {@code KEY [ACCOUNT] [rpm=N] [tpm=N] [max-concurrent=N]}:
     * <ul>
     *   <li>{@code KEY}: the key, or {@code sha256:<its hex digest>} ({@code cocoon key new} writes
     *       that), so the file the gateway reads need not hold a key that anyone could spend;
     *   <li>{@code ACCOUNT}: the account it spends; a rotated key names its predecessor's
     *       ({@code account-<16 hex digits>}, its access-log key id with {@code account-} for
     *       {@code key-}), so a replaced key does not strand its balance and deposit comment in an
     *       account no key reaches (audit L, 5); both keys may spend it while clients move over;
     *   <li>limits: this key's own, in place of the gateway's {@code --rpm}, {@code --tpm},
     *       {@code --max-concurrent} ({@code 0}: unlimited), so a backend's key may send more than a
     *       chat frontend's.
     * </ul>
     */
    static Map<String, ApiKey> byDigest(List<String> lines, KeyLimits limits) {
        Map<String, ApiKey> byDigest = new HashMap<>();
        Map<String, String> digestByName = new HashMap<>();
        for (String line : lines) {
            String[] fields = line.strip().split("\\s+");
            String digest = digest(fields[0]);
            String name = digest.substring(0, NAME_HEX_DIGITS);
            String other = digestByName.putIfAbsent(name, digest);
            if (other != null && !other.equals(digest)) {
                throw new Cocoon.UsageException("two API keys share the digest prefix " + name + "; replace one of them");
            }
            ApiKey key = key("key-" + name, Arrays.asList(fields).subList(1, fields.length), limits);
            ApiKey previous = byDigest.put(digest, key);
            if (previous != null && !previous.equals(key)) {
                throw new Cocoon.UsageException("key " + key.id() + " is given twice, differently: " + described(previous)
                        + ", and " + described(key));
            }
        }
        return byDigest;
    }

    private static String digest(String keyField) {
        if (!keyField.startsWith(DIGEST_PREFIX)) {
            return BearerKeys.hash(keyField);
        }
        String digest = keyField.substring(DIGEST_PREFIX.length());
        if (!DIGEST.matcher(digest).matches()) {
            throw new Cocoon.UsageException("an API key given as " + DIGEST_PREFIX + "<digest> needs the key's SHA-256 as"
                    + " 64 lowercase hex digits; this one has " + ApiException.shown(digest));
        }
        return digest;
    }

    /** The key named {@code id}, from the fields after it on its line. */
    private static ApiKey key(String id, List<String> fields, KeyLimits defaults) {
        String account = null;
        long rpm = defaults.requestsPerMinute();
        long tpm = defaults.tokensPerMinute();
        long concurrent = defaults.maxConcurrent();
        for (String field : fields) {
            int equals = field.indexOf('=');
            if (equals < 0) {
                if (account != null) {
                    throw new Cocoon.UsageException("the line of key " + id + " names two accounts, " + account + " and "
                            + ApiException.shown(field) + "; a line is KEY [ACCOUNT] [rpm=N] [tpm=N] [max-concurrent=N]");
                }
                if (!ACCOUNT.matcher(field).matches()) {
                    throw new Cocoon.UsageException("the account of key " + id + " must be 1 to 64 letters, digits, '.',"
                            + " '_' or '-', e.g. account-" + id.substring("key-".length()));
                }
                account = field;
                continue;
            }
            String limit = field.substring(0, equals);
            long value = limit(id, limit, field.substring(equals + 1));
            switch (limit) {
                case "rpm" -> rpm = value;
                case "tpm" -> tpm = value;
                case "max-concurrent" -> concurrent = value;
                default -> throw new Cocoon.UsageException("the line of key " + id + " sets " + ApiException.shown(limit)
                        + ", which is no limit; a key's limits are rpm, tpm and max-concurrent");
            }
        }
        if (concurrent > Integer.MAX_VALUE) {
            throw new Cocoon.UsageException("the line of key " + id + ": max-concurrent must be at most " + Integer.MAX_VALUE);
        }
        return new ApiKey(id, account != null ? account : "account-" + id.substring("key-".length()),
                new KeyLimits(rpm, tpm, (int) concurrent));
    }

    private static long limit(String id, String name, String value) {
        try {
            long parsed = Long.parseLong(value);
            if (parsed >= 0) {
                return parsed;
            }
        } catch (NumberFormatException e) {
            // the message below says what a limit must be
        }
        throw new Cocoon.UsageException("the line of key " + id + ": " + name + " must be a whole number, 0 or more"
                + " (0: unlimited), got " + ApiException.shown(value));
    }

    private static String described(ApiKey key) {
        KeyLimits l = key.limits();
        return "account " + key.accountId() + " rpm=" + l.requestsPerMinute() + " tpm=" + l.tokensPerMinute()
                + " max-concurrent=" + l.maxConcurrent();
    }
}
