/*
 * ck_cuda.cu: the CUDA backend. Same front end (ck_core.c, ck_sample.c, ck_numeric.c), same ABI;
 * weights (in their dtype), activations and the KV cache live on one GPU, logits come back to the
 * host for sampling.
 *
 * Written to be obviously right rather than fast: one kernel per step of the forward pass, a warp
 * per output row in the matmuls, a block per (token, head) in attention with an online softmax.
 * Every output element is computed by the same threads in the same order whatever else is in the
 * batch, so a sequence's results do not depend on its neighbours (as on the CPU).
 *
 * Layouts match the CPU backend: activations [T][width] f32; KV cache per layer
 * [n_blocks * block_tokens][kv_dim] f32, K then V.
 */
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ck_internal.h"

#define THREADS 256     /* elementwise kernels */
#define ROWS_PER_BLOCK 8 /* matmul: one warp per output row */
#define TOK_TILE 4      /* matmul: tokens per pass over a row */
#define ATT_THREADS 128 /* attention: keys per tile */

/* ================================================================ device helpers */

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum (or max) over the block; every thread gets the result. red: >= 33 floats of shared memory. */
template <bool MAX>
__device__ float block_reduce(float v, float *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = (blockDim.x + 31) >> 5;
    v = MAX ? warp_max(v) : warp_sum(v);
    __syncthreads(); /* red may still be read from a previous call */
    if (lane == 0) red[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float r = lane < n_warps ? red[lane] : (MAX ? -INFINITY : 0.0f);
        r = MAX ? warp_max(r) : warp_sum(r);
        if (lane == 0) red[32] = r;
    }
    __syncthreads();
    return red[32];
}

/* element i of row o of a weight matrix, as f32 */
template <int DT>
__device__ __forceinline__ float weight(const void *w, int64_t o, int64_t in, int64_t i) {
    if (DT == CK_F32) return ((const float *)w)[o * in + i];
    if (DT == CK_F16) return __half2float(((const __half *)w)[o * in + i]);
    if (DT == CK_BF16) return __uint_as_float((unsigned)((const uint16_t *)w)[o * in + i] << 16);
    /* Q8_0: blocks of 34 bytes, an f16 scale then 32 int8 */
    const uint8_t *blk = (const uint8_t *)w + o * (in / 32) * 34 + (i / 32) * 34;
    return __half2float(*(const __half *)blk) * (float)(int8_t)blk[2 + (i % 32)];
}

/* ================================================================ kernels */

/* x [T][D] = embedding rows of tokens */
template <int DT>
__global__ void embed_kernel(float *x, const void *emb, const int32_t *tokens, int D) {
    const int t = blockIdx.x;
    for (int i = threadIdx.x; i < D; i += blockDim.x) x[(int64_t)t * D + i] = weight<DT>(emb, tokens[t], D, i);
}

/* out[r] = x[rows ? rows[r] : r] * w / sqrt(mean(x^2) + eps), one block per row of n */
__global__ void rmsnorm_kernel(float *out, const float *x, const float *w, int n, float eps, const int32_t *rows) {
    __shared__ float red[33];
    const int r = blockIdx.x;
    const float *xr = x + (int64_t)(rows ? rows[r] : r) * n;
    float *o = out + (int64_t)r * n;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
    ss = block_reduce<false>(ss, red);
    const float scale = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) o[i] = xr[i] * scale * w[i];
}

/* y [T][out] = x [T][in] . W^T (+ bias): a warp per output row, TOK_TILE tokens per pass. Lane l
 * takes elements l, l + 32, ...; for Q8_0 that is exactly one block per step. */
template <int DT>
__global__ void matmul_kernel(float *y, const float *x, const void *w, const float *bias, int in, int out, int T) {
    const int lane = threadIdx.x & 31;
    const int64_t o = (int64_t)blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (o >= out) return;
    for (int t0 = 0; t0 < T; t0 += TOK_TILE) {
        const int nt = min(TOK_TILE, T - t0);
        float acc[TOK_TILE];
        for (int c = 0; c < TOK_TILE; c++) acc[c] = 0.0f;
        for (int i = lane; i < in; i += 32) {
            const float wv = weight<DT>(w, o, in, i);
            for (int c = 0; c < TOK_TILE; c++)
                if (c < nt) acc[c] += wv * x[(int64_t)(t0 + c) * in + i];
        }
        for (int c = 0; c < TOK_TILE; c++) {
            const float s = warp_sum(acc[c]);
            if (lane == 0 && c < nt) y[(int64_t)(t0 + c) * out + o] = s + (bias ? bias[o] : 0.0f);
        }
    }
}

/* RoPE (rotate_half) on q [T][n_heads][hd] and k [T][n_kv][hd] at each token's position */
__global__ void rope_kernel(float *q, float *k, const int32_t *tok_pos, const float *inv_freq, int n_heads, int n_kv, int hd) {
    const int t = blockIdx.x, half = hd / 2;
    const float pos = (float)tok_pos[t];
    for (int idx = threadIdx.x; idx < (n_heads + n_kv) * half; idx += blockDim.x) {
        const int h = idx / half, i = idx % half;
        float *p = h < n_heads ? q + ((int64_t)t * n_heads + h) * hd : k + ((int64_t)t * n_kv + (h - n_heads)) * hd;
        const float angle = pos * inv_freq[i], c = cosf(angle), s = sinf(angle);
        const float a = p[i], b = p[i + half];
        p[i] = a * c - b * s;
        p[i + half] = b * c + a * s;
    }
}

/* k, v [T][kvd] -> the layer's cache at each token's (block, slot) */
__global__ void kv_store_kernel(float *kc, float *vc, const float *k, const float *v, const int32_t *tok_pos,
                                const int32_t *tok_entry, const int32_t *tables, int mbps, int bt, int kvd) {
    const int t = blockIdx.x, pos = tok_pos[t];
    const int32_t block = tables[(int64_t)tok_entry[t] * mbps + pos / bt];
    const int64_t at = ((int64_t)block * bt + pos % bt) * kvd;
    for (int i = threadIdx.x; i < kvd; i += blockDim.x) {
        kc[at + i] = k[(int64_t)t * kvd + i];
        vc[at + i] = v[(int64_t)t * kvd + i];
    }
}

/* One block per (token, head): softmax(q . k_j / sqrt(hd)) . v_j over j <= pos, in tiles of
 * blockDim keys with a running max and sum (online softmax), so any context length fits. */
__global__ void attention_kernel(float *att, const float *q, const float *kc, const float *vc, const int32_t *tok_pos,
                                 const int32_t *tok_entry, const int32_t *tables, int mbps, int bt, int n_heads,
                                 int group, int hd, int kvd) {
    extern __shared__ float sh[]; /* q [hd], acc [hd], p [blockDim], red [33] */
    __shared__ float m_run, l_run;
    float *sq = sh, *acc = sh + hd, *p = acc + hd, *red = p + blockDim.x;
    const int t = blockIdx.x, h = blockIdx.y, kvh = h / group, tid = threadIdx.x;
    const int32_t *blocks = tables + (int64_t)tok_entry[t] * mbps;
    const int n_ctx = tok_pos[t] + 1;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int d = tid; d < hd; d += blockDim.x) {
        sq[d] = q[((int64_t)t * n_heads + h) * hd + d];
        acc[d] = 0.0f;
    }
    if (tid == 0) {
        m_run = -INFINITY;
        l_run = 0.0f;
    }
    __syncthreads();
    for (int j0 = 0; j0 < n_ctx; j0 += blockDim.x) {
        const int j = j0 + tid, nj = min((int)blockDim.x, n_ctx - j0);
        float s = -INFINITY;
        if (j < n_ctx) {
            const float *kj = kc + ((int64_t)blocks[j / bt] * bt + j % bt) * kvd + kvh * hd;
            float dot = 0.0f;
            for (int d = 0; d < hd; d++) dot += sq[d] * kj[d];
            s = dot * scale;
        }
        const float m_new = fmaxf(m_run, block_reduce<true>(s, red));
        const float alpha = expf(m_run - m_new); /* 0 on the first tile */
        const float pj = j < n_ctx ? expf(s - m_new) : 0.0f;
        p[tid] = pj;
        const float tile_sum = block_reduce<false>(pj, red); /* its barriers also publish p */
        for (int d = tid; d < hd; d += blockDim.x) {
            float a = acc[d] * alpha;
            for (int jj = 0; jj < nj; jj++) {
                const int jp = j0 + jj;
                a += p[jj] * vc[((int64_t)blocks[jp / bt] * bt + jp % bt) * kvd + kvh * hd + d];
            }
            acc[d] = a;
        }
        __syncthreads(); /* everyone has read m_run and p */
        if (tid == 0) {
            l_run = l_run * alpha + tile_sum;
            m_run = m_new;
        }
        __syncthreads();
    }
    for (int d = tid; d < hd; d += blockDim.x) att[((int64_t)t * n_heads + h) * hd + d] = acc[d] / l_run;
}

__global__ void add_kernel(float *x, const float *y, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += y[i];
}

/* g = silu(g) * u */
__global__ void swiglu_kernel(float *g, const float *u, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* ================================================================ backend state */

typedef struct {
    cudaStream_t stream;
    int32_t cap_T, cap_L, cap_E;
    float *x, *xb, *q, *k, *v, *att, *hb, *hb2, *xo; /* activations, as on the CPU */
    float *logits;                                   /* [cap_L][vocab] */
    int32_t *ints;                                   /* step metadata, see ck_be_forward */
    int64_t ints_len;
    int32_t *host_ints;
    float *inv_freq;
    float *kv;
    int64_t kv_layer;
} cuda_state;

static int cuda_fail(ck_model *m, cudaError_t e, const char *what) {
    cudaGetLastError(); /* clear a non-sticky error */
    int st = e == cudaErrorMemoryAllocation ? CK_E_NOMEM : CK_E_BACKEND;
    return ck_fail(m, st, "CUDA %s: %s", what, cudaGetErrorString(e));
}

#define CU(call, what)                                   \
    do {                                                 \
        cudaError_t e_ = (call);                         \
        if (e_ != cudaSuccess) return cuda_fail(m, e_, what); \
    } while (0)

static cudaError_t dev_alloc(ck_model *m, void **p, size_t bytes) {
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 1);
    if (e == cudaSuccess) ck_account(m, (int64_t)bytes);
    else *p = NULL;
    return e;
}

static void dev_free(ck_model *m, void *p, size_t bytes) {
    if (!p) return;
    cudaFree(p);
    ck_account(m, -(int64_t)bytes);
}

extern "C" const char *ck_be_name(void) {
    return "cuda-sm90";
}

extern "C" int32_t ck_be_available(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n > 0;
}

extern "C" int32_t ck_be_kv_elem_bytes(void) {
    return (int32_t)sizeof(float);
}

extern "C" int ck_be_create(ck_model *m) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        cudaGetLastError();
        return ck_fail(m, CK_E_UNSUPPORTED, "no CUDA device visible (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    }
    cuda_state *s = (cuda_state *)calloc(1, sizeof(cuda_state));
    if (!s) return ck_fail(m, CK_E_NOMEM, "out of host memory");
    m->be = s;
    CU(cudaSetDevice(0), "cudaSetDevice");
    CU(cudaStreamCreate(&s->stream), "cudaStreamCreate");
    return CK_OK;
}

static ck_tensor *all_tensors(ck_model *m, int i) {
    /* 0..2: global; then 14 per layer */
    if (i == 0) return &m->token_embd;
    if (i == 1) return &m->output_norm;
    if (i == 2) return &m->output;
    ck_layer *L = &m->layers[(i - 3) / 14];
    ck_tensor *ts[14] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->wo, &L->bq, &L->bk,
                         &L->bv, &L->q_norm, &L->k_norm, &L->ffn_norm, &L->w_gate, &L->w_up, &L->w_down};
    return ts[(i - 3) % 14];
}

static int n_tensors(const ck_model *m) {
    return 3 + 14 * m->cfg.n_layers;
}

extern "C" int ck_be_finalize(ck_model *m) {
    cuda_state *s = (cuda_state *)m->be;
    const int n = n_tensors(m);
    const size_t freq_bytes = (size_t)m->cfg.head_dim / 2 * sizeof(float);
    cudaError_t e = dev_alloc(m, (void **)&s->inv_freq, freq_bytes);
    if (e == cudaSuccess) e = cudaMemcpy(s->inv_freq, m->inv_freq, freq_bytes, cudaMemcpyHostToDevice);
    int i = 0;
    for (; i < n && e == cudaSuccess; i++) {
        ck_tensor *t = all_tensors(m, i);
        if (!t->present) continue;
        e = dev_alloc(m, &t->dev, (size_t)t->n_bytes);
        if (e == cudaSuccess) e = cudaMemcpy(t->dev, t->host, (size_t)t->n_bytes, cudaMemcpyHostToDevice);
    }
    if (e != cudaSuccess) { /* undo: the model stays unfinalized, its host copies intact */
        for (int j = 0; j < n; j++) {
            ck_tensor *t = all_tensors(m, j);
            dev_free(m, t->dev, (size_t)t->n_bytes);
            t->dev = NULL;
        }
        dev_free(m, s->inv_freq, freq_bytes);
        s->inv_freq = NULL;
        return cuda_fail(m, e, "uploading the weights");
    }
    for (int j = 0; j < n; j++) { /* the GPU has them now */
        ck_tensor *t = all_tensors(m, j);
        if (t->host) ck_free(m, t->host, (size_t)t->n_bytes);
        t->host = NULL;
    }
    return CK_OK;
}

extern "C" int ck_be_kv_init(ck_model *m) {
    cuda_state *s = (cuda_state *)m->be;
    const int64_t kvd = (int64_t)m->cfg.n_kv_heads * m->cfg.head_dim;
    s->kv_layer = (int64_t)m->n_blocks * m->block_tokens * kvd;
    cudaError_t e = dev_alloc(m, (void **)&s->kv, (size_t)(m->cfg.n_layers * 2 * s->kv_layer) * sizeof(float));
    if (e != cudaSuccess) return cuda_fail(m, e, "allocating the KV cache");
    return CK_OK;
}

/* activation buffers and their widths */
#define N_ACT 9
static void act_slots(ck_model *m, cuda_state *s, float ***slots, int64_t *width) {
    const ck_config *c = &m->cfg;
    const int64_t D = c->hidden, QD = (int64_t)c->n_heads * c->head_dim, KVD = (int64_t)c->n_kv_heads * c->head_dim;
    float **p[N_ACT] = {&s->x, &s->xb, &s->q, &s->k, &s->v, &s->att, &s->hb, &s->hb2, &s->xo};
    int64_t w[N_ACT] = {D, D, QD, KVD, KVD, QD, c->ffn_hidden, c->ffn_hidden, D};
    memcpy(slots, p, sizeof p);
    memcpy(width, w, sizeof w);
}

static int64_t ints_needed(const ck_model *m, int32_t T, int32_t L, int32_t E) {
    return 3ll * T + L + (int64_t)E * m->max_blocks_per_seq;
}

static void free_buffers(ck_model *m, cuda_state *s) {
    float **slots[N_ACT];
    int64_t width[N_ACT];
    act_slots(m, s, slots, width);
    for (int i = 0; i < N_ACT; i++) {
        dev_free(m, *slots[i], (size_t)(s->cap_T * width[i]) * sizeof(float));
        *slots[i] = NULL;
    }
    dev_free(m, s->logits, (size_t)s->cap_L * m->cfg.vocab * sizeof(float));
    dev_free(m, s->ints, (size_t)s->ints_len * sizeof(int32_t));
    if (s->host_ints) {
        free(s->host_ints);
        ck_account(m, -(int64_t)s->ints_len * 4);
    }
    s->logits = NULL;
    s->ints = s->host_ints = NULL;
    s->cap_T = s->cap_L = s->cap_E = 0;
    s->ints_len = 0;
}

extern "C" int ck_be_reserve(ck_model *m, int32_t n_tokens, int32_t n_logits) {
    cuda_state *s = (cuda_state *)m->be;
    const int32_t E = m->max_seqs; /* entries never exceed the slots */
    int32_t T = n_tokens, L = n_logits > 0 ? n_logits : 1;
    if (T <= s->cap_T && L <= s->cap_L) return CK_OK;
    if (T < s->cap_T) T = s->cap_T;
    if (T < 2 * s->cap_T && T > s->cap_T) T = 2 * s->cap_T;
    if (L < s->cap_L) L = s->cap_L;
    if (T < L) T = L; /* the final norm gathers into xb */
    /* simplest correct thing: drop the old buffers (the step has not started) and allocate anew */
    free_buffers(m, s);
    float **slots[N_ACT];
    int64_t width[N_ACT];
    act_slots(m, s, slots, width);
    cudaError_t e = cudaSuccess;
    for (int i = 0; i < N_ACT && e == cudaSuccess; i++) e = dev_alloc(m, (void **)slots[i], (size_t)(T * width[i]) * sizeof(float));
    if (e == cudaSuccess) e = dev_alloc(m, (void **)&s->logits, (size_t)L * m->cfg.vocab * sizeof(float));
    const int64_t n_ints = ints_needed(m, T, L, E);
    if (e == cudaSuccess) e = dev_alloc(m, (void **)&s->ints, (size_t)n_ints * sizeof(int32_t));
    if (e == cudaSuccess) {
        s->host_ints = (int32_t *)malloc((size_t)n_ints * sizeof(int32_t));
        if (!s->host_ints) e = cudaErrorMemoryAllocation;
        else ck_account(m, n_ints * 4);
    }
    s->cap_T = T;
    s->cap_L = L;
    s->cap_E = E;
    s->ints_len = n_ints;
    if (e != cudaSuccess) {
        free_buffers(m, s);
        return cuda_fail(m, e, "allocating activations");
    }
    return CK_OK;
}

extern "C" void ck_be_free(ck_model *m) {
    cuda_state *s = (cuda_state *)m->be;
    if (!s) return;
    free_buffers(m, s);
    for (int i = 0; i < n_tensors(m); i++) {
        ck_tensor *t = all_tensors(m, i);
        dev_free(m, t->dev, (size_t)t->n_bytes);
        t->dev = NULL;
    }
    dev_free(m, s->inv_freq, (size_t)m->cfg.head_dim / 2 * sizeof(float));
    dev_free(m, s->kv, (size_t)(m->cfg.n_layers * 2 * s->kv_layer) * sizeof(float));
    if (s->stream) cudaStreamDestroy(s->stream);
    free(s);
    m->be = NULL;
}

/* ================================================================ forward */

static unsigned blocks_for(int64_t n, int per) {
    return (unsigned)((n + per - 1) / per);
}

/* y [T][W->rows] = x [T][W->cols] . W^T (+ bias) */
static void matmul(cudaStream_t st, float *y, const float *x, const ck_tensor *W, const float *bias, int T) {
    dim3 grid(blocks_for(W->rows, ROWS_PER_BLOCK)), block(32 * ROWS_PER_BLOCK);
    const int in = (int)W->cols, out = (int)W->rows;
    switch (W->dtype) {
    case CK_F32: matmul_kernel<CK_F32><<<grid, block, 0, st>>>(y, x, W->dev, bias, in, out, T); break;
    case CK_F16: matmul_kernel<CK_F16><<<grid, block, 0, st>>>(y, x, W->dev, bias, in, out, T); break;
    case CK_BF16: matmul_kernel<CK_BF16><<<grid, block, 0, st>>>(y, x, W->dev, bias, in, out, T); break;
    default: matmul_kernel<CK_Q8_0><<<grid, block, 0, st>>>(y, x, W->dev, bias, in, out, T); break;
    }
}

extern "C" int ck_be_forward(ck_model *m, const ck_plan *p, float *logits) {
    cuda_state *s = (cuda_state *)m->be;
    const ck_config *c = &m->cfg;
    const int T = p->n_tokens, D = c->hidden, F = c->ffn_hidden, hd = c->head_dim;
    const int KVD = c->n_kv_heads * hd, mbps = m->max_blocks_per_seq;
    const float eps = c->rms_eps;
    cudaStream_t st = s->stream;

    /* step metadata in one upload: tokens [T], pos [T], entry [T], logit rows [L], block tables [E][mbps] */
    int32_t *h = s->host_ints;
    memcpy(h, p->tokens, (size_t)T * 4);
    memcpy(h + T, p->tok_pos, (size_t)T * 4);
    memcpy(h + 2 * T, p->tok_entry, (size_t)T * 4);
    memcpy(h + 3 * T, p->logit_tok, (size_t)p->n_logits * 4);
    int32_t *tables = h + 3 * T + p->n_logits;
    for (int e = 0; e < p->n_entries; e++)
        memcpy(tables + (int64_t)e * mbps, m->block_table + (int64_t)p->entries[e].seq * mbps, (size_t)mbps * 4);
    const int64_t n_ints = 3ll * T + p->n_logits + (int64_t)p->n_entries * mbps;
    CU(cudaMemcpyAsync(s->ints, h, (size_t)n_ints * 4, cudaMemcpyHostToDevice, st), "uploading the step");
    const int32_t *d_tokens = s->ints, *d_pos = s->ints + T, *d_entry = s->ints + 2 * T;
    const int32_t *d_logit_tok = s->ints + 3 * T, *d_tables = d_logit_tok + p->n_logits;

    /* x [T][D] = embeddings */
    const ck_tensor *emb = &m->token_embd;
    switch (emb->dtype) {
    case CK_F32: embed_kernel<CK_F32><<<T, THREADS, 0, st>>>(s->x, emb->dev, d_tokens, D); break;
    case CK_F16: embed_kernel<CK_F16><<<T, THREADS, 0, st>>>(s->x, emb->dev, d_tokens, D); break;
    case CK_BF16: embed_kernel<CK_BF16><<<T, THREADS, 0, st>>>(s->x, emb->dev, d_tokens, D); break;
    default: embed_kernel<CK_Q8_0><<<T, THREADS, 0, st>>>(s->x, emb->dev, d_tokens, D); break;
    }

    const size_t att_shared = (size_t)(2 * hd + ATT_THREADS + 33) * sizeof(float);
    for (int l = 0; l < c->n_layers; l++) {
        const ck_layer *L = &m->layers[l];
        float *kc = s->kv + (int64_t)l * 2 * s->kv_layer, *vc = kc + s->kv_layer;

        /* attention */
        rmsnorm_kernel<<<T, THREADS, 0, st>>>(s->xb, s->x, (const float *)L->attn_norm.dev, D, eps, NULL);
        matmul(st, s->q, s->xb, &L->wq, c->attn_bias ? (const float *)L->bq.dev : NULL, T);
        matmul(st, s->k, s->xb, &L->wk, c->attn_bias ? (const float *)L->bk.dev : NULL, T);
        matmul(st, s->v, s->xb, &L->wv, c->attn_bias ? (const float *)L->bv.dev : NULL, T);
        if (c->qk_norm) {
            rmsnorm_kernel<<<T * c->n_heads, 64, 0, st>>>(s->q, s->q, (const float *)L->q_norm.dev, hd, eps, NULL);
            rmsnorm_kernel<<<T * c->n_kv_heads, 64, 0, st>>>(s->k, s->k, (const float *)L->k_norm.dev, hd, eps, NULL);
        }
        rope_kernel<<<T, THREADS, 0, st>>>(s->q, s->k, d_pos, s->inv_freq, c->n_heads, c->n_kv_heads, hd);
        kv_store_kernel<<<T, THREADS, 0, st>>>(kc, vc, s->k, s->v, d_pos, d_entry, d_tables, mbps, m->block_tokens, KVD);
        attention_kernel<<<dim3(T, c->n_heads), ATT_THREADS, att_shared, st>>>(
            s->att, s->q, kc, vc, d_pos, d_entry, d_tables, mbps, m->block_tokens, c->n_heads, c->n_heads / c->n_kv_heads, hd, KVD);
        matmul(st, s->xo, s->att, &L->wo, NULL, T);
        add_kernel<<<blocks_for((int64_t)T * D, THREADS), THREADS, 0, st>>>(s->x, s->xo, (int64_t)T * D);

        /* feed-forward */
        rmsnorm_kernel<<<T, THREADS, 0, st>>>(s->xb, s->x, (const float *)L->ffn_norm.dev, D, eps, NULL);
        matmul(st, s->hb, s->xb, &L->w_gate, NULL, T);
        matmul(st, s->hb2, s->xb, &L->w_up, NULL, T);
        swiglu_kernel<<<blocks_for((int64_t)T * F, THREADS), THREADS, 0, st>>>(s->hb, s->hb2, (int64_t)T * F);
        matmul(st, s->xo, s->hb, &L->w_down, NULL, T);
        add_kernel<<<blocks_for((int64_t)T * D, THREADS), THREADS, 0, st>>>(s->x, s->xo, (int64_t)T * D);
        CU(cudaGetLastError(), "launching a layer's kernels");
    }

    if (p->n_logits > 0) {
        rmsnorm_kernel<<<p->n_logits, THREADS, 0, st>>>(s->xb, s->x, (const float *)m->output_norm.dev, D, eps, d_logit_tok);
        matmul(st, s->logits, s->xb, c->tied_embeddings ? &m->token_embd : &m->output, NULL, p->n_logits);
        CU(cudaGetLastError(), "launching the output kernels");
        CU(cudaMemcpyAsync(logits, s->logits, (size_t)p->n_logits * c->vocab * sizeof(float), cudaMemcpyDeviceToHost, st),
           "copying logits");
    }
    CU(cudaStreamSynchronize(st), "running the step");
    return CK_OK;
}
