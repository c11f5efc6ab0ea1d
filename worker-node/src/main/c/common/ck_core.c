/*
 * ck_core.c: the ABI entry points, the same for every backend.
 *
 * Everything here is bookkeeping: checking arguments, keeping the host copies of the weights,
 * handing out KV cache blocks, planning a step and sampling its tokens. The arithmetic is the
 * backend's (ck_be_* in ck_internal.h). A call that fails leaves the model as it found it, except
 * CK_E_BACKEND, after which the model must be freed.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ck_internal.h"

static _Thread_local char tls_err[CK_ERR_LEN];

/* ---------------------------------------------------------------- errors and memory */

int ck_fail(ck_model *m, int status, const char *fmt, ...) {
    char *buf = m ? m->err : tls_err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, CK_ERR_LEN, fmt, ap);
    va_end(ap);
    return status;
}

void ck_account(ck_model *m, int64_t delta) {
    m->cur_bytes += delta;
    if (m->cur_bytes > m->peak_bytes) m->peak_bytes = m->cur_bytes;
}

/* Allocations of 2 MiB and more (weight matrices, mostly) start on a 2 MiB boundary and ask for
 * transparent huge pages over their whole 2 MiB units (the tail keeps small pages, so no memory
 * is wasted): streaming a matrix then walks far fewer pages (measured +5-20% bandwidth). */
#define CK_HUGE ((size_t)2 << 20)

void *ck_alloc(ck_model *m, size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 1;
    size_t align = bytes >= CK_HUGE ? CK_HUGE : CK_ALIGN;
    size_t rounded = (bytes + CK_ALIGN - 1) / CK_ALIGN * CK_ALIGN;
    if (rounded < bytes || posix_memalign(&p, align, rounded) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    if (align == CK_HUGE) madvise(p, bytes / CK_HUGE * CK_HUGE, MADV_HUGEPAGE); /* a hint; failure is fine */
#endif
    if (m) ck_account(m, (int64_t)bytes);
    return p;
}

void ck_free(ck_model *m, void *p, size_t bytes) {
    if (!p) return;
    free(p);
    if (m) ck_account(m, -(int64_t)(bytes == 0 ? 1 : bytes));
}

/* ---------------------------------------------------------------- names and shapes */

static const char *const kind_names[CK_N_KINDS] = {
    "TOKEN_EMBD", "OUTPUT_NORM", "OUTPUT", "ATTN_NORM", "WQ", "WK", "WV", "WO", "BQ", "BK", "BV",
    "Q_NORM", "K_NORM", "FFN_NORM", "W_GATE", "W_UP", "W_DOWN"};

const char *ck_kind_name(int32_t kind) {
    return kind >= 0 && kind < CK_N_KINDS ? kind_names[kind] : "?";
}

static int per_layer(int32_t kind) {
    return kind >= CK_T_ATTN_NORM;
}

static int is_vector(int32_t kind) {
    switch (kind) {
    case CK_T_OUTPUT_NORM: case CK_T_ATTN_NORM: case CK_T_FFN_NORM:
    case CK_T_BQ: case CK_T_BK: case CK_T_BV: case CK_T_Q_NORM: case CK_T_K_NORM:
        return 1;
    default:
        return 0;
    }
}

/* Whether this config has the tensor at all. */
static int needed(const ck_config *c, int32_t kind) {
    switch (kind) {
    case CK_T_OUTPUT: return !c->tied_embeddings;
    case CK_T_BQ: case CK_T_BK: case CK_T_BV: return c->attn_bias;
    case CK_T_Q_NORM: case CK_T_K_NORM: return c->qk_norm;
    default: return 1;
    }
}

static ck_tensor *slot(ck_model *m, int32_t kind, int32_t layer) {
    switch (kind) {
    case CK_T_TOKEN_EMBD: return &m->token_embd;
    case CK_T_OUTPUT_NORM: return &m->output_norm;
    case CK_T_OUTPUT: return &m->output;
    default: break;
    }
    ck_layer *L = &m->layers[layer];
    switch (kind) {
    case CK_T_ATTN_NORM: return &L->attn_norm;
    case CK_T_WQ: return &L->wq;
    case CK_T_WK: return &L->wk;
    case CK_T_WV: return &L->wv;
    case CK_T_WO: return &L->wo;
    case CK_T_BQ: return &L->bq;
    case CK_T_BK: return &L->bk;
    case CK_T_BV: return &L->bv;
    case CK_T_Q_NORM: return &L->q_norm;
    case CK_T_K_NORM: return &L->k_norm;
    case CK_T_FFN_NORM: return &L->ffn_norm;
    case CK_T_W_GATE: return &L->w_gate;
    case CK_T_W_UP: return &L->w_up;
    case CK_T_W_DOWN: return &L->w_down;
    default: return NULL;
    }
}

/* ---------------------------------------------------------------- config */

#define CK_MAX_DIM (1 << 24)

static int finite_pos(float x) {
    return isfinite(x) && x > 0.0f;
}

int ck_validate_config(const ck_config *c, char *err, size_t n) {
#define BAD(...) do { snprintf(err, n, __VA_ARGS__); return 0; } while (0)
    if (!c) BAD("config is NULL");
    if (c->n_layers < 1 || c->n_layers > 4096) BAD("n_layers %d out of range [1, 4096]", c->n_layers);
    if (c->hidden < 1 || c->hidden > CK_MAX_DIM) BAD("hidden %d out of range", c->hidden);
    if (c->n_heads < 1 || c->n_heads > 65536) BAD("n_heads %d out of range", c->n_heads);
    if (c->n_kv_heads < 1 || c->n_kv_heads > c->n_heads) BAD("n_kv_heads %d out of range [1, n_heads]", c->n_kv_heads);
    if (c->n_heads % c->n_kv_heads != 0)
        BAD("n_heads (%d) must be a multiple of n_kv_heads (%d)", c->n_heads, c->n_kv_heads);
    if (c->head_dim < 2 || c->head_dim % 2 != 0 || c->head_dim > 4096) BAD("head_dim %d must be even, in [2, 4096]", c->head_dim);
    if ((int64_t)c->n_heads * c->head_dim > CK_MAX_DIM) BAD("n_heads * head_dim too large");
    if (c->ffn_hidden < 1 || c->ffn_hidden > CK_MAX_DIM) BAD("ffn_hidden %d out of range", c->ffn_hidden);
    if (c->vocab < 2 || c->vocab > CK_MAX_DIM) BAD("vocab %d out of range", c->vocab);
    if (c->max_context < 1 || c->max_context > CK_MAX_DIM) BAD("max_context %d out of range", c->max_context);
    if (!finite_pos(c->rms_eps)) BAD("rms_eps must be positive");
    if (!finite_pos(c->rope_theta)) BAD("rope_theta must be positive");
    switch (c->rope_scaling) {
    case CK_ROPE_NONE:
        break;
    case CK_ROPE_LINEAR:
        if (!finite_pos(c->rope_factor)) BAD("rope_factor must be positive for LINEAR scaling");
        break;
    case CK_ROPE_LLAMA3:
        if (!finite_pos(c->rope_factor) || !finite_pos(c->rope_low_freq_factor) || !finite_pos(c->rope_high_freq_factor))
            BAD("LLAMA3 scaling needs positive factor, low_freq_factor, high_freq_factor");
        if (!(c->rope_high_freq_factor > c->rope_low_freq_factor)) BAD("LLAMA3 scaling needs high_freq_factor > low_freq_factor");
        if (c->rope_original_context < 1) BAD("LLAMA3 scaling needs rope_original_context >= 1");
        break;
    default:
        BAD("rope_scaling %d unknown", c->rope_scaling);
    }
    if ((c->tied_embeddings | c->qk_norm | c->attn_bias) & ~1) BAD("tied_embeddings, qk_norm and attn_bias must be 0 or 1");
    return 1;
#undef BAD
}

/* inv_freq[i] = theta^(-2i/head_dim), then scaled (Hugging Face's rope_init_fns, in f32). */
void ck_rope_freqs(const ck_config *c, float *inv_freq) {
    const int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        float f = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->head_dim);
        if (c->rope_scaling == CK_ROPE_LINEAR) {
            f /= c->rope_factor;
        } else if (c->rope_scaling == CK_ROPE_LLAMA3) {
            float factor = c->rope_factor, lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor;
            float old_ctx = (float)c->rope_original_context;
            float low_freq_wavelen = old_ctx / lo, high_freq_wavelen = old_ctx / hi;
            float wavelen = 2.0f * (float)M_PI / f;
            float scaled = wavelen > low_freq_wavelen ? f / factor : f;
            if (!(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen)) {
                float smooth = (old_ctx / wavelen - lo) / (hi - lo);
                scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
            }
            f = scaled;
        }
        inv_freq[i] = f;
    }
}

/* ---------------------------------------------------------------- ABI: build info */

CK_API int32_t ck_abi_version(void) {
    return CK_ABI_VERSION;
}

CK_API const char *ck_backend_name(void) {
    return ck_be_name();
}

CK_API int32_t ck_backend_available(void) {
    return ck_be_available();
}

CK_API const char *ck_last_error(const ck_model *m) {
    return m ? m->err : tls_err;
}

CK_API int64_t ck_model_peak_bytes(const ck_model *m) {
    return m ? m->peak_bytes : 0;
}

/* ---------------------------------------------------------------- ABI: model */

static void free_tensor(ck_model *m, ck_tensor *t) {
    if (t->host) ck_free(m, t->host, (size_t)t->n_bytes);
    t->host = NULL;
}

static void free_seq_gen(ck_model *m, ck_seq_state *s) {
    ck_free(m, s->gen, (size_t)s->cap_gen * sizeof(int32_t));
    s->gen = NULL;
    s->n_gen = s->cap_gen = 0;
}

CK_API void ck_model_free(ck_model *m) {
    if (!m) return;
    ck_be_free(m);
    free_tensor(m, &m->token_embd);
    free_tensor(m, &m->output_norm);
    free_tensor(m, &m->output);
    if (m->layers) {
        for (int32_t l = 0; l < m->cfg.n_layers; l++)
            for (int32_t k = CK_T_ATTN_NORM; k < CK_N_KINDS; k++) free_tensor(m, slot(m, k, l));
        free(m->layers);
    }
    free(m->inv_freq);
    if (m->seqs)
        for (int32_t s = 0; s < m->max_seqs; s++) free_seq_gen(m, &m->seqs[s]);
    free(m->seqs);
    free(m->block_table);
    free(m->free_blocks);
    free(m->tok_pos);
    free(m->tok_entry);
    free(m->logit_tok);
    free(m->plan_entries);
    free(m->sample_buf);
    free(m->sample_idx);
    free(m->sample_counts);
    free(m);
}

CK_API int ck_model_create(const ck_config *config, int32_t n_threads, ck_model **out) {
    tls_err[0] = 0;
    if (!out) return ck_fail(NULL, CK_E_INVALID, "out is NULL");
    *out = NULL;
    if (!ck_validate_config(config, tls_err, CK_ERR_LEN)) return CK_E_INVALID;
    if (n_threads < 0 || n_threads > 1024) return ck_fail(NULL, CK_E_INVALID, "n_threads %d out of range [0, 1024]", n_threads);

    ck_model *m = calloc(1, sizeof(ck_model));
    if (!m) return ck_fail(NULL, CK_E_NOMEM, "out of host memory");
    m->cfg = *config;
    m->n_threads = n_threads;
    ck_account(m, sizeof(ck_model));
    m->layers = calloc((size_t)config->n_layers, sizeof(ck_layer));
    m->inv_freq = calloc((size_t)config->head_dim / 2, sizeof(float));
    if (!m->layers || !m->inv_freq) {
        ck_model_free(m);
        return ck_fail(NULL, CK_E_NOMEM, "out of host memory");
    }
    ck_account(m, (int64_t)config->n_layers * sizeof(ck_layer) + config->head_dim / 2 * 4);
    ck_rope_freqs(config, m->inv_freq);

    int st = ck_be_create(m);
    if (st != CK_OK) {
        snprintf(tls_err, CK_ERR_LEN, "%s", m->err);
        ck_model_free(m);
        return st;
    }
    *out = m;
    return CK_OK;
}

CK_API int ck_model_set_tensor(ck_model *m, ck_tensor_kind kind, int32_t layer, ck_dtype dtype,
                               const void *data, int64_t n_bytes) {
    if (!m) return ck_fail(NULL, CK_E_INVALID, "model is NULL");
    m->err[0] = 0;
    if (m->finalized) return ck_fail(m, CK_E_STATE, "the model is finalized; tensors can no longer be set");
    if ((int)kind < 0 || (int)kind >= CK_N_KINDS) return ck_fail(m, CK_E_INVALID, "tensor kind %d unknown", (int)kind);
    const char *name = ck_kind_name(kind);
    if (per_layer(kind)) {
        if (layer < 0 || layer >= m->cfg.n_layers)
            return ck_fail(m, CK_E_INVALID, "%s: layer %d out of range [0, %d)", name, layer, m->cfg.n_layers);
    } else if (layer != 0 && layer != -1) {
        return ck_fail(m, CK_E_INVALID, "%s is not per layer; layer must be 0 or -1, got %d", name, layer);
    }
    if (!needed(&m->cfg, kind)) return ck_fail(m, CK_E_INVALID, "%s: this model's config has no such tensor", name);
    if ((int)dtype < CK_F32 || (int)dtype > CK_Q8_0) return ck_fail(m, CK_E_INVALID, "%s: dtype %d unknown", name, (int)dtype);
    if (is_vector(kind) && dtype != CK_F32)
        return ck_fail(m, CK_E_INVALID, "%s: norm weights and biases must be F32, got %s", name, ck_dtype_name(dtype));
    int64_t rows, cols;
    ck_tensor_shape(&m->cfg, kind, &rows, &cols);
    int64_t row_bytes = ck_dtype_row_bytes(dtype, cols);
    if (row_bytes < 0)
        return ck_fail(m, CK_E_INVALID, "%s: Q8_0 needs in_features %% 32 == 0, got %lld", name, (long long)cols);
    int64_t expect = rows * row_bytes;
    if (n_bytes != expect)
        return ck_fail(m, CK_E_INVALID, "%s: [%lld][%lld] %s takes %lld bytes, got %lld", name, (long long)rows,
                       (long long)cols, ck_dtype_name(dtype), (long long)expect, (long long)n_bytes);
    if (!data) return ck_fail(m, CK_E_INVALID, "%s: data is NULL", name);
    if ((uint64_t)n_bytes > SIZE_MAX / 2) return ck_fail(m, CK_E_NOMEM, "%s: too large", name);

    void *copy = ck_alloc(m, (size_t)n_bytes);
    if (!copy) return ck_fail(m, CK_E_NOMEM, "%s: out of host memory (%lld bytes)", name, (long long)n_bytes);
    memcpy(copy, data, (size_t)n_bytes);
    ck_tensor *t = slot(m, kind, per_layer(kind) ? layer : 0);
    free_tensor(m, t);
    t->host = copy;
    t->dtype = dtype;
    t->rows = rows;
    t->cols = cols;
    t->n_bytes = n_bytes;
    t->present = 1;
    return CK_OK;
}

CK_API int ck_model_finalize(ck_model *m) {
    if (!m) return ck_fail(NULL, CK_E_INVALID, "model is NULL");
    m->err[0] = 0;
    if (m->finalized) return ck_fail(m, CK_E_STATE, "the model is already finalized");
    for (int32_t k = 0; k < CK_N_KINDS; k++) {
        if (!needed(&m->cfg, k)) continue;
        int32_t n = per_layer(k) ? m->cfg.n_layers : 1;
        for (int32_t l = 0; l < n; l++)
            if (!slot(m, k, l)->present) {
                if (per_layer(k)) return ck_fail(m, CK_E_INVALID, "tensor %s of layer %d is missing", ck_kind_name(k), l);
                return ck_fail(m, CK_E_INVALID, "tensor %s is missing", ck_kind_name(k));
            }
    }
    int st = ck_be_finalize(m);
    if (st != CK_OK) return st;
    m->finalized = 1;
    return CK_OK;
}

/* ---------------------------------------------------------------- ABI: KV cache */

static int64_t kv_bytes(const ck_config *c, int32_t n_blocks, int32_t block_tokens) {
    double d = (double)c->n_layers * 2 * n_blocks * block_tokens * c->n_kv_heads * c->head_dim * ck_be_kv_elem_bytes();
    if (d > 9.0e18) return -1;
    return (int64_t)c->n_layers * 2 * n_blocks * block_tokens * c->n_kv_heads * c->head_dim * ck_be_kv_elem_bytes();
}

CK_API int64_t ck_kv_bytes(const ck_config *config, int32_t n_blocks, int32_t block_tokens) {
    char err[CK_ERR_LEN];
    if (!ck_validate_config(config, err, sizeof err) || n_blocks < 1 || block_tokens < 1) return -1;
    return kv_bytes(config, n_blocks, block_tokens);
}

CK_API int32_t ck_kv_free_blocks(const ck_model *m) {
    if (!m) return -1;
    return m->kv_ready ? m->n_free : 0;
}

CK_API int ck_kv_init(ck_model *m, int32_t n_blocks, int32_t block_tokens, int32_t max_seqs) {
    if (!m) return ck_fail(NULL, CK_E_INVALID, "model is NULL");
    m->err[0] = 0;
    if (!m->finalized) return ck_fail(m, CK_E_STATE, "ck_kv_init before ck_model_finalize");
    if (m->kv_ready) return ck_fail(m, CK_E_STATE, "the KV cache is already initialised");
    if (n_blocks < 1 || block_tokens < 1 || max_seqs < 1)
        return ck_fail(m, CK_E_INVALID, "n_blocks (%d), block_tokens (%d) and max_seqs (%d) must be positive", n_blocks,
                       block_tokens, max_seqs);
    int32_t per_seq = (int32_t)(((int64_t)m->cfg.max_context + block_tokens - 1) / block_tokens);
    if (kv_bytes(&m->cfg, n_blocks, block_tokens) < 0 || (int64_t)n_blocks * block_tokens > INT32_MAX ||
        (int64_t)max_seqs * per_seq > (1ll << 31) / 4)
        return ck_fail(m, CK_E_INVALID, "KV cache too large: %d blocks of %d tokens for %d sequences", n_blocks,
                       block_tokens, max_seqs);

    const int32_t V = m->cfg.vocab;
    int32_t *table = malloc((size_t)max_seqs * per_seq * sizeof(int32_t));
    int32_t *free_blocks = malloc((size_t)n_blocks * sizeof(int32_t));
    ck_seq_state *seqs = calloc((size_t)max_seqs, sizeof(ck_seq_state));
    float *sbuf = malloc((size_t)V * sizeof(float));
    int32_t *sidx = malloc((size_t)V * sizeof(int32_t));
    int32_t *scnt = calloc((size_t)V, sizeof(int32_t));
    if (!table || !free_blocks || !seqs || !sbuf || !sidx || !scnt) {
        free(table), free(free_blocks), free(seqs), free(sbuf), free(sidx), free(scnt);
        return ck_fail(m, CK_E_NOMEM, "out of host memory for the KV cache's tables");
    }
    for (int64_t i = 0; i < (int64_t)max_seqs * per_seq; i++) table[i] = -1;
    for (int32_t i = 0; i < n_blocks; i++) free_blocks[i] = n_blocks - 1 - i; /* block 0 on top */

    m->n_blocks = n_blocks;
    m->block_tokens = block_tokens;
    m->max_seqs = max_seqs;
    m->max_blocks_per_seq = per_seq;
    int st = ck_be_kv_init(m);
    if (st != CK_OK) {
        free(table), free(free_blocks), free(seqs), free(sbuf), free(sidx), free(scnt);
        m->n_blocks = m->block_tokens = m->max_seqs = m->max_blocks_per_seq = 0;
        return st;
    }
    m->block_table = table;
    m->free_blocks = free_blocks;
    m->n_free = n_blocks;
    m->seqs = seqs;
    m->sample_buf = sbuf;
    m->sample_idx = sidx;
    m->sample_counts = scnt;
    ck_account(m, (int64_t)max_seqs * per_seq * 4 + (int64_t)n_blocks * 4 + (int64_t)max_seqs * sizeof(ck_seq_state) +
                      (int64_t)V * 12);
    m->kv_ready = 1;
    return CK_OK;
}

/* Returns a sequence's blocks to the free stack and forgets it. */
static void release_seq(ck_model *m, int32_t seq) {
    ck_seq_state *s = &m->seqs[seq];
    int32_t *row = m->block_table + (int64_t)seq * m->max_blocks_per_seq;
    for (int32_t i = s->n_blocks - 1; i >= 0; i--) {
        m->free_blocks[m->n_free++] = row[i];
        row[i] = -1;
    }
    s->n_blocks = 0;
    s->len = 0;
    s->n_gen = 0;
}

CK_API int ck_seq_free(ck_model *m, int32_t seq) {
    if (!m) return ck_fail(NULL, CK_E_INVALID, "model is NULL");
    m->err[0] = 0;
    if (!m->kv_ready) return ck_fail(m, CK_E_STATE, "ck_seq_free before ck_kv_init");
    if (seq < 0 || seq >= m->max_seqs) return ck_fail(m, CK_E_INVALID, "seq %d out of range [0, %d)", seq, m->max_seqs);
    release_seq(m, seq);
    free_seq_gen(m, &m->seqs[seq]);
    return CK_OK;
}

/* ---------------------------------------------------------------- ABI: step */

static int grow(void **p, int64_t n, size_t elem) {
    void *q = realloc(*p, (size_t)(n > 0 ? n : 1) * elem);
    if (!q) return 0;
    *p = q;
    return 1;
}

/* Makes the step scratch big enough for T tokens and E entries; changes nothing visible. */
static int reserve_plan(ck_model *m, int32_t T, int32_t E) {
    if (T > m->plan_cap_tokens) {
        int32_t cap = T > 2 * m->plan_cap_tokens ? T : 2 * m->plan_cap_tokens;
        if (!grow((void **)&m->tok_pos, cap, 4) || !grow((void **)&m->tok_entry, cap, 4)) return 0;
        ck_account(m, (int64_t)(cap - m->plan_cap_tokens) * 8);
        m->plan_cap_tokens = cap;
    }
    if (E > m->plan_cap_entries) {
        int32_t cap = E;
        if (!grow((void **)&m->logit_tok, cap, 4) || !grow((void **)&m->plan_entries, cap, sizeof(ck_plan_entry)))
            return 0;
        ck_account(m, (int64_t)(cap - m->plan_cap_entries) * (4 + sizeof(ck_plan_entry)));
        m->plan_cap_entries = cap;
    }
    return 1;
}

static int32_t blocks_for(const ck_model *m, int64_t tokens) {
    return (int32_t)((tokens + m->block_tokens - 1) / m->block_tokens);
}

static int sampling_ok(const ck_sampling *s) {
    return isfinite(s->temperature) && s->temperature >= 0.0f && !isnan(s->top_p) && s->top_p >= 0.0f &&
           s->top_k >= 0 && isfinite(s->presence_penalty) && isfinite(s->frequency_penalty);
}

CK_API int ck_step(ck_model *m, ck_batch *b) {
    if (!m) return ck_fail(NULL, CK_E_INVALID, "model is NULL");
    m->err[0] = 0;
    if (!m->finalized) return ck_fail(m, CK_E_STATE, "ck_step before ck_model_finalize");
    if (!m->kv_ready) return ck_fail(m, CK_E_STATE, "ck_step before ck_kv_init");
    if (!b) return ck_fail(m, CK_E_INVALID, "batch is NULL");
    const int32_t E = b->n_entries;
    if (E < 0 || E > m->max_seqs) return ck_fail(m, CK_E_INVALID, "n_entries %d out of range [0, %d]", E, m->max_seqs);
    if (E == 0) return CK_OK;
    if (!b->entries || !b->tokens) return ck_fail(m, CK_E_INVALID, "entries and tokens must not be NULL");

    /* 1. check every entry, count tokens, blocks and samples; touch nothing */
    if (++m->step_stamp == 0) { /* wrapped: clear the markers */
        for (int32_t i = 0; i < m->max_seqs; i++) m->seqs[i].stamp = 0;
        m->step_stamp = 1;
    }
    int64_t T = 0;
    int32_t n_sample = 0;
    int64_t need = 0, avail = m->n_free;
    for (int32_t e = 0; e < E; e++) {
        const ck_seq_entry *en = &b->entries[e];
        if (en->seq < 0 || en->seq >= m->max_seqs)
            return ck_fail(m, CK_E_INVALID, "entry %d: seq %d out of range [0, %d)", e, en->seq, m->max_seqs);
        ck_seq_state *s = &m->seqs[en->seq];
        if (s->stamp == m->step_stamp) return ck_fail(m, CK_E_INVALID, "entry %d: seq %d appears twice", e, en->seq);
        s->stamp = m->step_stamp; /* a marker only: harmless if the step fails */
        if (en->pos < 0 || (en->pos != 0 && en->pos != s->len))
            return ck_fail(m, CK_E_INVALID, "entry %d: seq %d holds %d tokens, pos %d must be 0 or that", e, en->seq, s->len, en->pos);
        if (en->n_tokens < 1 || (int64_t)en->pos + en->n_tokens > m->cfg.max_context)
            return ck_fail(m, CK_E_INVALID, "entry %d: n_tokens %d at pos %d does not fit max_context %d", e, en->n_tokens,
                           en->pos, m->cfg.max_context);
        if (en->sample != 0 && en->sample != 1) return ck_fail(m, CK_E_INVALID, "entry %d: sample must be 0 or 1", e);
        if (en->sample) {
            if (!sampling_ok(&en->sampling))
                return ck_fail(m, CK_E_INVALID, "entry %d: sampling needs temperature >= 0, top_p >= 0, top_k >= 0 and finite penalties", e);
            n_sample++;
        }
        int32_t held = en->pos == 0 ? 0 : s->n_blocks;
        if (en->pos == 0) avail += s->n_blocks;
        need += blocks_for(m, (int64_t)en->pos + en->n_tokens) - held;
        T += en->n_tokens;
    }
    if (T > INT32_MAX / 2) return ck_fail(m, CK_E_INVALID, "too many tokens in one step (%lld)", (long long)T);
    if (n_sample > 0 && !b->out_tokens) return ck_fail(m, CK_E_INVALID, "out_tokens is NULL but entries sample");
    for (int64_t i = 0; i < T; i++)
        if (b->tokens[i] < 0 || b->tokens[i] >= m->cfg.vocab)
            return ck_fail(m, CK_E_INVALID, "token %d at index %lld out of range [0, %d)", b->tokens[i], (long long)i, m->cfg.vocab);
    if (need > avail)
        return ck_fail(m, CK_E_CAPACITY, "KV cache full: the step needs %lld more blocks, %lld are free", (long long)need,
                       (long long)avail);

    /* 2. make room for everything that can fail, still touching nothing */
    const int32_t n_logits = b->out_logits ? E : n_sample;
    if (!reserve_plan(m, (int32_t)T, E)) return ck_fail(m, CK_E_NOMEM, "out of host memory for the step's plan");
    for (int32_t e = 0; e < E; e++) {
        const ck_seq_entry *en = &b->entries[e];
        ck_seq_state *s = &m->seqs[en->seq];
        int32_t want = (en->pos == 0 ? 0 : s->n_gen) + 1;
        if (en->sample && want > s->cap_gen) {
            int32_t cap = want < 16 ? 16 : 2 * want;
            int32_t *g = ck_alloc(m, (size_t)cap * sizeof(int32_t));
            if (!g) return ck_fail(m, CK_E_NOMEM, "out of host memory for sampling state");
            if (s->n_gen) memcpy(g, s->gen, (size_t)s->n_gen * sizeof(int32_t));
            ck_free(m, s->gen, (size_t)s->cap_gen * sizeof(int32_t));
            s->gen = g;
            s->cap_gen = cap;
        }
    }
    int st = ck_be_reserve(m, (int32_t)T, n_logits);
    if (st != CK_OK) return st;

    /* 3. commit: restart sequences at pos 0, hand out blocks, build the plan */
    int32_t t = 0, nl = 0;
    for (int32_t e = 0; e < E; e++) {
        const ck_seq_entry *en = &b->entries[e];
        ck_seq_state *s = &m->seqs[en->seq];
        if (en->pos == 0) {
            release_seq(m, en->seq);
            ck_rng_seed(&s->rng, en->sampling.seed);
        }
        int32_t *row = m->block_table + (int64_t)en->seq * m->max_blocks_per_seq;
        int32_t want = blocks_for(m, (int64_t)en->pos + en->n_tokens);
        while (s->n_blocks < want) row[s->n_blocks++] = m->free_blocks[--m->n_free];

        m->plan_entries[e] = (ck_plan_entry){en->seq, en->pos, en->n_tokens, t};
        for (int32_t i = 0; i < en->n_tokens; i++, t++) {
            m->tok_pos[t] = en->pos + i;
            m->tok_entry[t] = e;
        }
        if (b->out_logits || en->sample) m->logit_tok[nl++] = t - 1;
    }
    ck_plan plan = {(int32_t)T, b->tokens, m->tok_pos, m->tok_entry, E, m->plan_entries, n_logits, m->logit_tok};

    /* 4. compute */
    const float *logits = NULL;
    st = ck_be_forward(m, &plan, &logits);
    if (st != CK_OK) return st;

    /* 5. sample and report */
    nl = 0;
    for (int32_t e = 0; e < E; e++) {
        const ck_seq_entry *en = &b->entries[e];
        ck_seq_state *s = &m->seqs[en->seq];
        s->len = en->pos + en->n_tokens;
        int32_t token = -1;
        if (b->out_logits || en->sample) {
            const float *row = logits + (int64_t)nl++ * m->cfg.vocab;
            if (b->out_logits) memcpy(b->out_logits + (int64_t)e * m->cfg.vocab, row, (size_t)m->cfg.vocab * sizeof(float));
            if (en->sample) {
                token = ck_sample(m, s, &en->sampling, row);
                s->gen[s->n_gen++] = token;
            }
        }
        if (b->out_tokens) b->out_tokens[e] = token;
    }
    return CK_OK;
}
