/*
 * cocoon_kernels.h: the C ABI between the worker (Java, through the FFM API) and the kernel
 * library. This file is the contract; Java's bindings (org.cocoonjvm.worker.kernels) mirror it.
 *
 * Rules, in the manner of llama.cpp's llama_decode:
 *   - every object is an opaque handle; every call returns a ck_status (0 = CK_OK);
 *   - on failure the handle is left as it was before the call, and ck_last_error(handle)
 *     says why in one line; the library never exits, aborts or prints;
 *   - one thread at a time per ck_model (the worker's engine thread); the library may use its
 *     own threads inside a call (n_threads).
 *
 * Two builds export this same ABI: libcocoon_kernels.so (CPU: plain C plus vectorised fast paths)
 * and, when nvcc is present, libcocoon_kernels_cuda.so (weights, KV cache and the forward pass on
 * one NVIDIA GPU). The worker loads the CUDA build when a GPU is visible, the CPU build otherwise.
 */
#ifndef COCOON_KERNELS_H
#define COCOON_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CK_ABI_VERSION 1

typedef enum {
    CK_OK = 0,
    CK_E_INVALID = -1,      /* an argument is out of range or inconsistent; nothing changed */
    CK_E_NOMEM = -2,        /* host or device allocation failed; nothing changed */
    CK_E_UNSUPPORTED = -3,  /* dtype, tensor or option this build cannot run */
    CK_E_CAPACITY = -4,     /* KV cache blocks exhausted; the step did nothing, free sequences and retry */
    CK_E_BACKEND = -5,      /* the device failed (CUDA error); the model must be freed */
    CK_E_STATE = -6         /* called in the wrong order (e.g. ck_step before ck_model_finalize) */
} ck_status;

/* Weight formats accepted by ck_model_set_tensor. Matrices stay in their format in memory and
 * are multiplied in it (no up-front conversion to f32), so decode reads as few bytes as possible. */
typedef enum {
    CK_F32 = 0,
    CK_F16 = 1,
    CK_BF16 = 2,
    CK_Q8_0 = 3   /* GGUF Q8_0: blocks of 32 weights = one f16 scale + 32 int8 (34 bytes) */
} ck_dtype;

typedef enum {
    CK_ROPE_NONE = 0,     /* plain RoPE with rope_theta */
    CK_ROPE_LINEAR = 1,   /* positions divided by rope_factor */
    CK_ROPE_LLAMA3 = 2    /* Llama 3.1 frequency-dependent scaling (factor, low/high freq factors, original ctx) */
} ck_rope_scaling;

/* A decoder-only transformer of the Llama / Qwen2 / Qwen3 family. */
typedef struct {
    int32_t n_layers;
    int32_t hidden;            /* model width */
    int32_t n_heads;           /* query heads */
    int32_t n_kv_heads;        /* key/value heads (GQA: n_heads % n_kv_heads == 0) */
    int32_t head_dim;          /* usually hidden / n_heads; Qwen3 sets it explicitly */
    int32_t ffn_hidden;        /* SwiGLU inner width */
    int32_t vocab;
    int32_t max_context;       /* most tokens one sequence may hold */
    float rms_eps;
    float rope_theta;
    int32_t rope_scaling;      /* ck_rope_scaling */
    float rope_factor;
    float rope_low_freq_factor;
    float rope_high_freq_factor;
    int32_t rope_original_context;
    int32_t tied_embeddings;   /* 1: the output projection is the token embedding */
    int32_t qk_norm;           /* 1: RMSNorm on each query and key head before RoPE (Qwen3) */
    int32_t attn_bias;         /* 1: q/k/v projections have biases (Qwen2) */
} ck_config;

/* Which weight a ck_model_set_tensor call provides. Shapes follow Hugging Face (PyTorch Linear:
 * [out_features][in_features], row-major). Norm weights and biases must be CK_F32. */
typedef enum {
    CK_T_TOKEN_EMBD = 0,   /* [vocab][hidden] */
    CK_T_OUTPUT_NORM = 1,  /* [hidden] */
    CK_T_OUTPUT = 2,       /* [vocab][hidden]; omit when tied_embeddings */
    CK_T_ATTN_NORM = 3,    /* per layer [hidden] */
    CK_T_WQ = 4,           /* [n_heads*head_dim][hidden] */
    CK_T_WK = 5,           /* [n_kv_heads*head_dim][hidden] */
    CK_T_WV = 6,           /* [n_kv_heads*head_dim][hidden] */
    CK_T_WO = 7,           /* [hidden][n_heads*head_dim] */
    CK_T_BQ = 8,           /* [n_heads*head_dim], attn_bias only */
    CK_T_BK = 9,           /* [n_kv_heads*head_dim], attn_bias only */
    CK_T_BV = 10,          /* [n_kv_heads*head_dim], attn_bias only */
    CK_T_Q_NORM = 11,      /* [head_dim], qk_norm only */
    CK_T_K_NORM = 12,      /* [head_dim], qk_norm only */
    CK_T_FFN_NORM = 13,    /* per layer [hidden] */
    CK_T_W_GATE = 14,      /* [ffn_hidden][hidden] */
    CK_T_W_UP = 15,        /* [ffn_hidden][hidden] */
    CK_T_W_DOWN = 16       /* [hidden][ffn_hidden] */
} ck_tensor_kind;

typedef struct ck_model ck_model;

/* Per-sequence sampling, read on the step that samples. Greedy when temperature == 0. */
typedef struct {
    float temperature;
    float top_p;               /* 0 or >= 1: disabled */
    int32_t top_k;             /* 0: disabled */
    float presence_penalty;    /* OpenAI semantics, over this sequence's generated tokens */
    float frequency_penalty;
    uint64_t seed;             /* seeds the sequence's generator when its pos == 0 */
} ck_sampling;

/* One sequence's share of a step. */
typedef struct {
    int32_t seq;               /* slot in [0, max_seqs) */
    int32_t pos;               /* tokens this sequence already has in the KV cache; 0 starts it afresh */
    int32_t n_tokens;          /* tokens fed now: a prefill chunk, or 1 when decoding */
    int32_t sample;            /* 1: sample a token after the last one fed */
    ck_sampling sampling;
} ck_seq_entry;

typedef struct {
    int32_t n_entries;
    const ck_seq_entry *entries;
    const int32_t *tokens;     /* all entries' tokens, concatenated in entry order */
    int32_t *out_tokens;       /* [n_entries]: the sampled token, or -1 where sample == 0 */
    float *out_logits;         /* optional [n_entries][vocab]: logits after each entry's last token
                                  (before sampling adjustments); NULL to skip the copy */
} ck_batch;

/* The ABI version the library was built with (CK_ABI_VERSION); callers refuse a mismatch. */
int32_t ck_abi_version(void);

/* "cpu-avx2", "cpu-plain", "cuda-sm90", …: what this build runs on. Static string. */
const char *ck_backend_name(void);

/* 1 when this build can run here (the CUDA build: a GPU is visible), else 0. */
int32_t ck_backend_available(void);

int ck_model_create(const ck_config *config, int32_t n_threads, ck_model **out);

/* Copies one tensor into the model, in its own format. n_bytes must match the shape implied by
 * the config and dtype exactly. Setting the same tensor twice replaces it. */
int ck_model_set_tensor(ck_model *model, ck_tensor_kind kind, int32_t layer, ck_dtype dtype,
                        const void *data, int64_t n_bytes);

/* Checks that every tensor the config needs is present, then prepares the backend (e.g. uploads
 * to the GPU). After this, tensors can no longer be set. */
int ck_model_finalize(ck_model *model);

/* Allocates the KV cache: n_blocks blocks of block_tokens tokens, shared by up to max_seqs
 * sequences. Call once, after finalize. */
int ck_kv_init(ck_model *model, int32_t n_blocks, int32_t block_tokens, int32_t max_seqs);

/* Bytes the KV cache would take for these numbers, so callers can size it before allocating. */
int64_t ck_kv_bytes(const ck_config *config, int32_t n_blocks, int32_t block_tokens);

/* Blocks not held by any sequence. */
int32_t ck_kv_free_blocks(const ck_model *model);

/* One forward pass over every entry: prefill chunks and decode tokens of many sequences
 * together. An entry with pos == 0 first frees whatever its slot held. On CK_E_CAPACITY nothing
 * was computed or allocated. */
int ck_step(ck_model *model, ck_batch *batch);

/* Releases a sequence's KV blocks and sampling state; freeing an empty slot is CK_OK. */
int ck_seq_free(ck_model *model, int32_t seq);

/* Peak bytes of host (and device, for CUDA) memory the model has held. */
int64_t ck_model_peak_bytes(const ck_model *model);

/* Why the last call on this model failed; "" when it didn't. Valid until the next call.
 * ck_last_error(NULL) reports the last failed ck_model_create on the calling thread. */
const char *ck_last_error(const ck_model *model);

void ck_model_free(ck_model *model);

#ifdef __cplusplus
}
#endif

#endif
