package org.cocoonjvm.worker.model;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Deque;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

/**
 * A model's identity: a Merkle root over the files that define it, in the spirit of dm-verity.
 *
 * <p>Per file: the content is cut into 4096-byte blocks, the last one zero-padded (an empty file
 * is one all-zero block), and each block hashed with SHA-256. Pairs of adjacent hashes are
 * hashed together ({@code SHA-256(left || right)}) level by level; <b>an odd hash at the end of a
 * level is promoted unchanged</b> to the next level. The single hash left is the file's root.
 *
 * <p>The model hash is SHA-256 over the files sorted by relative path ('/'-separated, compared
 * as Java strings), each contributing {@code path (UTF-8) || 0x00 || size (8 bytes big-endian)
 * || root (32 bytes)}. Shown in hex.
 *
 * <p>Files that count: for a Hugging Face directory {@code config.json},
 * {@code generation_config.json}, {@code tokenizer.json}, {@code tokenizer_config.json},
 * {@code chat_template.jinja}, {@code model.safetensors.index.json} and every
 * {@code *.safetensors}, where present; for GGUF the one file, under the fixed path
 * {@code model.gguf} so that renaming it keeps the identity.
 */
public final class ModelHash {
    public static final int BLOCK = 4096;
    static final Set<String> HF_FILES = Set.of("config.json", "generation_config.json", "tokenizer.json",
            "tokenizer_config.json", "chat_template.jinja", HfModel.INDEX);

    /** One file's part in the hash. */
    public record FileRoot(String path, long size, byte[] root) {
        public String rootHex() {
            return HexFormat.of().formatHex(root);
        }
    }

    /** @param hex the full model hash (64 hex digits) */
    public record Result(String hex, List<FileRoot> files) {
        /** The first 16 bytes, for display. */
        public String shortHex() {
            return hex.substring(0, 32);
        }
    }

    private ModelHash() {
    }

    /** Hashes a Hugging Face directory or a GGUF file. */
    public static Result of(Path path) throws IOException {
        List<FileRoot> roots = new ArrayList<>();
        if (Files.isDirectory(path)) {
            try (Stream<Path> files = Files.list(path)) {
                for (Path p : files.sorted().toList()) {
                    String n = p.getFileName().toString();
                    if (Files.isRegularFile(p) && (HF_FILES.contains(n) || n.endsWith(".safetensors"))) {
                        roots.add(new FileRoot(n, Files.size(p), fileRoot(p)));
                    }
                }
            }
        } else {
            roots.add(new FileRoot("model.gguf", Files.size(path), fileRoot(path)));
        }
        return combine(roots);
    }

    /** The model hash over already computed file roots. */
    public static Result combine(List<FileRoot> roots) {
        List<FileRoot> sorted = new ArrayList<>(roots);
        sorted.sort(Comparator.comparing(FileRoot::path));
        MessageDigest md = sha256();
        for (FileRoot r : sorted) {
            md.update(r.path().getBytes(StandardCharsets.UTF_8));
            md.update((byte) 0);
            md.update(ByteBuffer.allocate(8).putLong(r.size()).array());
            md.update(r.root());
        }
        return new Result(HexFormat.of().formatHex(md.digest()), List.copyOf(sorted));
    }

    /** A file's Merkle root, reading it once in 1 MiB chunks and keeping only O(log n) hashes. */
    public static byte[] fileRoot(Path file) throws IOException {
        MessageDigest md = sha256();
        Deque<Node> stack = new ArrayDeque<>();
        ByteBuffer buf = ByteBuffer.allocate(256 * BLOCK);
        byte[] block = new byte[BLOCK];
        long blocks = 0;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            boolean eof = false;
            while (!eof) {
                buf.clear();
                while (buf.hasRemaining()) {
                    if (ch.read(buf) < 0) {
                        eof = true;
                        break;
                    }
                }
                buf.flip();
                while (buf.hasRemaining()) {
                    int n = Math.min(BLOCK, buf.remaining());
                    buf.get(block, 0, n);
                    java.util.Arrays.fill(block, n, BLOCK, (byte) 0);
                    md.update(block);
                    push(stack, new Node(0, md.digest()), md);
                    blocks++;
                }
            }
        }
        if (blocks == 0) {
            md.update(block); // all zeros
            push(stack, new Node(0, md.digest()), md);
        }
        // Fold what is left from the right: a lone node is promoted until it meets its left neighbour's level.
        Node right = stack.pop();
        while (!stack.isEmpty()) {
            Node left = stack.pop();
            right = new Node(left.level + 1, hashPair(md, left.hash, right.hash));
        }
        return right.hash;
    }

    private record Node(int level, byte[] hash) {
    }

    private static void push(Deque<Node> stack, Node node, MessageDigest md) {
        while (!stack.isEmpty() && stack.peek().level == node.level) {
            Node left = stack.pop();
            node = new Node(node.level + 1, hashPair(md, left.hash, node.hash));
        }
        stack.push(node);
    }

    static byte[] hashPair(MessageDigest md, byte[] left, byte[] right) {
        md.update(left);
        md.update(right);
        return md.digest();
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError("SHA-256 is required of every JVM", e);
        }
    }
}
