/*
 * ck_cpu.c: the CPU backend. The plain kernels (scalar C, one loop each) and the forward pass.
 *
 * A step's tokens, from every sequence in the batch, are stacked into one activation matrix
 * x [T][hidden]. Each weight matrix is then read once per step: a matmul walks its output rows
 * (split across threads) and, for each row, every token. Attention is the only per-sequence part:
 * each token attends to its own sequence's cached keys and values, up to its own position.
 *
 * Faster versions of the matmul and attention kernels live in ck_cpu_fast.c; forward() calls
 * whichever table (ck_kernels) the model was created with.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ck_cpu.h"
#include "ck_internal.h"
#include "ck_pool.h"

/* ================================================================ plain kernels */

/* y[t][o] = W[o,:] . x[t,:], weights in f32 */
static void matmul_f32_plain(const ck_mm *a, int64_t r0, int64_t r1) {
    for (int64_t o = r0; o < r1; o++) {
        const float *w = (const float *)a->w + o * a->in;
        for (int32_t t = 0; t < a->T; t++) {
            const float *x = a->x + t * a->in;
            float s = 0.0f;
            for (int64_t i = 0; i < a->in; i++) s += w[i] * x[i];
            a->y[t * a->out + o] = s;
        }
    }
}

/* weights in IEEE half */
static void matmul_f16_plain(const ck_mm *a, int64_t r0, int64_t r1) {
    for (int64_t o = r0; o < r1; o++) {
        const uint16_t *w = (const uint16_t *)a->w + o * a->in;
        for (int32_t t = 0; t < a->T; t++) {
            const float *x = a->x + t * a->in;
            float s = 0.0f;
            for (int64_t i = 0; i < a->in; i++) s += ck_f16_to_f32(w[i]) * x[i];
            a->y[t * a->out + o] = s;
        }
    }
}

/* weights in bfloat16 */
static void matmul_bf16_plain(const ck_mm *a, int64_t r0, int64_t r1) {
    for (int64_t o = r0; o < r1; o++) {
        const uint16_t *w = (const uint16_t *)a->w + o * a->in;
        for (int32_t t = 0; t < a->T; t++) {
            const float *x = a->x + t * a->in;
            float s = 0.0f;
            for (int64_t i = 0; i < a->in; i++) s += ck_bf16_to_f32(w[i]) * x[i];
            a->y[t * a->out + o] = s;
        }
    }
}

/* weights in GGUF Q8_0: each block of 32 is an f16 scale d then 32 int8 q; w = d * q */
static void matmul_q8_0_plain(const ck_mm *a, int64_t r0, int64_t r1) {
    const int64_t nb = a->in / 32;
    for (int64_t o = r0; o < r1; o++) {
        const uint8_t *w = (const uint8_t *)a->w + o * nb * 34;
        for (int32_t t = 0; t < a->T; t++) {
            const float *x = a->x + t * a->in;
            float s = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                uint16_t dh;
                memcpy(&dh, w + b * 34, 2);
                const int8_t *q = (const int8_t *)(w + b * 34 + 2);
                float block = 0.0f;
                for (int i = 0; i < 32; i++) block += (float)q[i] * x[b * 32 + i];
                s += ck_f16_to_f32(dh) * block;
            }
            a->y[t * a->out + o] = s;
        }
    }
}

/* softmax(q . k_j / sqrt(hd)) . v_j over j < n_ctx; see ck_kernels.attend for the layout */
static void attend_plain(float *out, const float *q, const float *kc, const float *vc, const int32_t *blocks,
                         int32_t bt, int64_t kv_stride, int32_t n_ctx, int32_t hd, float *scores) {
    const float scale = 1.0f / sqrtf((float)hd);
    float max = -INFINITY;
    for (int32_t j = 0; j < n_ctx; j++) {
        const float *kj = kc + ((int64_t)blocks[j / bt] * bt + j % bt) * kv_stride;
        float s = 0.0f;
        for (int32_t i = 0; i < hd; i++) s += q[i] * kj[i];
        scores[j] = s * scale;
        if (scores[j] > max) max = scores[j];
    }
    float sum = 0.0f;
    for (int32_t j = 0; j < n_ctx; j++) {
        scores[j] = expf(scores[j] - max);
        sum += scores[j];
    }
    memset(out, 0, (size_t)hd * sizeof(float));
    for (int32_t j = 0; j < n_ctx; j++) {
        const float *vj = vc + ((int64_t)blocks[j / bt] * bt + j % bt) * kv_stride;
        for (int32_t i = 0; i < hd; i++) out[i] += scores[j] / sum * vj[i];
    }
}

const ck_kernels ck_kernels_plain = {
    .name = "cpu-plain",
    .matmul = {matmul_f32_plain, matmul_f16_plain, matmul_bf16_plain, matmul_q8_0_plain},
    .xq_row_bytes = NULL,
    .prep_x = NULL,
    .attend = attend_plain,
};

/* out[i] = x[i] * w[i] / sqrt(mean(x^2) + eps), one row of n (out may be x) */
static void rmsnorm(float *out, const float *x, const float *w, int32_t n, float eps) {
    float ss = 0.0f;
    for (int32_t i = 0; i < n; i++) ss += x[i] * x[i];
    float scale = 1.0f / sqrtf(ss / (float)n + eps);
    for (int32_t i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

/* RoPE, Hugging Face's rotate_half: in every head, element i pairs with i + hd/2.
 * cs = [cos(pos * inv_freq[0..hd/2)), sin(pos * inv_freq[0..hd/2))] */
static void rope(float *v, int32_t n_heads, int32_t hd, const float *cs) {
    const int32_t half = hd / 2;
    for (int32_t h = 0; h < n_heads; h++) {
        float *p = v + h * hd;
        for (int32_t i = 0; i < half; i++) {
            float a = p[i], b = p[i + half], c = cs[i], s = cs[half + i];
            p[i] = a * c - b * s;
            p[i + half] = b * c + a * s;
        }
    }
}

static float silu(float x) {
    return x / (1.0f + expf(-x));
}

/* ================================================================ backend state */

typedef struct {
    ck_pool *pool;
    const ck_kernels *k;
    int32_t cap_T;          /* tokens the activation buffers hold */
    float *x;               /* [T][hidden]   the residual stream */
    float *xb;              /* [T][hidden]   normed input of a block */
    float *q;               /* [T][q_dim] */
    float *kk;              /* [T][kv_dim] */
    float *v;               /* [T][kv_dim] */
    float *att;             /* [T][q_dim]    attention output */
    float *hb;              /* [T][ffn]      gate, then silu(gate) * up */
    float *hb2;             /* [T][ffn]      up */
    float *xo;              /* [T][hidden]   a block's output before the residual add */
    float *cs;              /* [T][head_dim] RoPE cos / sin per token */
    void *xq;               /* [T][xq_row]   x quantised for the Q8_0 fast path */
    int64_t xq_row;
    float *logits;          /* [cap_L][vocab] what ck_be_forward hands back */
    int32_t cap_L;
    float *scores;          /* [n_threads][max_context] attention scratch */
    float *kv;              /* [n_layers][2][n_blocks * block_tokens][kv_dim] */
    int64_t kv_layer;       /* floats in one layer's K (or V) */
    size_t kv_alloc;
} cpu_state;

static int g_force_plain;

void ck_cpu_force_plain(int on) {
    g_force_plain = on;
}

const char *ck_be_name(void) {
    return ck_kernels_fast() ? ck_kernels_fast()->name : ck_kernels_plain.name;
}

int32_t ck_be_available(void) {
    return 1;
}

int32_t ck_be_kv_elem_bytes(void) {
    return (int32_t)sizeof(float);
}

int ck_be_create(ck_model *m) {
    cpu_state *s = calloc(1, sizeof(cpu_state));
    if (!s) return ck_fail(m, CK_E_NOMEM, "out of host memory");
    m->be = s;
    int n = m->n_threads;
    if (n == 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 ? (int)(online > 1024 ? 1024 : online) : 1;
    }
    m->n_threads = n;
    s->k = (!g_force_plain && ck_kernels_fast()) ? ck_kernels_fast() : &ck_kernels_plain;
    s->scores = ck_alloc(m, (size_t)n * m->cfg.max_context * sizeof(float));
    s->pool = ck_pool_create(n);
    if (!s->scores || !s->pool) return ck_fail(m, CK_E_NOMEM, "cannot start %d threads or allocate their scratch", n);
    return CK_OK;
}

int ck_be_finalize(ck_model *m) {
    (void)m; /* the weights stay where ck_model_set_tensor put them */
    return CK_OK;
}

int ck_be_kv_init(ck_model *m) {
    cpu_state *s = m->be;
    const int64_t kvd = (int64_t)m->cfg.n_kv_heads * m->cfg.head_dim;
    s->kv_layer = (int64_t)m->n_blocks * m->block_tokens * kvd;
    size_t bytes = (size_t)(m->cfg.n_layers * 2 * s->kv_layer) * sizeof(float);
    s->kv = calloc(1, bytes); /* large: the pages arrive zeroed and lazily */
    if (!s->kv) return ck_fail(m, CK_E_NOMEM, "out of host memory for the KV cache (%zu bytes)", bytes);
    s->kv_alloc = bytes;
    ck_account(m, (int64_t)bytes);
    return CK_OK;
}

/* the activation buffers, in a fixed order, with their widths */
#define N_ACT 10
static void act_slots(ck_model *m, cpu_state *s, float ***slots, int64_t *width) {
    const ck_config *c = &m->cfg;
    const int64_t D = c->hidden, QD = (int64_t)c->n_heads * c->head_dim, KVD = (int64_t)c->n_kv_heads * c->head_dim;
    float **p[N_ACT] = {&s->x, &s->xb, &s->q, &s->kk, &s->v, &s->att, &s->hb, &s->hb2, &s->xo, &s->cs};
    int64_t w[N_ACT] = {D, D, QD, KVD, KVD, QD, c->ffn_hidden, c->ffn_hidden, D, c->head_dim};
    memcpy(slots, p, sizeof p);
    memcpy(width, w, sizeof w);
}

int ck_be_reserve(ck_model *m, int32_t n_tokens, int32_t n_logits) {
    cpu_state *s = m->be;
    const int64_t vocab = m->cfg.vocab;
    if (n_logits > s->cap_L) {
        float *l = ck_alloc(m, (size_t)(n_logits * vocab) * sizeof(float));
        if (!l) return ck_fail(m, CK_E_NOMEM, "out of host memory for %d rows of logits", n_logits);
        ck_free(m, s->logits, (size_t)(s->cap_L * vocab) * sizeof(float));
        s->logits = l;
        s->cap_L = n_logits;
    }
    int32_t T = n_tokens > n_logits ? n_tokens : n_logits;
    if (T <= s->cap_T) return CK_OK;
    if (T < 2 * s->cap_T) T = 2 * s->cap_T;
    float **slots[N_ACT];
    int64_t width[N_ACT];
    act_slots(m, s, slots, width);
    const ck_config *c = &m->cfg;
    int64_t widest = c->hidden > c->ffn_hidden ? c->hidden : c->ffn_hidden;
    if ((int64_t)c->n_heads * c->head_dim > widest) widest = (int64_t)c->n_heads * c->head_dim;
    int64_t xq_row = s->k->xq_row_bytes ? s->k->xq_row_bytes(widest) : 0;

    float *fresh[N_ACT] = {0};
    void *fresh_xq = NULL;
    int ok = 1;
    for (int i = 0; i < N_ACT && ok; i++) ok = (fresh[i] = ck_alloc(m, (size_t)(T * width[i]) * sizeof(float))) != NULL;
    if (ok && xq_row) ok = (fresh_xq = ck_alloc(m, (size_t)(T * xq_row))) != NULL;
    if (!ok) {
        for (int i = 0; i < N_ACT; i++) ck_free(m, fresh[i], (size_t)(T * width[i]) * sizeof(float));
        return ck_fail(m, CK_E_NOMEM, "out of host memory for a step of %d tokens", T);
    }
    for (int i = 0; i < N_ACT; i++) {
        ck_free(m, *slots[i], (size_t)(s->cap_T * width[i]) * sizeof(float));
        *slots[i] = fresh[i];
    }
    ck_free(m, s->xq, (size_t)(s->cap_T * s->xq_row));
    s->xq = fresh_xq;
    s->xq_row = xq_row;
    s->cap_T = T;
    return CK_OK;
}

void ck_be_free(ck_model *m) {
    cpu_state *s = m->be;
    if (!s) return;
    ck_pool_free(s->pool);
    float **slots[N_ACT];
    int64_t width[N_ACT];
    act_slots(m, s, slots, width);
    for (int i = 0; i < N_ACT; i++) ck_free(m, *slots[i], (size_t)(s->cap_T * width[i]) * sizeof(float));
    ck_free(m, s->xq, (size_t)(s->cap_T * s->xq_row));
    ck_free(m, s->logits, (size_t)((int64_t)s->cap_L * m->cfg.vocab) * sizeof(float));
    ck_free(m, s->scores, (size_t)m->n_threads * m->cfg.max_context * sizeof(float));
    if (s->kv) {
        free(s->kv);
        ck_account(m, -(int64_t)s->kv_alloc);
    }
    free(s);
    m->be = NULL;
}

/* ================================================================ parallel ops */

/* A parallel op is cut into about this many chunks per thread: enough that a thread the OS
 * preempts holds little work hostage, few enough that claiming them costs nothing. */
#define CHUNKS_PER_THREAD 4

static int n_chunks_for(const cpu_state *s, int64_t items, int64_t min_per_chunk) {
    int64_t n = (int64_t)ck_pool_size(s->pool) * CHUNKS_PER_THREAD;
    if (n > items / min_per_chunk) n = items / min_per_chunk;
    return n < 1 ? 1 : (int)n;
}

/* [r0, r1): chunk c of n over `rows` rows, boundaries on multiples of 16 */
static void chunk_rows(int64_t rows, int c, int n, int64_t *r0, int64_t *r1) {
    *r0 = rows * c / n / 16 * 16;
    *r1 = c == n - 1 ? rows : rows * (c + 1) / n / 16 * 16;
}

/* Up to three matrices sharing one input x [T][in] (q/k/v; gate/up), each writing its own y. */
typedef struct {
    const ck_kernels *k;
    int n;
    const ck_tensor *w[3];
    float *y[3];
    const float *bias[3];
    int swiglu;             /* n == 2: afterwards y[0] = silu(y[0]) * y[1] */
    const float *x;
    const void *xq;
    int64_t in;
    int32_t T;
    int n_chunks;
} mm_job;

static void mm_rows(const mm_job *j, int i, int64_t r0, int64_t r1) {
    const ck_tensor *w = j->w[i];
    ck_mm a = {j->y[i], j->x, j->xq, w->host, j->in, w->rows, j->T};
    j->k->matmul[w->dtype](&a, r0, r1);
    if (j->bias[i])
        for (int32_t t = 0; t < j->T; t++)
            for (int64_t o = r0; o < r1; o++) j->y[i][t * w->rows + o] += j->bias[i][o];
}

static int64_t mm_total_rows(const mm_job *j) {
    if (j->swiglu) return j->w[0]->rows;
    int64_t total = 0;
    for (int i = 0; i < j->n; i++) total += j->w[i]->rows;
    return total;
}

static void mm_task(void *arg, int chunk, int ith) {
    const mm_job *j = arg;
    int64_t r0, r1;
    chunk_rows(mm_total_rows(j), chunk, j->n_chunks, &r0, &r1);
    if (r0 >= r1) return;
    if (j->swiglu) {
        const int64_t F = j->w[0]->rows;
        mm_rows(j, 0, r0, r1);
        mm_rows(j, 1, r0, r1);
        for (int32_t t = 0; t < j->T; t++)
            for (int64_t o = r0; o < r1; o++) j->y[0][t * F + o] = silu(j->y[0][t * F + o]) * j->y[1][t * F + o];
        return;
    }
    /* the rows of all the matrices, end to end */
    int64_t base = 0;
    for (int i = 0; i < j->n; i++) {
        int64_t rows = j->w[i]->rows;
        int64_t a = r0 > base ? r0 - base : 0, b = r1 - base < rows ? r1 - base : rows;
        if (a < b) mm_rows(j, i, a, b);
        base += rows;
    }
}

/* Runs a job; quantises x first if any of its matrices wants that. */
static void run_mm(cpu_state *s, mm_job *j) {
    j->k = s->k;
    j->xq = NULL;
    for (int i = 0; i < j->n; i++)
        if (j->w[i]->dtype == CK_Q8_0 && s->k->prep_x) {
            s->k->prep_x(j->x, s->xq, j->in, j->T);
            j->xq = s->xq;
            break;
        }
    j->n_chunks = n_chunks_for(s, mm_total_rows(j), 64);
    ck_pool_run(s->pool, mm_task, j, j->n_chunks);
}

/* y [T][W->rows] = x [T][in] . W^T */
static void matmul(cpu_state *s, float *y, const float *x, const ck_tensor *W, int32_t T) {
    mm_job j = {.n = 1, .w = {W}, .y = {y}, .x = x, .in = W->cols, .T = T};
    run_mm(s, &j);
}

typedef struct {
    const ck_model *m;
    const cpu_state *s;
    const ck_plan *p;
    int32_t layer;
    int n_chunks;
} att_job;

/* a share of the step's (token, head) pairs */
static void att_task(void *arg, int chunk, int ith) {
    const att_job *j = arg;
    const ck_config *c = &j->m->cfg;
    const int32_t H = c->n_heads, hd = c->head_dim, group = c->n_heads / c->n_kv_heads;
    const int64_t QD = (int64_t)H * hd, KVD = (int64_t)c->n_kv_heads * hd;
    const int64_t n = (int64_t)j->p->n_tokens * H;
    const int64_t i0 = n * chunk / j->n_chunks, i1 = n * (chunk + 1) / j->n_chunks;
    const float *kc = j->s->kv + (int64_t)j->layer * 2 * j->s->kv_layer, *vc = kc + j->s->kv_layer;
    float *scores = j->s->scores + (int64_t)ith * c->max_context;
    for (int64_t i = i0; i < i1; i++) {
        int64_t t = i / H;
        int32_t h = (int32_t)(i % H), kvh = h / group;
        int32_t seq = j->p->entries[j->p->tok_entry[t]].seq;
        const int32_t *blocks = j->m->block_table + (int64_t)seq * j->m->max_blocks_per_seq;
        j->s->k->attend(j->s->att + t * QD + h * hd, j->s->q + t * QD + h * hd, kc + kvh * hd, vc + kvh * hd, blocks,
                        j->m->block_tokens, KVD, j->p->tok_pos[t] + 1, hd, scores);
    }
}

/* ================================================================ forward */

int ck_be_forward(ck_model *m, const ck_plan *p, const float **logits) {
    cpu_state *s = m->be;
    const ck_config *c = &m->cfg;
    const int32_t T = p->n_tokens;
    const int64_t D = c->hidden, hd = c->head_dim, half = hd / 2, QD = c->n_heads * hd, KVD = c->n_kv_heads * hd;
    const float eps = c->rms_eps;

    /* x [T][D] = the tokens' embedding rows */
    const ck_tensor *emb = &m->token_embd;
    const int64_t emb_row = ck_dtype_row_bytes(emb->dtype, D);
    for (int32_t t = 0; t < T; t++)
        ck_row_to_f32((const uint8_t *)emb->host + p->tokens[t] * emb_row, emb->dtype, D, s->x + (int64_t)t * D);

    /* cs [T][hd]: each token's RoPE rotation */
    for (int32_t t = 0; t < T; t++)
        for (int64_t i = 0; i < half; i++) {
            float angle = (float)p->tok_pos[t] * m->inv_freq[i];
            s->cs[t * hd + i] = cosf(angle);
            s->cs[t * hd + half + i] = sinf(angle);
        }

    for (int32_t l = 0; l < c->n_layers; l++) {
        const ck_layer *L = &m->layers[l];

        /* ---- attention ---- */
        /* xb [T][D] = rmsnorm(x) */
        for (int32_t t = 0; t < T; t++)
            rmsnorm(s->xb + t * D, s->x + t * D, L->attn_norm.host, D, eps);

        /* q [T][QD], k [T][KVD], v [T][KVD] = xb . W^T (+ bias) */
        mm_job qkv = {.n = 3, .w = {&L->wq, &L->wk, &L->wv}, .y = {s->q, s->kk, s->v}, .x = s->xb, .in = D, .T = T};
        if (c->attn_bias) {
            qkv.bias[0] = L->bq.host;
            qkv.bias[1] = L->bk.host;
            qkv.bias[2] = L->bv.host;
        }
        run_mm(s, &qkv);

        /* Qwen3: rmsnorm over each head of q and k */
        if (c->qk_norm) {
            for (int32_t i = 0; i < T * c->n_heads; i++) rmsnorm(s->q + i * hd, s->q + i * hd, L->q_norm.host, hd, eps);
            for (int32_t i = 0; i < T * c->n_kv_heads; i++) rmsnorm(s->kk + i * hd, s->kk + i * hd, L->k_norm.host, hd, eps);
        }

        /* rotate q and k by each token's position */
        for (int32_t t = 0; t < T; t++) {
            rope(s->q + t * QD, c->n_heads, hd, s->cs + t * hd);
            rope(s->kk + t * KVD, c->n_kv_heads, hd, s->cs + t * hd);
        }

        /* k, v -> this layer's cache, at each token's (block, slot) */
        float *kc = s->kv + (int64_t)l * 2 * s->kv_layer, *vc = kc + s->kv_layer;
        for (int32_t t = 0; t < T; t++) {
            int32_t seq = p->entries[p->tok_entry[t]].seq, pos = p->tok_pos[t];
            int32_t block = m->block_table[(int64_t)seq * m->max_blocks_per_seq + pos / m->block_tokens];
            int64_t at = ((int64_t)block * m->block_tokens + pos % m->block_tokens) * KVD;
            memcpy(kc + at, s->kk + t * KVD, (size_t)KVD * sizeof(float));
            memcpy(vc + at, s->v + t * KVD, (size_t)KVD * sizeof(float));
        }

        /* att [T][QD]: every token against its sequence's cache, causally */
        att_job aj = {m, s, p, l, n_chunks_for(s, (int64_t)T * c->n_heads, 1)};
        ck_pool_run(s->pool, att_task, &aj, aj.n_chunks);

        /* x += att . WO^T */
        matmul(s, s->xo, s->att, &L->wo, T);
        for (int64_t i = 0; i < (int64_t)T * D; i++) s->x[i] += s->xo[i];

        /* ---- feed-forward (SwiGLU) ---- */
        for (int32_t t = 0; t < T; t++)
            rmsnorm(s->xb + t * D, s->x + t * D, L->ffn_norm.host, D, eps);

        /* hb [T][F] = silu(xb . W_GATE^T) * (xb . W_UP^T) */
        mm_job ffn = {.n = 2, .w = {&L->w_gate, &L->w_up}, .y = {s->hb, s->hb2}, .swiglu = 1, .x = s->xb, .in = D, .T = T};
        run_mm(s, &ffn);

        /* x += hb . W_DOWN^T */
        matmul(s, s->xo, s->hb, &L->w_down, T);
        for (int64_t i = 0; i < (int64_t)T * D; i++) s->x[i] += s->xo[i];
    }

    /* logits [n_logits][vocab] = rmsnorm(x of the wanted tokens) . OUTPUT^T */
    for (int32_t i = 0; i < p->n_logits; i++)
        rmsnorm(s->xb + i * D, s->x + (int64_t)p->logit_tok[i] * D, m->output_norm.host, D, eps);
    if (p->n_logits > 0) matmul(s, s->logits, s->xb, c->tied_embeddings ? &m->token_embd : &m->output, p->n_logits);
    *logits = s->logits;
    return CK_OK;
}
