package org.cocoonjvm.worker.model;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.cocoonjvm.protocol.grpc.ChatMessage;
import org.cocoonjvm.worker.engine.NoChatTemplate;
import org.cocoonjvm.worker.engine.Tokenizer;

/**
 * A Hugging Face {@code tokenizer.json} run by the {@code tokenizers} library (through DJL's JNI
 * binding, whose jar carries the native library), plus the model's chat template.
 *
 * <ul>
 *   <li>{@link #encode} applies the tokenizer's own post-processor (e.g. Llama 3's BOS);
 *       {@link #encodeChat} renders the template, which writes every special token itself, and
 *       encodes without adding any. Added and special tokens are matched before the pre-tokenizer
 *       runs, so they are never split.</li>
 *   <li>Decoding: for byte-level BPE (GPT-2, Llama 3, Qwen) every token's bytes are known, and
 *       {@link #newDecoder()} emits only complete UTF-8 characters, holding back a character split
 *       across tokens. Other tokenizers fall back to decoding a short window of recent tokens and
 *       emitting what it added (holding back text that ends in U+FFFD).</li>
 *   <li>{@link #newDecoder()} skips special tokens (as OpenAI-style servers do);
 *       {@link #decode(int[], boolean)} can keep them.</li>
 * </ul>
 */
public final class HfTokenizer implements Tokenizer, AutoCloseable {
    /** Special tokens that end a turn in the common chat formats. */
    static final List<String> END_MARKERS = List.of("<|im_end|>", "<|endoftext|>");
    /** Stand-ins for message contents in a render (private-use characters: no role or template has them). */
    private static final String CONTENT_MARK = "\uE000";
    private static final String CONTENT_MARK_END = "\uE001";
    private static final Pattern CONTENT_MARKS = Pattern.compile(CONTENT_MARK + "(\\d+)" + CONTENT_MARK_END);

    static {
        // DJL otherwise "calls home" (EC2 instance metadata and a telemetry URL) when a tokenizer is
        // created, and may try to download a CUDA build of the native library. The worker runs
        // offline with the CPU library from the jar; explicit environment variables still win.
        setIfAbsent("ai.djl.offline", "DJL_OFFLINE", "true");
        setIfAbsent("OPT_OUT_TRACKING", "OPT_OUT_TRACKING", "true");
        setIfAbsent("RUST_FLAVOR", "RUST_FLAVOR", "cpu");
    }

    private static void setIfAbsent(String property, String env, String value) {
        if (System.getenv(env) == null && System.getProperty(property) == null) {
            System.setProperty(property, value);
        }
    }

    private final HuggingFaceTokenizer tokenizer;
    private final ChatTemplate chatTemplate;
    private final Set<Integer> eos;
    private final byte[][] tokenBytes; // null when the decoder is not byte-level
    private final boolean[] special;
    private final Map<String, Integer> specialIds = new java.util.HashMap<>();
    /** The special tokens' texts by their first character. */
    private final Map<Character, List<String>> specialByFirstChar = new java.util.HashMap<>();

    /**
     * @param tokenizerJson the tokenizer.json text
     * @param chatTemplate  Jinja template, or null when the model has none
     * @param eosIds        ids that end a sequence (the model config's)
     */
    public HfTokenizer(String tokenizerJson, String chatTemplate, String bosToken, String eosToken,
                       Collection<Integer> eosIds) {
        JsonObject json = new JsonObject(tokenizerJson);
        JsonObject model = json.getJsonObject("model", new JsonObject());
        JsonObject vocab = model.getValue("vocab") instanceof JsonObject v ? v : new JsonObject();
        JsonArray added = json.getJsonArray("added_tokens", new JsonArray());
        int size = 0;
        for (Map.Entry<String, Object> e : vocab) {
            size = Math.max(size, ((Number) e.getValue()).intValue() + 1);
        }
        for (Object o : added) {
            size = Math.max(size, ((JsonObject) o).getInteger("id") + 1);
        }
        special = new boolean[size];
        JsonObject decoder = json.getValue("decoder") instanceof JsonObject d ? d : new JsonObject();
        boolean byteLevel = "BPE".equals(model.getString("type")) && "ByteLevel".equals(decoder.getString("type"));
        Set<Integer> addedIds = new java.util.HashSet<>();
        for (Object o : added) {
            addedIds.add(((JsonObject) o).getInteger("id"));
        }
        byte[][] bytes = byteLevel ? new byte[size][] : null;
        if (byteLevel) {
            for (Map.Entry<String, Object> e : vocab) {
                int id = ((Number) e.getValue()).intValue();
                bytes[id] = ByteLevelBpe.fromUnicode(e.getKey());
                if (bytes[id] == null && !addedIds.contains(id)) {
                    bytes = null; // not byte-level after all: decode through the library instead
                    break;
                }
            }
        }
        for (Object o : added) {
            JsonObject t = (JsonObject) o;
            int id = t.getInteger("id");
            if (bytes != null) {
                bytes[id] = t.getString("content").getBytes(StandardCharsets.UTF_8);
            }
            if (t.getBoolean("special", false)) {
                String content = t.getString("content");
                special[id] = true;
                specialIds.put(content, id);
                if (!content.isEmpty()) {
                    specialByFirstChar.computeIfAbsent(content.charAt(0), c -> new ArrayList<>()).add(content);
                }
            }
        }
        this.tokenBytes = bytes;
        try {
            this.tokenizer = HuggingFaceTokenizer.newInstance(
                    new ByteArrayInputStream(tokenizerJson.getBytes(StandardCharsets.UTF_8)),
                    Map.of("addSpecialTokens", "true", "truncation", "false", "padding", "false"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (RuntimeException e) {
            throw new ModelFormatException("cannot load tokenizer.json: " + e.getMessage(), e);
        }
        this.chatTemplate = chatTemplate == null || chatTemplate.isBlank() ? null
                : new ChatTemplate(chatTemplate, bosToken, eosToken);
        Set<Integer> ends = new LinkedHashSet<>(eosIds);
        for (String marker : END_MARKERS) {
            Integer id = specialIds.get(marker);
            if (id != null) {
                ends.add(id);
            }
        }
        this.eos = Set.copyOf(ends);
    }

    /** One past the largest id of its vocabulary and added tokens. */
    public int idLimit() {
        return special.length;
    }

    /** The chat template, or null. */
    public ChatTemplate chatTemplate() {
        return chatTemplate;
    }

    /** The id of a special (control) token, or -1. */
    public int specialTokenId(String content) {
        return specialIds.getOrDefault(content, -1);
    }

    /**
     * The rendered chat, with the control tokens the template writes, and none from what the
     * messages say: a message whose content spells a special token ({@code <|im_end|>}) gets that
     * text's ordinary tokens, so user text cannot close its turn and open a system one. (As
     * OpenAI's API does; vLLM and llama.cpp parse them by default.)
     */
    @Override
    public int[] encodeChat(List<ChatMessage> messages) {
        if (chatTemplate == null) {
            throw new NoChatTemplate();
        }
        if (messages.stream().noneMatch(m -> spellsSpecialToken(m.getContent()))) {
            return encode(chatTemplate.render(messages, true), false);
        }
        // Render with each content replaced by a marker, then encode what the template wrote as it
        // is and each content, where its marker stands, as text.
        List<ChatMessage> marked = new ArrayList<>(messages.size());
        for (int i = 0; i < messages.size(); i++) {
            marked.add(messages.get(i).toBuilder().setContent(CONTENT_MARK + i + CONTENT_MARK_END).build());
        }
        String rendered = chatTemplate.render(marked, true);
        Matcher mark = CONTENT_MARKS.matcher(rendered);
        List<int[]> parts = new ArrayList<>();
        int from = 0;
        while (mark.find()) {
            parts.add(encode(rendered.substring(from, mark.start()), false));
            parts.add(encodeAsText(messages.get(Integer.parseInt(mark.group(1))).getContent()));
            from = mark.end();
        }
        parts.add(encode(rendered.substring(from), false));
        return concat(parts);
    }

    private boolean spellsSpecialToken(String text) {
        for (int i = 0; i < text.length(); i++) {
            if (specialTokenAt(text, i)) {
                return true;
            }
        }
        return false;
    }

    /** One look-up per character: models have hundreds of special tokens, prompts thousands of characters. */
    private boolean specialTokenAt(String text, int i) {
        List<String> candidates = specialByFirstChar.get(text.charAt(i));
        if (candidates != null) {
            for (String token : candidates) {
                if (text.startsWith(token, i)) {
                    return true;
                }
            }
        }
        return false;
    }

    /**
     * {@code text} as ordinary tokens: split just inside each special token it spells (after its
     * first character), so the tokenizer's added-token matching cannot see one whole. The pieces'
     * edges tokenize as a text boundary would; the characters are all kept.
     */
    private int[] encodeAsText(String text) {
        List<int[]> pieces = new ArrayList<>();
        int start = 0;
        for (int i = 0; i < text.length(); i++) {
            if (specialTokenAt(text, i)) {
                pieces.add(encode(text.substring(start, i + 1), false));
                start = i + 1;
            }
        }
        pieces.add(encode(text.substring(start), false));
        return concat(pieces);
    }

    private static int[] concat(List<int[]> parts) {
        int n = 0;
        for (int[] p : parts) {
            n += p.length;
        }
        int[] out = new int[n];
        int at = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }

    @Override
    public int[] encode(String text) {
        return encode(text, true);
    }

    /** @param addSpecialTokens whether the tokenizer's post-processor may add tokens (e.g. BOS) */
    public int[] encode(String text, boolean addSpecialTokens) {
        Encoding enc = tokenizer.encode(text, addSpecialTokens, false);
        long[] ids = enc.getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = Math.toIntExact(ids[i]);
        }
        return out;
    }

    /** All of a sequence's text at once. */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        if (tokenBytes == null) {
            long[] l = new long[ids.length];
            for (int i = 0; i < ids.length; i++) {
                l[i] = ids[i];
            }
            return tokenizer.decode(l, skipSpecialTokens);
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int id : ids) {
            if (id >= 0 && id < tokenBytes.length && tokenBytes[id] != null && !(skipSpecialTokens && special[id])) {
                out.writeBytes(tokenBytes[id]);
            }
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    @Override
    public Decoder newDecoder() {
        return newDecoder(true);
    }

    public Decoder newDecoder(boolean skipSpecialTokens) {
        return tokenBytes != null ? new ByteDecoder(skipSpecialTokens) : new WindowDecoder(skipSpecialTokens);
    }

    @Override
    public boolean isEndOfSequence(int token) {
        return eos.contains(token);
    }

    @Override
    public void close() {
        tokenizer.close();
    }

    /** Byte-level: append each token's bytes, emit the longest prefix that ends on a character boundary. */
    private final class ByteDecoder implements Decoder {
        private final boolean skipSpecial;
        private byte[] pending = new byte[0];

        ByteDecoder(boolean skipSpecial) {
            this.skipSpecial = skipSpecial;
        }

        @Override
        public String next(int token) {
            if (token < 0 || token >= tokenBytes.length || tokenBytes[token] == null || (skipSpecial && special[token])) {
                return "";
            }
            byte[] add = tokenBytes[token];
            byte[] buf = new byte[pending.length + add.length];
            System.arraycopy(pending, 0, buf, 0, pending.length);
            System.arraycopy(add, 0, buf, pending.length, add.length);
            int complete = completeUtf8Prefix(buf);
            pending = java.util.Arrays.copyOfRange(buf, complete, buf.length);
            return new String(buf, 0, complete, StandardCharsets.UTF_8);
        }
    }

    /** Length of the longest prefix that does not end inside a (possibly still valid) UTF-8 sequence. */
    static int completeUtf8Prefix(byte[] b) {
        int n = b.length;
        for (int back = 1; back <= Math.min(4, n); back++) {
            int c = b[n - back] & 0xff;
            if ((c & 0xC0) == 0x80) {
                continue; // continuation byte: look further back for the lead
            }
            int need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? (c <= 0xEF ? 3 : 1) : c >= 0xC2 ? 2 : 1;
            return need > back ? n - back : n;
        }
        return n;
    }

    /** Any other decoder: re-decode a small window and emit the growth (the approach of HF's text-generation-inference). */
    private final class WindowDecoder implements Decoder {
        private final boolean skipSpecial;
        private final List<Long> ids = new ArrayList<>();
        private int prefixOffset;
        private int readOffset;

        WindowDecoder(boolean skipSpecial) {
            this.skipSpecial = skipSpecial;
        }

        @Override
        public String next(int token) {
            ids.add((long) token);
            String prefix = decodeRange(prefixOffset, readOffset);
            String full = decodeRange(prefixOffset, ids.size());
            if (full.length() > prefix.length() && !full.endsWith("\uFFFD")) {
                prefixOffset = readOffset;
                readOffset = ids.size();
                return full.substring(prefix.length());
            }
            return "";
        }

        private String decodeRange(int from, int to) {
            long[] l = new long[to - from];
            for (int i = from; i < to; i++) {
                l[i - from] = ids.get(i);
            }
            return l.length == 0 ? "" : tokenizer.decode(l, skipSpecial);
        }
    }
}
