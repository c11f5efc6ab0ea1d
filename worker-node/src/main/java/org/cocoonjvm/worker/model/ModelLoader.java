package org.cocoonjvm.worker.model;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * Loads a model from a Hugging Face directory (config.json + *.safetensors + tokenizer.json) or a
 * GGUF file (or a directory holding exactly one .gguf and no config.json). Everything is read
 * from local files; nothing is downloaded.
 */
public final class ModelLoader {
    private ModelLoader() {
    }

    public static LoadedModel load(Path path) throws IOException {
        if (!Files.exists(path)) {
            throw new ModelFormatException(path + ": no such file or directory");
        }
        if (Files.isDirectory(path)) {
            if (Files.isRegularFile(path.resolve("config.json"))) {
                return loadHf(path);
            }
            List<Path> ggufs;
            try (Stream<Path> files = Files.list(path)) {
                ggufs = files.filter(p -> p.getFileName().toString().endsWith(".gguf")).sorted().toList();
            }
            if (ggufs.size() == 1) {
                return loadGguf(ggufs.getFirst());
            }
            throw new ModelFormatException(path + ": not a model directory: expected config.json with *.safetensors"
                    + (ggufs.isEmpty() ? ", or one .gguf file" : ", or one .gguf file (found " + ggufs.size() + ")"));
        }
        if (path.getFileName().toString().endsWith(".gguf") || hasGgufMagic(path)) {
            return loadGguf(path);
        }
        throw new ModelFormatException(path + ": unsupported model file: expected a .gguf file or a Hugging Face "
                + "directory (config.json + *.safetensors)");
    }

    static LoadedModel loadHf(Path dir) throws IOException {
        ModelConfig config = HfModel.config(dir);
        HfTokenizer tokenizer = HfModel.tokenizer(dir, config);
        try {
            config.checkTokenizer(tokenizer, dir.resolve("tokenizer.json").toString(), dir.resolve("config.json").toString());
            ModelWeights weights = HfModel.weights(dir, config);
            try {
                String hash = ModelHash.of(dir).hex();
                return new LoadedModel(HfModel.name(dir), hash, config, weights, tokenizer, ModelFormat.HF);
            } catch (IOException | RuntimeException e) {
                weights.close();
                throw e;
            }
        } catch (IOException | RuntimeException e) {
            tokenizer.close();
            throw e;
        }
    }

    static LoadedModel loadGguf(Path file) throws IOException {
        Arena arena = Arena.ofShared();
        try {
            GgufFile gguf = GgufFile.open(file, arena);
            ModelConfig config = GgufModel.config(gguf);
            MappedModelWeights weights = GgufModel.weights(gguf, config, arena);
            GgufFile.Value template = gguf.get("tokenizer.chat_template");
            HfTokenizer tokenizer = new HfTokenizer(GgufModel.tokenizerJson(gguf),
                    template == null ? null : template.asString(),
                    GgufModel.tokenText(gguf, config.bosToken()),
                    config.eosTokens().isEmpty() ? null : GgufModel.tokenText(gguf, config.eosTokens().getFirst()),
                    config.eosTokens());
            try {
                config.checkTokenizer(tokenizer, file + " (tokenizer.ggml.tokens)", file + " metadata");
                String hash = ModelHash.of(file).hex();
                GgufFile.Value general = gguf.get("general.name");
                String name = general != null && general.value() instanceof String s && !s.isBlank()
                        ? s : file.getFileName().toString().replaceFirst("\\.gguf$", "");
                return new LoadedModel(name, hash, config, weights, tokenizer, ModelFormat.GGUF);
            } catch (IOException | RuntimeException e) {
                tokenizer.close();
                throw e;
            }
        } catch (IOException | RuntimeException e) {
            if (arena.scope().isAlive()) {
                arena.close();
            }
            throw e;
        }
    }

    private static boolean hasGgufMagic(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            byte[] magic = in.readNBytes(4);
            return magic.length == 4 && magic[0] == 'G' && magic[1] == 'G' && magic[2] == 'U' && magic[3] == 'F';
        }
    }
}
