package org.cocoonjvm.launcher;

import java.security.SecureRandom;
import java.util.HexFormat;

/** Generated secrets for setups where the operator gave none. */
final class Keys {
    private static final SecureRandom RANDOM = new SecureRandom();

    private Keys() {}

    static String generate(String prefix) {
        byte[] bytes = new byte[24];
        RANDOM.nextBytes(bytes);
        return prefix + HexFormat.of().formatHex(bytes);
    }
}
