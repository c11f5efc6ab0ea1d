/*
 * ck_testutil.h: what the C tests and the benchmark share: random models in any dtype, built
 * through the ABI (directly or through function pointers from dlopen), and an independent,
 * naive reference forward pass over dense f32 weights that recomputes every position from
 * scratch (no KV cache), to check the libraries against.
 */
#ifndef CK_TESTUTIL_H
#define CK_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cocoon_kernels.h"
#include "ck_internal.h"

/* Each test program counts its checks and ends with "N passed, M failed". */
static int passed __attribute__((unused)), failed __attribute__((unused));

#define CHECK(cond, ...)                                \
    do {                                                \
        if (cond) {                                     \
            passed++;                                   \
        } else {                                        \
            failed++;                                   \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                        \
            printf("\n");                               \
        }                                               \
    } while (0)

/* ---------------------------------------------------------------- random numbers */

typedef struct {
    uint64_t s;
} trng;

static inline uint64_t trng_next(trng *r) {
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}

/* uniform in [-1, 1) */
static inline float trng_sym(trng *r) {
    return (float)((double)(trng_next(r) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

static inline trng trng_make(uint64_t seed) {
    trng r = {seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull};
    for (int i = 0; i < 4; i++) trng_next(&r);
    return r;
}

/* ---------------------------------------------------------------- configs */

static inline ck_config tu_config(int layers, int hidden, int heads, int kv_heads, int head_dim, int ffn, int vocab,
                                  int ctx) {
    ck_config c;
    memset(&c, 0, sizeof c);
    c.n_layers = layers;
    c.hidden = hidden;
    c.n_heads = heads;
    c.n_kv_heads = kv_heads;
    c.head_dim = head_dim;
    c.ffn_hidden = ffn;
    c.vocab = vocab;
    c.max_context = ctx;
    c.rms_eps = 1e-6f;
    c.rope_theta = 10000.0f;
    c.rope_scaling = CK_ROPE_NONE;
    c.rope_factor = 1.0f;
    c.rope_low_freq_factor = 1.0f;
    c.rope_high_freq_factor = 1.0f;
    return c;
}

/* ---------------------------------------------------------------- random weights */

typedef int (*tu_set_fn)(ck_model *, ck_tensor_kind, int32_t, ck_dtype, const void *, int64_t);

/* Dense f32 copies of exactly the weights a model was given (after its dtype's rounding). */
typedef struct {
    ck_config c;
    float *t[CK_N_KINDS];   /* global tensors (TOKEN_EMBD, OUTPUT_NORM, OUTPUT) */
    float **lt[CK_N_KINDS]; /* per layer [n_layers] */
} tu_weights;

static inline int tu_needed(const ck_config *c, int kind) {
    if (kind == CK_T_OUTPUT) return !c->tied_embeddings;
    if (kind == CK_T_BQ || kind == CK_T_BK || kind == CK_T_BV) return c->attn_bias;
    if (kind == CK_T_Q_NORM || kind == CK_T_K_NORM) return c->qk_norm;
    return 1;
}

static inline int tu_is_vector(int kind) {
    return kind == CK_T_OUTPUT_NORM || kind == CK_T_ATTN_NORM || kind == CK_T_FFN_NORM || kind == CK_T_BQ ||
           kind == CK_T_BK || kind == CK_T_BV || kind == CK_T_Q_NORM || kind == CK_T_K_NORM;
}

/* f32 values -> bytes of dtype (n a multiple of cols; Q8_0 per row). Returns malloc'd bytes. */
static inline void *tu_encode(const float *v, int64_t rows, int64_t cols, int dtype, int64_t *n_bytes) {
    int64_t rb = ck_dtype_row_bytes(dtype, cols);
    uint8_t *out = malloc((size_t)(rows * rb));
    for (int64_t r = 0; r < rows; r++) {
        const float *src = v + r * cols;
        uint8_t *dst = out + r * rb;
        for (int64_t i = 0; i < cols; i++) {
            uint16_t h;
            switch (dtype) {
            case CK_F32: memcpy(dst + 4 * i, &src[i], 4); break;
            case CK_F16: h = ck_f32_to_f16(src[i]); memcpy(dst + 2 * i, &h, 2); break;
            case CK_BF16: h = ck_f32_to_bf16(src[i]); memcpy(dst + 2 * i, &h, 2); break;
            default: break;
            }
        }
        if (dtype == CK_Q8_0) ck_quantize_q8_0(src, dst, cols);
    }
    *n_bytes = rows * rb;
    return out;
}

/* Generates every tensor the config needs (deterministic in seed), sets it through `set` in
 * `dtype` (vectors in F32) and, when w is not NULL, keeps its dequantised f32 copy there. */
static inline int tu_fill(tu_set_fn set, ck_model *m, const ck_config *c, int dtype, uint64_t seed, tu_weights *w) {
    if (w) {
        memset(w, 0, sizeof *w);
        w->c = *c;
    }
    for (int kind = 0; kind < CK_N_KINDS; kind++) {
        if (!tu_needed(c, kind)) continue;
        int per_layer = kind >= CK_T_ATTN_NORM;
        int n_layers = per_layer ? c->n_layers : 1;
        if (w && per_layer) w->lt[kind] = calloc((size_t)n_layers, sizeof(float *));
        for (int l = 0; l < n_layers; l++) {
            int64_t rows, cols;
            ck_tensor_shape(c, kind, &rows, &cols);
            trng r = trng_make(seed * 1000003ull + (uint64_t)kind * 131ull + (uint64_t)l);
            float *v = malloc((size_t)(rows * cols) * sizeof(float));
            float gain = kind == CK_T_TOKEN_EMBD ? 0.3f : 1.0f / sqrtf((float)cols);
            if (kind == CK_T_W_DOWN || kind == CK_T_WO) gain *= 0.5f;
            for (int64_t i = 0; i < rows * cols; i++) {
                float u = trng_sym(&r);
                if (kind == CK_T_OUTPUT_NORM || kind == CK_T_ATTN_NORM || kind == CK_T_FFN_NORM ||
                    kind == CK_T_Q_NORM || kind == CK_T_K_NORM)
                    v[i] = 1.0f + 0.2f * u;
                else if (kind == CK_T_BQ || kind == CK_T_BK || kind == CK_T_BV)
                    v[i] = 0.2f * u;
                else
                    v[i] = gain * 1.7f * u;
            }
            int dt = tu_is_vector(kind) ? CK_F32 : dtype;
            int64_t n_bytes;
            void *bytes = tu_encode(v, rows, cols, dt, &n_bytes);
            int st = set(m, (ck_tensor_kind)kind, per_layer ? l : 0, (ck_dtype)dt, bytes, n_bytes);
            if (w) {
                for (int64_t i = 0; i < rows; i++)
                    ck_row_to_f32((uint8_t *)bytes + i * ck_dtype_row_bytes(dt, cols), dt, cols, v + i * cols);
                if (per_layer) w->lt[kind][l] = v;
                else w->t[kind] = v;
            } else {
                free(v);
            }
            free(bytes);
            if (st != CK_OK) return st;
        }
    }
    return CK_OK;
}

static inline void tu_weights_free(tu_weights *w) {
    for (int k = 0; k < CK_N_KINDS; k++) {
        free(w->t[k]);
        if (w->lt[k]) {
            for (int l = 0; l < w->c.n_layers; l++) free(w->lt[k][l]);
            free(w->lt[k]);
        }
    }
}

/* ---------------------------------------------------------------- reference forward */

static inline void ref_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    double scale = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) out[i] = (float)(x[i] * scale) * w[i];
}

static inline void ref_matvec(float *y, const float *W, const float *x, int rows, int cols) {
    for (int o = 0; o < rows; o++) {
        double s = 0;
        for (int i = 0; i < cols; i++) s += (double)W[(int64_t)o * cols + i] * x[i];
        y[o] = (float)s;
    }
}

/* HF rope_init_fns, in double */
static inline void ref_inv_freq(const ck_config *c, double *f) {
    for (int i = 0; i < c->head_dim / 2; i++) {
        double v = 1.0 / pow(c->rope_theta, 2.0 * i / c->head_dim);
        if (c->rope_scaling == CK_ROPE_LINEAR) v /= c->rope_factor;
        if (c->rope_scaling == CK_ROPE_LLAMA3) {
            double lo_w = c->rope_original_context / c->rope_low_freq_factor;
            double hi_w = c->rope_original_context / c->rope_high_freq_factor;
            double wl = 2 * M_PI / v;
            if (wl > lo_w) v = v / c->rope_factor;
            else if (wl >= hi_w) {
                double sm = (c->rope_original_context / wl - c->rope_low_freq_factor) /
                            (c->rope_high_freq_factor - c->rope_low_freq_factor);
                v = (1 - sm) * v / c->rope_factor + sm * v;
            }
        }
        f[i] = v;
    }
}

static inline void ref_rope(float *v, int heads, int hd, int pos, const double *inv) {
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < hd / 2; i++) {
            double a = pos * inv[i], c = cos(a), s = sin(a);
            float *p = v + h * hd;
            double x1 = p[i], x2 = p[i + hd / 2];
            p[i] = (float)(x1 * c - x2 * s);
            p[i + hd / 2] = (float)(x2 * c + x1 * s);
        }
}

/* logits [vocab] after the last of tokens[0..n), recomputing everything from position 0 */
static inline void ref_forward(const tu_weights *w, const int32_t *tokens, int n, float *logits) {
    const ck_config *c = &w->c;
    const int D = c->hidden, hd = c->head_dim, H = c->n_heads, KH = c->n_kv_heads, F = c->ffn_hidden;
    const int QD = H * hd, KVD = KH * hd;
    float *x = calloc((size_t)n * D, 4), *xb = calloc((size_t)(D > QD ? D : QD), 4);
    float *K = calloc((size_t)n * KVD, 4), *V = calloc((size_t)n * KVD, 4), *Q = calloc((size_t)n * QD, 4);
    float *att = calloc((size_t)QD, 4), *o = calloc((size_t)D, 4), *g = calloc((size_t)F, 4), *u = calloc((size_t)F, 4);
    double *inv = calloc((size_t)hd / 2, sizeof(double)), *sc = calloc((size_t)n, sizeof(double));
    ref_inv_freq(c, inv);
    for (int t = 0; t < n; t++) memcpy(x + (int64_t)t * D, w->t[CK_T_TOKEN_EMBD] + (int64_t)tokens[t] * D, (size_t)D * 4);
    for (int l = 0; l < c->n_layers; l++) {
        for (int t = 0; t < n; t++) {
            ref_rmsnorm(xb, x + t * D, w->lt[CK_T_ATTN_NORM][l], D, c->rms_eps);
            ref_matvec(Q + t * QD, w->lt[CK_T_WQ][l], xb, QD, D);
            ref_matvec(K + t * KVD, w->lt[CK_T_WK][l], xb, KVD, D);
            ref_matvec(V + t * KVD, w->lt[CK_T_WV][l], xb, KVD, D);
            if (c->attn_bias) {
                for (int i = 0; i < QD; i++) Q[t * QD + i] += w->lt[CK_T_BQ][l][i];
                for (int i = 0; i < KVD; i++) K[t * KVD + i] += w->lt[CK_T_BK][l][i];
                for (int i = 0; i < KVD; i++) V[t * KVD + i] += w->lt[CK_T_BV][l][i];
            }
            if (c->qk_norm) {
                for (int h = 0; h < H; h++) ref_rmsnorm(Q + t * QD + h * hd, Q + t * QD + h * hd, w->lt[CK_T_Q_NORM][l], hd, c->rms_eps);
                for (int h = 0; h < KH; h++) ref_rmsnorm(K + t * KVD + h * hd, K + t * KVD + h * hd, w->lt[CK_T_K_NORM][l], hd, c->rms_eps);
            }
            ref_rope(Q + t * QD, H, hd, t, inv);
            ref_rope(K + t * KVD, KH, hd, t, inv);
        }
        for (int t = 0; t < n; t++) {
            for (int h = 0; h < H; h++) {
                int kh = h / (H / KH);
                double max = -1e300, sum = 0;
                for (int j = 0; j <= t; j++) {
                    double s = 0;
                    for (int i = 0; i < hd; i++) s += (double)Q[t * QD + h * hd + i] * K[j * KVD + kh * hd + i];
                    sc[j] = s / sqrt((double)hd);
                    if (sc[j] > max) max = sc[j];
                }
                for (int j = 0; j <= t; j++) sum += (sc[j] = exp(sc[j] - max));
                for (int i = 0; i < hd; i++) {
                    double a = 0;
                    for (int j = 0; j <= t; j++) a += sc[j] / sum * V[j * KVD + kh * hd + i];
                    att[h * hd + i] = (float)a;
                }
            }
            ref_matvec(o, w->lt[CK_T_WO][l], att, D, QD);
            for (int i = 0; i < D; i++) x[t * D + i] += o[i];
            ref_rmsnorm(xb, x + t * D, w->lt[CK_T_FFN_NORM][l], D, c->rms_eps);
            ref_matvec(g, w->lt[CK_T_W_GATE][l], xb, F, D);
            ref_matvec(u, w->lt[CK_T_W_UP][l], xb, F, D);
            for (int i = 0; i < F; i++) g[i] = (float)(g[i] / (1.0 + exp(-(double)g[i])) * u[i]);
            ref_matvec(o, w->lt[CK_T_W_DOWN][l], g, D, F);
            for (int i = 0; i < D; i++) x[t * D + i] += o[i];
        }
    }
    ref_rmsnorm(xb, x + (int64_t)(n - 1) * D, w->t[CK_T_OUTPUT_NORM], D, c->rms_eps);
    ref_matvec(logits, c->tied_embeddings ? w->t[CK_T_TOKEN_EMBD] : w->t[CK_T_OUTPUT], xb, c->vocab, D);
    free(x), free(xb), free(K), free(V), free(Q), free(att), free(o), free(g), free(u), free(inv), free(sc);
}

/* max |a - b| / max |b| */
static inline double tu_rel_err(const float *a, const float *b, int64_t n) {
    double num = 0, den = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > num || isnan(d)) num = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > den) den = fabs(b[i]);
    }
    return num / den;
}

#endif
