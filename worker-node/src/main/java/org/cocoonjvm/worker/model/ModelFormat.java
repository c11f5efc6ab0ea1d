package org.cocoonjvm.worker.model;

/** The on-disk forms a model can take. */
public enum ModelFormat {
    /** A Hugging Face directory: config.json, *.safetensors, tokenizer.json, … */
    HF,
    /** One llama.cpp GGUF file, tokenizer and chat template in its metadata. */
    GGUF
}
