package org.cocoonjvm.worker.model;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelHashTest {
    @TempDir
    Path dir;

    @Test
    void writingTwiceGivesIdenticalBytesAndHashes() throws Exception {
        RandomModelSpec spec = RandomModelSpec.tiny("qwen3").withDtype(DType.BF16);
        RandomModel.Written a = TestModels.writeBoth(spec, dir.resolve("a"));
        RandomModel.Written b = TestModels.writeBoth(spec, dir.resolve("b"));
        List<String> names;
        try (Stream<Path> files = Files.list(a.hfDir())) {
            names = files.map(p -> p.getFileName().toString()).sorted().toList();
        }
        assertThat(names).containsExactly("config.json", "generation_config.json", "model.safetensors",
                "tokenizer.json", "tokenizer_config.json");
        for (String n : names) {
            assertThat(Files.readAllBytes(b.hfDir().resolve(n))).as(n).isEqualTo(Files.readAllBytes(a.hfDir().resolve(n)));
        }
        assertThat(Files.readAllBytes(b.gguf())).isEqualTo(Files.readAllBytes(a.gguf()));
        assertThat(ModelHash.of(b.hfDir()).hex()).isEqualTo(ModelHash.of(a.hfDir()).hex());
        assertThat(ModelHash.of(b.gguf()).hex()).isEqualTo(ModelHash.of(a.gguf()).hex());

        // another seed: other weights, another hash
        RandomModel.Written c = TestModels.writeBoth(spec.withSeed(43), dir.resolve("c"));
        assertThat(ModelHash.of(c.hfDir()).hex()).isNotEqualTo(ModelHash.of(a.hfDir()).hex());
        assertThat(Files.readAllBytes(c.hfDir().resolve("tokenizer.json")))
                .isEqualTo(Files.readAllBytes(a.hfDir().resolve("tokenizer.json")));
    }

    @Test
    void changingOneWeightByteChangesTheHashAndOnlyThatFilesRoot() throws Exception {
        RandomModel.Written w = TestModels.writeBoth(RandomModelSpec.tiny("llama"), dir);
        ModelHash.Result before = ModelHash.of(w.hfDir());
        ModelHash.Result ggufBefore = ModelHash.of(w.gguf());
        Path st = w.hfDir().resolve("model.safetensors");
        flipLastByte(st);
        flipLastByte(w.gguf());
        ModelHash.Result after = ModelHash.of(w.hfDir());
        assertThat(after.hex()).isNotEqualTo(before.hex());
        assertThat(ModelHash.of(w.gguf()).hex()).isNotEqualTo(ggufBefore.hex());
        for (int i = 0; i < before.files().size(); i++) {
            ModelHash.FileRoot x = before.files().get(i);
            ModelHash.FileRoot y = after.files().get(i);
            assertThat(y.path()).isEqualTo(x.path());
            if (x.path().equals("model.safetensors")) {
                assertThat(y.rootHex()).isNotEqualTo(x.rootHex());
            } else {
                assertThat(y.rootHex()).isEqualTo(x.rootHex());
            }
        }
        // files that do not define the model do not count; the GGUF's name does not either
        Files.writeString(w.hfDir().resolve("README.md"), "notes");
        assertThat(ModelHash.of(w.hfDir()).hex()).isEqualTo(after.hex());
        Path renamed = Files.copy(w.gguf(), dir.resolve("other-name.gguf"));
        assertThat(ModelHash.of(renamed).hex()).isEqualTo(ModelHash.of(w.gguf()).hex());
        assertThat(before.shortHex()).hasSize(32).isEqualTo(before.hex().substring(0, 32));
    }

    private static void flipLastByte(Path file) throws Exception {
        byte[] bytes = Files.readAllBytes(file);
        // the last tensor's last byte (the GGUF may end in alignment padding: find a non-padding byte)
        int i = bytes.length - 1;
        while (bytes[i] == 0) {
            i--;
        }
        bytes[i] ^= 1;
        Files.write(file, bytes);
    }

    @Test
    void fileRootMatchesAPlainLevelByLevelTree() throws Exception {
        Random r = new Random(1);
        for (int size : new int[] {0, 1, 4095, 4096, 4097, 2 * 4096, 3 * 4096, 5 * 4096 + 17, 7 * 4096, 300 * 4096 + 5}) {
            byte[] data = new byte[size];
            r.nextBytes(data);
            Path f = dir.resolve("f" + size);
            Files.write(f, data);
            assertThat(ModelHash.fileRoot(f)).as("size %d", size).isEqualTo(naiveRoot(data));
        }
        // one block: the root is the block's hash; two: the hash of both
        byte[] one = new byte[10];
        Files.write(dir.resolve("one"), one);
        assertThat(ModelHash.fileRoot(dir.resolve("one"))).isEqualTo(sha(Arrays.copyOf(one, 4096)));
    }

    /** Level by level: hash pairs, promote an odd last node unchanged. */
    private static byte[] naiveRoot(byte[] data) throws Exception {
        List<byte[]> level = new ArrayList<>();
        int blocks = Math.max(1, (data.length + 4095) / 4096);
        for (int b = 0; b < blocks; b++) {
            byte[] block = new byte[4096];
            System.arraycopy(data, b * 4096, block, 0, Math.max(0, Math.min(4096, data.length - b * 4096)));
            level.add(sha(block));
        }
        while (level.size() > 1) {
            List<byte[]> next = new ArrayList<>();
            for (int i = 0; i < level.size(); i += 2) {
                if (i + 1 < level.size()) {
                    MessageDigest md = MessageDigest.getInstance("SHA-256");
                    md.update(level.get(i));
                    md.update(level.get(i + 1));
                    next.add(md.digest());
                } else {
                    next.add(level.get(i));
                }
            }
            level = next;
        }
        return level.getFirst();
    }

    private static byte[] sha(byte[] b) throws Exception {
        return MessageDigest.getInstance("SHA-256").digest(b);
    }

    @Test
    void modelHashIsOverSortedPathSizeAndRoot() throws Exception {
        byte[] r1 = new byte[32];
        byte[] r2 = new byte[32];
        r2[0] = 1;
        ModelHash.Result h = ModelHash.combine(List.of(new ModelHash.FileRoot("b.json", 7, r2),
                new ModelHash.FileRoot("a.safetensors", 4096, r1)));
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        md.update("a.safetensors".getBytes());
        md.update((byte) 0);
        md.update(new byte[] {0, 0, 0, 0, 0, 0, 0x10, 0});
        md.update(r1);
        md.update("b.json".getBytes());
        md.update((byte) 0);
        md.update(new byte[] {0, 0, 0, 0, 0, 0, 0, 7});
        md.update(r2);
        assertThat(h.hex()).isEqualTo(java.util.HexFormat.of().formatHex(md.digest()));
        assertThat(h.files().getFirst().path()).isEqualTo("a.safetensors");
    }
}
