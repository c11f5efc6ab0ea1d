/**
 * Models on disk and in memory: everything between a path and the native kernels.
 *
 * <ul>
 *   <li>{@link org.cocoonjvm.worker.model.ModelLoader#load} – a Hugging Face directory or a GGUF file
 *       to a {@link org.cocoonjvm.worker.model.LoadedModel} (config, memory-mapped weights,
 *       tokenizer, Merkle identity).</li>
 *   <li>Formats: {@link org.cocoonjvm.worker.model.Safetensors}, {@link org.cocoonjvm.worker.model.HfModel},
 *       {@link org.cocoonjvm.worker.model.HfConfigs}; {@link org.cocoonjvm.worker.model.GgufFile},
 *       {@link org.cocoonjvm.worker.model.GgufWriter}, {@link org.cocoonjvm.worker.model.GgufModel}
 *       (which also documents llama.cpp's Q/K row permutation).</li>
 *   <li>Weights: {@link org.cocoonjvm.worker.model.MappedModelWeights} validates every tensor against
 *       {@link org.cocoonjvm.worker.model.ModelConfig#shape}; {@link org.cocoonjvm.worker.model.Tensors}
 *       converts (F32 copies for norms and biases, dequantisation for reference code).</li>
 *   <li>Text: {@link org.cocoonjvm.worker.model.HfTokenizer} (HF tokenizers through DJL, incremental
 *       UTF-8-safe decoding), {@link org.cocoonjvm.worker.model.ChatTemplate} (Jinja through Jinjava),
 *       {@link org.cocoonjvm.worker.model.TokenizerJson} and {@link org.cocoonjvm.worker.model.ByteLevelBpe}.</li>
 *   <li>Identity: {@link org.cocoonjvm.worker.model.ModelHash}.</li>
 *   <li>Test models: {@link org.cocoonjvm.worker.model.RandomModel} writes the same deterministic model
 *       as HF and GGUF.</li>
 * </ul>
 */
package org.cocoonjvm.worker.model;
