package org.cocoonjvm.worker.model;

import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * A Hugging Face model directory: {@code config.json} (+ {@code generation_config.json}),
 * {@code *.safetensors} (one file, or shards listed by {@code model.safetensors.index.json}),
 * {@code tokenizer.json} and {@code tokenizer_config.json} (or {@code chat_template.jinja}).
 */
public final class HfModel {
    public static final String INDEX = "model.safetensors.index.json";

    private HfModel() {
    }

    public static ModelConfig config(Path dir) throws IOException {
        Path config = dir.resolve("config.json");
        if (!Files.isRegularFile(config)) {
            throw new ModelFormatException(dir + ": no config.json");
        }
        Path gen = dir.resolve("generation_config.json");
        return HfConfigs.parse(readJson(config), Files.isRegularFile(gen) ? readJson(gen) : null, dir.toString());
    }

    /**
     * What clients call the model: the last segment of config.json's {@code _name_or_path}
     * (transformers writes the hub id there, e.g. {@code Qwen/Qwen2.5-0.5B-Instruct}), else the
     * directory's name.
     */
    public static String name(Path dir) throws IOException {
        Object named = readJson(dir.resolve("config.json")).getValue("_name_or_path");
        if (named instanceof String s && !s.isBlank()) {
            String last = s.replaceAll("/+$", "");
            return last.substring(last.lastIndexOf('/') + 1);
        }
        Path name = dir.toAbsolutePath().normalize().getFileName();
        return name == null ? "model" : name.toString();
    }

    /** The safetensors files holding the weights, sorted. */
    public static List<Path> weightFiles(Path dir) throws IOException {
        Path index = dir.resolve(INDEX);
        TreeSet<String> names = new TreeSet<>();
        if (Files.isRegularFile(index)) {
            JsonObject map = readJson(index).getJsonObject("weight_map");
            if (map == null) {
                throw new ModelFormatException(index + ": no weight_map");
            }
            for (Map.Entry<String, Object> e : map) {
                names.add(String.valueOf(e.getValue()));
            }
        } else {
            try (Stream<Path> files = Files.list(dir)) {
                files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".safetensors")).forEach(names::add);
            }
        }
        if (names.isEmpty()) {
            boolean bin;
            try (Stream<Path> files = Files.list(dir)) {
                bin = files.anyMatch(p -> p.getFileName().toString().endsWith(".bin"));
            }
            throw new ModelFormatException(dir + ": no *.safetensors weights" + (bin ? " (PyTorch .bin checkpoints are not supported)" : ""));
        }
        List<Path> out = new ArrayList<>();
        for (String n : names) {
            Path p = dir.resolve(n).normalize();
            if (!p.startsWith(dir.normalize()) || !Files.isRegularFile(p)) {
                throw new ModelFormatException(dir + ": missing weight file " + n);
            }
            out.add(p);
        }
        return out;
    }

    /** Maps every shard into a new shared arena that the returned weights own. */
    public static MappedModelWeights weights(Path dir, ModelConfig config) throws IOException {
        Arena arena = Arena.ofShared();
        try {
            Map<TensorNames.Ref, Tensor> found = new LinkedHashMap<>();
            Map<String, Path> seen = new LinkedHashMap<>();
            for (Path file : weightFiles(dir)) {
                for (Map.Entry<String, Tensor> e : Safetensors.map(file, arena).entrySet()) {
                    Path previous = seen.put(e.getKey(), file);
                    if (previous != null) {
                        throw new ModelFormatException(dir + ": tensor " + e.getKey() + " is in both "
                                + previous.getFileName() + " and " + file.getFileName());
                    }
                    TensorNames.Ref ref = TensorNames.parseHf(e.getKey());
                    if (ref != null) {
                        found.put(ref, e.getValue());
                    }
                }
            }
            return new MappedModelWeights(config, arena, found, TensorNames::hf, dir.toString());
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** The tokenizer: tokenizer.json, with the chat template and bos/eos strings from tokenizer_config.json. */
    public static HfTokenizer tokenizer(Path dir, ModelConfig config) throws IOException {
        Path json = dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(json)) {
            throw new ModelFormatException(dir + ": no tokenizer.json (only fast tokenizers are supported)");
        }
        Path tc = dir.resolve("tokenizer_config.json");
        JsonObject tokConfig = Files.isRegularFile(tc) ? readJson(tc) : new JsonObject();
        String template = null;
        Object t = tokConfig.getValue("chat_template");
        if (t instanceof String s) {
            template = s;
        } else if (t instanceof JsonArray list) {
            for (Object o : list) {
                if (o instanceof JsonObject named && "default".equals(named.getString("name"))) {
                    template = named.getString("template");
                }
            }
        }
        Path jinja = dir.resolve("chat_template.jinja");
        if (template == null && Files.isRegularFile(jinja)) {
            template = Files.readString(jinja);
        }
        return new HfTokenizer(Files.readString(json), template, tokenString(tokConfig.getValue("bos_token")),
                tokenString(tokConfig.getValue("eos_token")), config.eosTokens());
    }

    private static String tokenString(Object v) {
        if (v instanceof String s) {
            return s;
        }
        if (v instanceof JsonObject o) {
            return o.getString("content");
        }
        return null;
    }

    static JsonObject readJson(Path file) throws IOException {
        try {
            return new JsonObject(Files.readString(file));
        } catch (DecodeException e) {
            throw ModelFormatException.malformedJson(file + ": malformed JSON", e);
        } catch (ClassCastException e) {
            throw new ModelFormatException(file + ": malformed JSON: " + e.getMessage(), e);
        }
    }
}
