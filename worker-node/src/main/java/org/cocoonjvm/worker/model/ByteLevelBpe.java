package org.cocoonjvm.worker.model;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Byte-level BPE as GPT-2 introduced it and Llama 3 and Qwen use it: text is split by a regex,
 * each piece's UTF-8 bytes are written as printable characters (GPT-2's byte-to-unicode table),
 * and merges join adjacent symbols by rank. Also a small deterministic merge learner, which is
 * how {@link RandomModel} makes its tokenizers.
 */
public final class ByteLevelBpe {
    /** GPT-2's pre-tokenizer regex (the one HF's ByteLevel pre-tokenizer applies with use_regex). */
    public static final String GPT2_PATTERN =
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
    /** Qwen2 / Qwen2.5 / Qwen3 (llama.cpp pre-tokenizer "qwen2"). */
    public static final String QWEN2_PATTERN =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    /** Llama 3 (llama.cpp pre-tokenizer "llama-bpe"). */
    public static final String LLAMA3_PATTERN =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    private static final char[] BYTE_TO_CHAR = new char[256];
    private static final int[] CHAR_TO_BYTE = new int[512];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, -1);
        int n = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) (256 + n++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    /** The merges learnt and the vocabulary they imply: ids 0..255 are the bytes 0..255, merges follow. */
    public record Learned(List<String> tokens, List<String> merges) {
    }

    private ByteLevelBpe() {
    }

    /** Raw bytes written as GPT-2's printable characters (one char per byte). */
    public static String toUnicode(byte[] bytes) {
        StringBuilder sb = new StringBuilder(bytes.length);
        for (byte b : bytes) {
            sb.append(BYTE_TO_CHAR[b & 0xff]);
        }
        return sb.toString();
    }

    /** The bytes a byte-level token stands for; null if it has a character outside the table. */
    public static byte[] fromUnicode(String token) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(token.length());
        for (int i = 0; i < token.length(); i++) {
            char c = token.charAt(i);
            int b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
            if (b < 0) {
                return null;
            }
            out.write(b);
        }
        return out.toByteArray();
    }

    /**
     * Learns up to {@code maxMerges} merges from {@code corpus}: each round merges the most frequent
     * adjacent pair (ties: the smaller pair, comparing left then right symbol), stopping early when
     * no pair occurs twice. Deterministic for a given corpus and count.
     */
    public static Learned learn(String corpus, String pattern, int maxMerges) {
        Map<String, Integer> wordCounts = new TreeMap<>();
        Matcher m = Pattern.compile(pattern, Pattern.UNICODE_CHARACTER_CLASS).matcher(corpus); // \s as Unicode White_Space, like Rust's regex
        while (m.find()) {
            wordCounts.merge(toUnicode(m.group().getBytes(StandardCharsets.UTF_8)), 1, Integer::sum);
        }
        List<List<String>> words = new ArrayList<>();
        List<Integer> counts = new ArrayList<>();
        wordCounts.forEach((w, c) -> {
            List<String> symbols = new ArrayList<>();
            w.codePoints().forEach(cp -> symbols.add(Character.toString(cp)));
            words.add(symbols);
            counts.add(c);
        });
        List<String> tokens = new ArrayList<>();
        Map<String, Integer> ids = new HashMap<>();
        for (int b = 0; b < 256; b++) {
            String t = String.valueOf(BYTE_TO_CHAR[b]);
            ids.put(t, tokens.size());
            tokens.add(t);
        }
        List<String> merges = new ArrayList<>();
        while (merges.size() < maxMerges) {
            Map<String, int[]> pairCounts = new LinkedHashMap<>();
            for (int w = 0; w < words.size(); w++) {
                List<String> s = words.get(w);
                for (int i = 0; i + 1 < s.size(); i++) {
                    pairCounts.computeIfAbsent(s.get(i) + " " + s.get(i + 1), k -> new int[1])[0] += counts.get(w);
                }
            }
            String best = null;
            int bestCount = 1;
            for (Map.Entry<String, int[]> e : pairCounts.entrySet()) {
                int c = e.getValue()[0];
                if (c > bestCount || (c == bestCount && best != null && comparePairs(e.getKey(), best) < 0)) {
                    best = e.getKey();
                    bestCount = c;
                }
            }
            if (best == null) {
                break;
            }
            merges.add(best);
            int sp = best.indexOf(' ');
            String a = best.substring(0, sp);
            String b = best.substring(sp + 1);
            String joined = a + b;
            if (ids.putIfAbsent(joined, tokens.size()) == null) {
                tokens.add(joined);
            }
            for (List<String> s : words) {
                for (int i = 0; i + 1 < s.size(); i++) {
                    if (s.get(i).equals(a) && s.get(i + 1).equals(b)) {
                        s.set(i, joined);
                        s.remove(i + 1);
                    }
                }
            }
        }
        return new Learned(List.copyOf(tokens), List.copyOf(merges));
    }

    private static int comparePairs(String p, String q) {
        int sp = p.indexOf(' ');
        int sq = q.indexOf(' ');
        int c = p.substring(0, sp).compareTo(q.substring(0, sq));
        return c != 0 ? c : p.substring(sp + 1).compareTo(q.substring(sq + 1));
    }
}
