/*
 * ck_internal.h: what the shared front end (ck_core.c, ck_sample.c, ck_numeric.c) and a backend
 * (cpu/ or cuda/) see of each other. Not part of the ABI.
 *
 * The front end owns everything that is the same on every device: argument checking, the host
 * copies of the weights, the KV cache's bookkeeping (which blocks each sequence holds), the step
 * plan and sampling. A backend owns the arithmetic: it gets a validated plan and returns logits.
 */
#ifndef CK_INTERNAL_H
#define CK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cocoon_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CK_API __attribute__((visibility("default")))
#define CK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CK_API
#define CK_PRINTF(a, b)
#endif

#define CK_ERR_LEN 320
#define CK_N_KINDS 17
#define CK_ALIGN 64

/* One weight as handed to ck_model_set_tensor. `host` is ours (64-byte aligned); a backend that
 * copies it elsewhere (the GPU) may free it and keep `dev`. */
typedef struct {
    void *host;
    void *dev;
    int32_t dtype;      /* ck_dtype */
    int64_t rows;       /* out_features, or 1 for vectors */
    int64_t cols;       /* in_features, or the vector's length */
    int64_t n_bytes;
    int32_t present;
} ck_tensor;

typedef struct {
    ck_tensor attn_norm, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm, ffn_norm, w_gate, w_up, w_down;
} ck_layer;

/* A small PRNG (xoshiro256**), seeded through splitmix64. */
typedef struct {
    uint64_t s[4];
} ck_rng;

/* Per-slot state: the cache's length, the blocks it holds (a row of model->block_table) and
 * what sampling needs (its generator and every token sampled since pos 0). */
typedef struct {
    int32_t len;
    int32_t n_blocks;
    ck_rng rng;
    int32_t *gen;
    int32_t n_gen, cap_gen;
    uint32_t stamp;     /* the last step that named this slot (duplicate check) */
} ck_seq_state;

/* One entry of a step, as the backend sees it. */
typedef struct {
    int32_t seq;
    int32_t pos;        /* first position this step writes */
    int32_t n_tokens;
    int32_t first;      /* index of its first token in the step's token list */
} ck_plan_entry;

/* A validated step: T tokens of n_entries sequences; logits wanted for n_logits of the tokens. */
typedef struct {
    int32_t n_tokens;
    const int32_t *tokens;      /* [n_tokens] */
    const int32_t *tok_pos;     /* [n_tokens] position of each token in its sequence */
    const int32_t *tok_entry;   /* [n_tokens] which entry it belongs to */
    int32_t n_entries;
    const ck_plan_entry *entries;
    int32_t n_logits;
    const int32_t *logit_tok;   /* [n_logits] token index whose logits are wanted */
} ck_plan;

struct ck_model {
    ck_config cfg;
    int32_t n_threads;
    int32_t finalized;

    ck_tensor token_embd, output_norm, output;
    ck_layer *layers;            /* [n_layers] */
    float *inv_freq;             /* [head_dim/2] RoPE frequencies, scaling applied */

    /* KV cache bookkeeping (the storage is the backend's) */
    int32_t kv_ready;
    int32_t n_blocks, block_tokens, max_seqs, max_blocks_per_seq;
    int32_t *block_table;        /* [max_seqs][max_blocks_per_seq] */
    int32_t *free_blocks;        /* stack of free block ids */
    int32_t n_free;
    ck_seq_state *seqs;          /* [max_seqs] */
    uint32_t step_stamp;

    /* step scratch, grown on demand */
    int32_t plan_cap_tokens, plan_cap_entries;
    int32_t *tok_pos, *tok_entry, *logit_tok;
    ck_plan_entry *plan_entries;
    float *sample_buf;           /* [vocab] */
    int32_t *sample_idx;         /* [vocab] */
    int32_t *sample_counts;      /* [vocab], all zero between calls */

    /* accounting */
    int64_t cur_bytes, peak_bytes;

    char err[CK_ERR_LEN];
    void *be;                    /* the backend's state */
};

/* ---- front end helpers (ck_core.c) ---- */
/* rows x cols of a tensor (vectors: 1 x n); inline so that test_cuda, which links no model code, has it too. */
static inline void ck_tensor_shape(const ck_config *c, int32_t kind, int64_t *rows, int64_t *cols) {
    int64_t qd = (int64_t)c->n_heads * c->head_dim, kvd = (int64_t)c->n_kv_heads * c->head_dim;
    int64_t r = 1, n = 0;
    switch (kind) {
    case CK_T_TOKEN_EMBD: case CK_T_OUTPUT: r = c->vocab; n = c->hidden; break;
    case CK_T_OUTPUT_NORM: case CK_T_ATTN_NORM: case CK_T_FFN_NORM: n = c->hidden; break;
    case CK_T_WQ: r = qd; n = c->hidden; break;
    case CK_T_WK: case CK_T_WV: r = kvd; n = c->hidden; break;
    case CK_T_WO: r = c->hidden; n = qd; break;
    case CK_T_BQ: n = qd; break;
    case CK_T_BK: case CK_T_BV: n = kvd; break;
    case CK_T_Q_NORM: case CK_T_K_NORM: n = c->head_dim; break;
    case CK_T_W_GATE: case CK_T_W_UP: r = c->ffn_hidden; n = c->hidden; break;
    case CK_T_W_DOWN: r = c->hidden; n = c->ffn_hidden; break;
    default: break;
    }
    *rows = r;
    *cols = n;
}

int ck_fail(ck_model *m, int status, const char *fmt, ...) CK_PRINTF(3, 4);
void *ck_alloc(ck_model *m, size_t bytes);            /* 64-byte aligned, not zeroed, counted */
void ck_free(ck_model *m, void *p, size_t bytes);
void ck_account(ck_model *m, int64_t delta);          /* device bytes, counted the same way */
int64_t ck_dtype_row_bytes(int32_t dtype, int64_t cols); /* -1 when cols does not fit the dtype */
const char *ck_dtype_name(int32_t dtype);
const char *ck_kind_name(int32_t kind);
int ck_validate_config(const ck_config *c, char *err, size_t err_len);
void ck_rope_freqs(const ck_config *c, float *inv_freq);  /* [head_dim/2] */

/* ---- numbers (ck_numeric.c) ---- */
float ck_f16_to_f32(uint16_t h);
uint16_t ck_f32_to_f16(float f);
float ck_bf16_to_f32(uint16_t h);
uint16_t ck_f32_to_bf16(float f);
/* GGUF Q8_0: n (a multiple of 32) floats into n/32 blocks of 34 bytes */
void ck_quantize_q8_0(const float *x, void *out, int64_t n);
/* one row of any dtype into f32 */
void ck_row_to_f32(const void *row, int32_t dtype, int64_t cols, float *out);

/* ---- sampling (ck_sample.c) ---- */
void ck_rng_seed(ck_rng *r, uint64_t seed);
uint64_t ck_rng_next(ck_rng *r);
int32_t ck_sample(ck_model *m, ck_seq_state *s, const ck_sampling *sp, const float *logits);

/* ---- backend hooks (one backend links into each library) ---- */
const char *ck_be_name(void);
int32_t ck_be_available(void);
int32_t ck_be_kv_elem_bytes(void);
int ck_be_create(ck_model *m);            /* after the config is checked */
int ck_be_finalize(ck_model *m);          /* every tensor present */
int ck_be_kv_init(ck_model *m);           /* block numbers set; allocate the storage */
/* make room for a step this size; may fail (CK_E_NOMEM), must change nothing else */
int ck_be_reserve(ck_model *m, int32_t n_tokens, int32_t n_logits);
/* run the forward pass; point *logits at [plan->n_logits][vocab] host floats, which stay valid
 * until the next call (a GPU backend copies them into page-locked memory of its own) */
int ck_be_forward(ck_model *m, const ck_plan *plan, const float **logits);
void ck_be_free(ck_model *m);

#ifdef __cplusplus
}
#endif

#endif
