package org.cocoonjvm.launcher;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;
import org.cocoonjvm.billing.accounts.AccountBook;
import org.cocoonjvm.billing.accounts.UnknownAccountException;
import org.cocoonjvm.gateway.api.ApiKey;
import org.cocoonjvm.gateway.limits.KeyLimits;
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

    /**
     * The keys by digest, as {@code GatewayOptions} holds them; the same key given twice is one key.
     * Each line is a key, optionally followed by the account it spends: a rotated key names its
     * predecessor's account ({@code account-<16 hex digits>}, its access-log key id with
     * {@code account-} for {@code key-}), so a replaced key does not strand its balance and deposit
     * comment in an account no key reaches (audit L, 5); both keys may spend it while clients move over.
     */
    static Map<String, ApiKey> byDigest(List<String> lines, KeyLimits limits) {
        Map<String, ApiKey> byDigest = new HashMap<>();
        Map<String, String> digestByName = new HashMap<>();
        for (String line : lines) {
            String[] fields = line.strip().split("\\s+");
            if (fields.length > 2) {
                throw new Cocoon.UsageException("an API key line holds a key and, optionally, its account; this one has "
                        + fields.length + " fields");
            }
            String digest = BearerKeys.hash(fields[0]);
            String name = digest.substring(0, NAME_HEX_DIGITS);
            String other = digestByName.putIfAbsent(name, digest);
            if (other != null && !other.equals(digest)) {
                throw new Cocoon.UsageException("two API keys share the digest prefix " + name + "; replace one of them");
            }
            String account = fields.length == 2 ? fields[1] : "account-" + name;
            if (!ACCOUNT.matcher(account).matches()) {
                throw new Cocoon.UsageException("the account of key key-" + name + " must be 1 to 64 letters, digits, '.',"
                        + " '_' or '-', e.g. account-" + name);
            }
            ApiKey previous = byDigest.put(digest, new ApiKey("key-" + name, account, limits));
            if (previous != null && !previous.accountId().equals(account)) {
                throw new Cocoon.UsageException("key key-" + name + " is given twice, with accounts " + previous.accountId()
                        + " and " + account);
            }
        }
        return byDigest;
    }
}
