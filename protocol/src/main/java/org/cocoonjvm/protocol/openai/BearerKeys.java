package org.cocoonjvm.protocol.openai;

import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpServerRequest;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * API keys are kept only as SHA-256 hex digests, so a leaked config or heap dump holds no usable
 * key; lookups compare digests.
 */
public final class BearerKeys {
    private BearerKeys() {}

    public static String hash(String key) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError("SHA-256 is required of every JVM", e);
        }
    }

    /**
     * The digest of the request's {@code Authorization: Bearer} key, or null when there is none,
     * or more than one {@code Authorization} header: which of them counts is anyone's guess, and a
     * proxy in front may have checked the other (audit T, T-7).
     */
    public static String hashOf(HttpServerRequest request) {
        return hashOf(request.headers());
    }

    /** The same, of HTTP headers or gRPC metadata. */
    public static String hashOf(MultiMap headers) {
        List<String> given = headers.getAll("Authorization");
        return given.size() == 1 ? hashOf(given.getFirst()) : null;
    }

    /**
     * The digest of the key in an {@code Authorization} value ({@code Bearer <key>}, as an HTTP
     * header or gRPC metadata), or null when there is none.
     */
    public static String hashOf(String authorization) {
        if (authorization == null || authorization.length() <= 7 || !authorization.regionMatches(true, 0, "Bearer ", 0, 7)) {
            return null;
        }
        return hash(authorization.substring(7).trim());
    }

    /**
     * The request carries the one key whose digest is {@code keyHash}: compared in constant time,
     * so that how long a refusal takes says nothing of how near a guess came.
     */
    public static boolean carries(HttpServerRequest request, String keyHash) {
        String given = hashOf(request);
        return given != null && MessageDigest.isEqual(keyHash.getBytes(StandardCharsets.US_ASCII),
                given.getBytes(StandardCharsets.US_ASCII));
    }

    public static ApiException missingOrInvalid() {
        return new ApiException(ErrorKind.AUTHENTICATION, "Missing or invalid API key; send 'Authorization: Bearer <key>'.");
    }

    /** For gRPC calls, where the key travels as metadata. */
    public static ApiException missingOrInvalidMetadata() {
        return new ApiException(ErrorKind.AUTHENTICATION,
                "Missing or invalid API key; send the metadata 'authorization: Bearer <key>'.");
    }
}
