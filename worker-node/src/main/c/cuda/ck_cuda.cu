/*
 * ck_cuda.cu: the CUDA backend. Same front end (ck_core.c, ck_sample.c, ck_numeric.c), same ABI;
 * weights (in their dtype), activations and the KV cache live on one GPU, logits come back to the
 * host for sampling.
 *
 * A decode step reads every weight once and is many small dependent operations; on an H100 their
 * latencies, not their bytes, set a step's time (docs/benchmarks.md, "GPU"). So the pass is six
 * kernels a layer, each fusing what it can (the RMSNorm into the matmul that
 * reads its output, q/k/v into one launch, gate and up and SiLU into one, the residual add into
 * the matmul that produces it, RoPE with the cache store), matmuls read weights 16 bytes a lane,
 * and decode steps replay a captured CUDA graph instead of launching each kernel. Every output
 * element is computed by the same threads in the same order whatever else is in the batch, so a
 * sequence's results do not depend on its neighbours (as on the CPU).
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

#define THREADS 256 /* the embedding lookup */

/* ================================================================ device helpers */

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
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

/* Elements 8v .. 8v+7 of row o, as f32. Rows of F32/F16/BF16 start 16-byte aligned because every
 * matrix's in_features is a multiple of 8 on this backend (ck_be_create), so one or two 16-byte
 * loads bring them; a Q8_0 block holds four such runs. */
template <int DT>
__device__ __forceinline__ void load8(const void *w, int64_t o, int in, int v, float *out) {
    if (DT == CK_F32) {
        const float4 *p = (const float4 *)((const float *)w + o * in) + 2 * v;
        const float4 a = __ldg(p), b = __ldg(p + 1);
        out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w, out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
    } else if (DT == CK_Q8_0) {
        const uint8_t *blk = (const uint8_t *)w + (o * (in / 32) + v / 4) * 34;
        const float d = __half2float(*(const __half *)blk);
        const int8_t *q = (const int8_t *)blk + 2 + (v % 4) * 8;
        for (int k = 0; k < 8; k++) out[k] = d * (float)q[k];
    } else {
        const uint4 u = __ldg((const uint4 *)((const uint16_t *)w + o * in) + v);
        const unsigned h[4] = {u.x, u.y, u.z, u.w};
        for (int k = 0; k < 4; k++) {
            if (DT == CK_BF16) {
                out[2 * k] = __uint_as_float(h[k] << 16);
                out[2 * k + 1] = __uint_as_float(h[k] & 0xffff0000u);
            } else {
                const float2 f = __half22float2(*(const __half2 *)&h[k]);
                out[2 * k] = f.x, out[2 * k + 1] = f.y;
            }
        }
    }
}

enum { MM_SET = 0, MM_ADD = 1, MM_GATED = 2 };

/* Up to three matrices with the same input (q, k and v), each writing its own output. */
struct mm_part {
    const void *w;
    const float *bias; /* [rows] or NULL */
    float *y;          /* row t of the output starts at y + t * y_stride */
    int rows, y_stride, first_block;
};

struct mm_args {
    const float *x;      /* [*][in] */
    const int32_t *rows; /* token t reads x row rows[t]; NULL: row t */
    const float *norm;   /* [in]: multiply RMSNorm(x) rather than x; NULL: x as it is */
    float eps;
    int in, T, n_parts;
    mm_part part[3];
    const void *w_up; /* MM_GATED: y = silu(x.W^T) * (x.W_up^T), W_up shaped like part[0].w */
};

#define MM_WARPS 8 /* matmul: warps per block */
#define MM_KC 1024 /* staged matmul: activations of this many inputs at a time in shared memory */

/* y [T][rows] (=, += or gated) x [T][in] . W^T (+ bias), with x optionally RMS-normalised on the
 * way in. The block first copies TT tokens' activations, MM_KC inputs at a time, to shared
 * memory (its warps would otherwise each read them: as many bytes as the rows they multiply).
 * A warp takes R rows: lane l multiplies elements 8l .. 8l+7, 256 + 8l .., so the warp reads a
 * row in 512-byte (bf16) strides, then sums its lanes. The norm's 1/rms is a factor of the whole
 * dot product, so it is applied after the sum (x^2 is summed in the same pass) and the norm
 * weight folds into the row. A lane meets the same elements in the same order whatever R and TT
 * are, and the arithmetic is spelled out (no contraction left to the compiler), so a (row, token)
 * sum does not depend on them or on the rest of the batch: a sequence's results do not depend on
 * its neighbours. */
template <int DT, int R, int TT, int MODE>
__global__ void matmul_kernel(const mm_args a) {
    __shared__ float xs[TT * MM_KC];
    int pi = 0;
    while (pi + 1 < a.n_parts && blockIdx.x >= a.part[pi + 1].first_block) pi++;
    const mm_part P = a.part[pi];
    const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    const int o0 = ((blockIdx.x - P.first_block) * warps + (threadIdx.x >> 5)) * R;
    const int in = a.in;
    for (int t0 = blockIdx.y * TT; t0 < a.T; t0 += gridDim.y * TT) {
        const int nt = min(TT, a.T - t0);
        float acc[R][TT], acc_up[MODE == MM_GATED ? R : 1][TT], ss[TT];
#pragma unroll
        for (int c = 0; c < TT; c++) {
            ss[c] = 0.0f;
#pragma unroll
            for (int r = 0; r < R; r++) acc[r][c] = 0.0f, acc_up[MODE == MM_GATED ? r : 0][c] = 0.0f;
        }
        for (int k0 = 0; k0 < in; k0 += MM_KC) {
            const int kn = min(MM_KC, in - k0);
            __syncthreads(); /* the last chunk has been read (every warp takes part in the copies) */
            for (int i = threadIdx.x; i < nt * (kn / 4); i += blockDim.x) {
                const int c = i / (kn / 4), e = i % (kn / 4), t = t0 + c;
                ((float4 *)(xs + c * MM_KC))[e] = ((const float4 *)(a.x + (int64_t)(a.rows ? a.rows[t] : t) * in + k0))[e];
            }
            __syncthreads();
            if (o0 >= P.rows) continue;
#pragma unroll 8
            for (int v = k0 / 8 + lane; v < (k0 + kn) / 8; v += 32) {
                float w[R][8], wu[MODE == MM_GATED ? R : 1][8], g[8];
                if (a.norm) {
                    const float4 p = ((const float4 *)a.norm)[2 * v], q = ((const float4 *)a.norm)[2 * v + 1];
                    g[0] = p.x, g[1] = p.y, g[2] = p.z, g[3] = p.w, g[4] = q.x, g[5] = q.y, g[6] = q.z, g[7] = q.w;
                }
#pragma unroll
                for (int r = 0; r < R; r++) {
                    const int o = min(o0 + r, P.rows - 1);
                    load8<DT>(P.w, o, in, v, w[r]);
                    if (MODE == MM_GATED) load8<DT>(a.w_up, o, in, v, wu[r]);
                    if (a.norm)
#pragma unroll
                        for (int k = 0; k < 8; k++) {
                            w[r][k] = __fmul_rn(w[r][k], g[k]);
                            if (MODE == MM_GATED) wu[r][k] = __fmul_rn(wu[r][k], g[k]);
                        }
                }
#pragma unroll
                for (int c = 0; c < TT; c++) {
                    if (c >= nt) break;
                    const float4 *xp = (const float4 *)(xs + c * MM_KC + (8 * v - k0));
                    const float4 p = xp[0], q = xp[1];
                    const float xv[8] = {p.x, p.y, p.z, p.w, q.x, q.y, q.z, q.w};
#pragma unroll
                    for (int k = 0; k < 8; k++) {
                        if (a.norm) ss[c] = __fmaf_rn(xv[k], xv[k], ss[c]);
#pragma unroll
                        for (int r = 0; r < R; r++) {
                            acc[r][c] = __fmaf_rn(w[r][k], xv[k], acc[r][c]);
                            if (MODE == MM_GATED) acc_up[r][c] = __fmaf_rn(wu[r][k], xv[k], acc_up[r][c]);
                        }
                    }
                }
            }
        }
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int c = 0; c < TT; c++) {
                if (c >= nt) break;
                if (r == 0 && a.norm) ss[c] = 1.0f / sqrtf(__fadd_rn(__fdiv_rn(warp_sum(ss[c]), (float)in), a.eps));
                const float scale = a.norm ? ss[c] : 1.0f;
                const int o = o0 + r;
                float s = __fmul_rn(warp_sum(acc[r][c]), scale);
                if (MODE == MM_GATED) {
                    const float u = __fmul_rn(warp_sum(acc_up[r][c]), scale);
                    s = __fmul_rn(__fdiv_rn(s, __fadd_rn(1.0f, expf(-s))), u);
                }
                if (lane == 0 && o < P.rows) {
                    float *y = P.y + (int64_t)(t0 + c) * P.y_stride + o;
                    if (P.bias) s = __fadd_rn(s, P.bias[o]);
                    *y = MODE == MM_ADD ? __fadd_rn(*y, s) : s;
                }
            }
    }
}

/* One warp per (token, head): q and k heads get the Qwen3 per-head RMSNorm (when
 * q_norm is set) and RoPE (rotate_half: pairs i, i + hd/2); rotated q goes to q_out [T][n_heads][hd],
 * k and v to the layer's cache at the token's (block, slot). qkv is [T][(n_heads + 2 n_kv) hd]. */
__global__ void rope_store_kernel(float *q_out, float *kc, float *vc, const float *qkv, const int32_t *tok_pos,
                                  const int32_t *tok_entry, const int32_t *tables, int mbps, int bt, int n_heads,
                                  int n_kv, int hd, const float *inv_freq, const float *q_norm, const float *k_norm,
                                  float eps) {
    extern __shared__ float buf[]; /* [hd] */
    const int t = blockIdx.x, h = blockIdx.y, lane = threadIdx.x;
    const int pos = tok_pos[t], half = hd / 2, kvd = n_kv * hd;
    const int64_t slot = (int64_t)tables[(int64_t)tok_entry[t] * mbps + pos / bt] * bt + pos % bt;
    const float *src = qkv + (int64_t)t * (n_heads + 2 * n_kv) * hd + (int64_t)h * hd;
    if (h >= n_heads + n_kv) {
        for (int d = lane; d < hd; d += 32) vc[slot * kvd + (h - n_heads - n_kv) * hd + d] = src[d];
        return;
    }
    const bool is_q = h < n_heads;
    float *dst = is_q ? q_out + ((int64_t)t * n_heads + h) * hd : kc + slot * kvd + (h - n_heads) * hd;
    const float *nw = is_q ? q_norm : k_norm;
    float scale = 1.0f, ss = 0.0f;
    for (int d = lane; d < hd; d += 32) ss += src[d] * src[d];
    if (nw) scale = 1.0f / sqrtf(warp_sum(ss) / (float)hd + eps);
    for (int d = lane; d < hd; d += 32) buf[d] = nw ? src[d] * scale * nw[d] : src[d];
    __syncwarp();
    for (int i = lane; i < half; i += 32) {
        const float angle = (float)pos * inv_freq[i], c = cosf(angle), s = sinf(angle);
        const float x0 = buf[i], x1 = buf[i + half];
        dst[i] = x0 * c - x1 * s;
        dst[i + half] = x1 * c + x0 * s;
    }
}

#define HD_LANES 8 /* head_dim <= 256: each lane holds up to 8 of the output's elements */

/* One block per (token, head): softmax(q . k_j / sqrt(hd)) . v_j over j <= pos. Each warp takes
 * chunks of 32 keys (chunk w, w + warps, ...): lane j scores key j, then the warp walks the
 * chunk's value rows with its lanes over head_dim (coalesced), keeping a running max and sum
 * (online softmax). The warps' partial results are merged at the end. Any context length
 * fits; a short one is spread over the warps rather than walked by one. */
__global__ void attention_kernel(float *att, const float *q, const float *kc, const float *vc, const int32_t *tok_pos,
                                 const int32_t *tok_entry, const int32_t *tables, int mbps, int bt, int n_heads,
                                 int group, int hd, int kvd) {
    extern __shared__ float sh[]; /* q [hd], then per warp: m, l, acc [hd] */
    const int t = blockIdx.x, h = blockIdx.y, kvh = h / group;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const int32_t *blocks = tables + (int64_t)tok_entry[t] * mbps;
    const int n_ctx = tok_pos[t] + 1;
    const float scale = 1.0f / sqrtf((float)hd);
    float *sq = sh, *part = sh + hd, acc[HD_LANES], m = -INFINITY, l = 0.0f;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) sq[d] = q[((int64_t)t * n_heads + h) * hd + d] * scale;
#pragma unroll
    for (int r = 0; r < HD_LANES; r++) acc[r] = 0.0f;
    __syncthreads();
    for (int j0 = warp * 32; j0 < n_ctx; j0 += warps * 32) {
        const int j = j0 + lane, nk = min(32, n_ctx - j0);
        /* lane j's key and value rows start here; the loops below take each key's from its lane */
        const int64_t row = j < n_ctx ? ((int64_t)blocks[j / bt] * bt + j % bt) * kvd + kvh * hd : 0;
        float s = -INFINITY;
        if (j < n_ctx) {
            const float4 *kj = (const float4 *)(kc + row);
            float dot = 0.0f;
#pragma unroll 8
            for (int d4 = 0; d4 < hd / 4; d4++) {
                const float4 k4 = kj[d4];
                dot += sq[4 * d4] * k4.x + sq[4 * d4 + 1] * k4.y + sq[4 * d4 + 2] * k4.z + sq[4 * d4 + 3] * k4.w;
            }
            s = dot;
        }
        const float m_new = fmaxf(m, warp_max(s)); /* finite: key j0 exists */
        const float alpha = expf(m - m_new), p = j < n_ctx ? expf(s - m_new) : 0.0f;
        l = l * alpha + warp_sum(p);
#pragma unroll
        for (int r = 0; r < HD_LANES; r++) acc[r] *= alpha;
#pragma unroll 8
        for (int jj = 0; jj < nk; jj++) {
            const float pj = __shfl_sync(0xffffffffu, p, jj);
            const float *vj = vc + __shfl_sync(0xffffffffu, row, jj);
#pragma unroll
            for (int r = 0; r < HD_LANES; r++)
                if (lane + 32 * r < hd) acc[r] = fmaf(pj, vj[lane + 32 * r], acc[r]);
        }
        m = m_new;
    }
    float *mine = part + warp * (hd + 2);
    if (lane == 0) mine[0] = m, mine[1] = l;
#pragma unroll
    for (int r = 0; r < HD_LANES; r++)
        if (lane + 32 * r < hd) mine[2 + lane + 32 * r] = acc[r];
    __syncthreads();
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float mx = -INFINITY, sum = 0.0f, o = 0.0f;
        for (int w = 0; w < warps; w++) mx = fmaxf(mx, part[w * (hd + 2)]);
        for (int w = 0; w < warps; w++) {
            const float *pw = part + w * (hd + 2);
            const float f = expf(pw[0] - mx); /* 0 for a warp without keys */
            sum += pw[1] * f;
            o += pw[2 + d] * f;
        }
        att[((int64_t)t * n_heads + h) * hd + d] = o / sum;
    }
}

static unsigned blocks_for(int64_t n, int per) {
    return (unsigned)((n + per - 1) / per);
}

/* ================================================================ backend state */

#define GRAPH_MAX_T 64 /* steps of up to this many tokens, all sampling (decode), replay a CUDA graph */

typedef struct {
    cudaStream_t stream;
    int n_sm; /* multiprocessors */
    int32_t cap_T, cap_L, cap_E;
    float *x;      /* [T][hidden] the residual stream */
    float *qkv;    /* [T][(n_heads + 2 n_kv) head_dim] projections */
    float *q;      /* [T][n_heads head_dim] q after RoPE */
    float *att;    /* [T][n_heads head_dim] attention output */
    float *hb;     /* [T][ffn_hidden] silu(gate) * up */
    float *logits;      /* [cap_L][vocab] */
    float *host_logits; /* [cap_L][vocab], page-locked, so the copy back runs at the link's speed */
    cudaGraphExec_t graphs[GRAPH_MAX_T]; /* [T - 1]: the captured step; its buffers are the ones above */
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
    const ck_config *c = &m->cfg;
    if (c->hidden % 8 || (c->n_heads * c->head_dim) % 8 || c->ffn_hidden % 8 || c->head_dim % 4 ||
        c->head_dim > 32 * HD_LANES)
        return ck_fail(m, CK_E_UNSUPPORTED,
                       "the CUDA backend needs hidden, n_heads * head_dim and ffn_hidden to be multiples of 8, "
                       "and head_dim a multiple of 4 up to %d",
                       32 * HD_LANES);
    cuda_state *s = (cuda_state *)calloc(1, sizeof(cuda_state));
    if (!s) return ck_fail(m, CK_E_NOMEM, "out of host memory");
    m->be = s;
    CU(cudaSetDevice(0), "cudaSetDevice");
    CU(cudaDeviceGetAttribute(&s->n_sm, cudaDevAttrMultiProcessorCount, 0), "cudaDeviceGetAttribute");
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
    for (int l = 0; l < m->cfg.n_layers; l++) { /* one launch multiplies q, k and v, one gate and up */
        const ck_layer *L = &m->layers[l];
        if (L->wk.dtype != L->wq.dtype || L->wv.dtype != L->wq.dtype || L->w_up.dtype != L->w_gate.dtype)
            return ck_fail(m, CK_E_UNSUPPORTED, "layer %d: the CUDA backend needs q, k and v in one dtype, and gate and up in one", l);
    }
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
#define N_ACT 5
static void act_slots(ck_model *m, cuda_state *s, float ***slots, int64_t *width) {
    const ck_config *c = &m->cfg;
    const int64_t D = c->hidden, QD = (int64_t)c->n_heads * c->head_dim, KVD = (int64_t)c->n_kv_heads * c->head_dim;
    float **p[N_ACT] = {&s->x, &s->qkv, &s->q, &s->att, &s->hb};
    int64_t w[N_ACT] = {D, QD + 2 * KVD, QD, QD, c->ffn_hidden};
    memcpy(slots, p, sizeof p);
    memcpy(width, w, sizeof w);
}

static int64_t ints_needed(const ck_model *m, int32_t T, int32_t L, int32_t E) {
    return 3ll * T + L + (int64_t)E * m->max_blocks_per_seq;
}

static void free_buffers(ck_model *m, cuda_state *s) {
    for (int i = 0; i < GRAPH_MAX_T; i++)
        if (s->graphs[i]) {
            cudaGraphExecDestroy(s->graphs[i]);
            s->graphs[i] = NULL;
        }
    float **slots[N_ACT];
    int64_t width[N_ACT];
    act_slots(m, s, slots, width);
    for (int i = 0; i < N_ACT; i++) {
        dev_free(m, *slots[i], (size_t)(s->cap_T * width[i]) * sizeof(float));
        *slots[i] = NULL;
    }
    dev_free(m, s->logits, (size_t)s->cap_L * m->cfg.vocab * sizeof(float));
    if (s->host_logits) {
        cudaFreeHost(s->host_logits);
        ck_account(m, -(int64_t)s->cap_L * m->cfg.vocab * (int64_t)sizeof(float));
    }
    dev_free(m, s->ints, (size_t)s->ints_len * sizeof(int32_t));
    if (s->host_ints) {
        free(s->host_ints);
        ck_account(m, -(int64_t)s->ints_len * 4);
    }
    s->logits = s->host_logits = NULL;
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
    /* simplest correct thing: drop the old buffers (the step has not started) and allocate anew */
    free_buffers(m, s);
    float **slots[N_ACT];
    int64_t width[N_ACT];
    act_slots(m, s, slots, width);
    cudaError_t e = cudaSuccess;
    for (int i = 0; i < N_ACT && e == cudaSuccess; i++) e = dev_alloc(m, (void **)slots[i], (size_t)(T * width[i]) * sizeof(float));
    if (e == cudaSuccess) e = dev_alloc(m, (void **)&s->logits, (size_t)L * m->cfg.vocab * sizeof(float));
    if (e == cudaSuccess) {
        e = cudaMallocHost((void **)&s->host_logits, (size_t)L * m->cfg.vocab * sizeof(float));
        if (e == cudaSuccess) ck_account(m, (int64_t)L * m->cfg.vocab * (int64_t)sizeof(float));
        else s->host_logits = NULL;
    }
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

/* rows a warp takes with many tokens: gate and up are two matrices, so half as many */
#define MM_WIDE_ROWS(mode) ((mode) == MM_GATED ? 2 : 4)
#define MM_WIDE_TOKENS 8

template <int DT, int MODE>
static void matmul_go(cudaStream_t st, const mm_args &a, unsigned blocks, bool small, int n_sm) {
    if (small) {
        matmul_kernel<DT, 1, 4, MODE><<<blocks, 32 * MM_WARPS, 0, st>>>(a);
    } else { /* too few row blocks to fill the GPU: a block per (rows, 8 tokens) */
        dim3 grid(blocks, blocks < 2u * n_sm ? blocks_for(a.T, MM_WIDE_TOKENS) : 1);
        matmul_kernel<DT, MM_WIDE_ROWS(MODE), MM_WIDE_TOKENS, MODE><<<grid, 32 * MM_WARPS, 0, st>>>(a);
    }
}

template <int DT>
static void matmul_mode(cudaStream_t st, const mm_args &a, unsigned blocks, bool small, int mode, int n_sm) {
    if (mode == MM_SET) matmul_go<DT, MM_SET>(st, a, blocks, small, n_sm);
    else if (mode == MM_ADD) matmul_go<DT, MM_ADD>(st, a, blocks, small, n_sm);
    else matmul_go<DT, MM_GATED>(st, a, blocks, small, n_sm);
}

/* Launches matmul_kernel over a's parts: a few tokens (decode) get a warp per row, so that many
 * rows are read at once; more tokens get several rows per warp, so that each activation read
 * from shared memory serves several rows. */
static void matmul(cudaStream_t st, mm_args a, int dtype, int mode, int n_sm) {
    const bool small = a.T <= 4;
    const int rows_per_block = MM_WARPS * (small ? 1 : MM_WIDE_ROWS(mode));
    unsigned blocks = 0;
    for (int i = 0; i < a.n_parts; i++) {
        a.part[i].first_block = (int)blocks;
        blocks += blocks_for(a.part[i].rows, rows_per_block);
    }
    switch (dtype) {
    case CK_F32: matmul_mode<CK_F32>(st, a, blocks, small, mode, n_sm); break;
    case CK_F16: matmul_mode<CK_F16>(st, a, blocks, small, mode, n_sm); break;
    case CK_BF16: matmul_mode<CK_BF16>(st, a, blocks, small, mode, n_sm); break;
    default: matmul_mode<CK_Q8_0>(st, a, blocks, small, mode, n_sm); break;
    }
}

static mm_args mm_input(const float *x, int in, int T, const ck_tensor *norm, float eps) {
    mm_args a;
    memset(&a, 0, sizeof a);
    a.x = x, a.in = in, a.T = T, a.eps = eps, a.n_parts = 1;
    a.norm = norm ? (const float *)norm->dev : NULL;
    return a;
}

static mm_part mm_out(const ck_tensor *w, const ck_tensor *bias, float *y, int y_stride) {
    mm_part p = {w->dev, bias ? (const float *)bias->dev : NULL, y, (int)w->rows, y_stride, 0};
    return p;
}

#define ATT_WARPS 8

/* The whole forward pass of a step of T tokens with logits for L of them, on the stream; the
 * step's metadata is already on the device (ints). Nothing here depends on more than T and L,
 * so a decode step's launches can be captured once and replayed. */
static void enqueue_forward(ck_model *m, cuda_state *s, int T, int L) {
    const ck_config *c = &m->cfg;
    const int D = c->hidden, F = c->ffn_hidden, hd = c->head_dim, H = c->n_heads, KV = c->n_kv_heads;
    const int QD = H * hd, KVD = KV * hd, QKV = QD + 2 * KVD, mbps = m->max_blocks_per_seq, bt = m->block_tokens;
    const float eps = c->rms_eps;
    cudaStream_t st = s->stream;
    const int32_t *d_tokens = s->ints, *d_pos = s->ints + T, *d_entry = s->ints + 2 * T;
    const int32_t *d_logit_tok = s->ints + 3 * T, *d_tables = d_logit_tok + L;

    const ck_tensor *emb = &m->token_embd;
    switch (emb->dtype) {
    case CK_F32: embed_kernel<CK_F32><<<T, THREADS, 0, st>>>(s->x, emb->dev, d_tokens, D); break;
    case CK_F16: embed_kernel<CK_F16><<<T, THREADS, 0, st>>>(s->x, emb->dev, d_tokens, D); break;
    case CK_BF16: embed_kernel<CK_BF16><<<T, THREADS, 0, st>>>(s->x, emb->dev, d_tokens, D); break;
    default: embed_kernel<CK_Q8_0><<<T, THREADS, 0, st>>>(s->x, emb->dev, d_tokens, D); break;
    }

    for (int l = 0; l < c->n_layers; l++) {
        const ck_layer *Ly = &m->layers[l];
        float *kc = s->kv + (int64_t)l * 2 * s->kv_layer, *vc = kc + s->kv_layer;
        const bool bias = c->attn_bias != 0;

        /* qkv = RMSNorm(x) . [Wq; Wk; Wv]^T (+ biases), then RoPE, q aside, k and v into the cache */
        mm_args a = mm_input(s->x, D, T, &Ly->attn_norm, eps);
        a.n_parts = 3;
        a.part[0] = mm_out(&Ly->wq, bias ? &Ly->bq : NULL, s->qkv, QKV);
        a.part[1] = mm_out(&Ly->wk, bias ? &Ly->bk : NULL, s->qkv + QD, QKV);
        a.part[2] = mm_out(&Ly->wv, bias ? &Ly->bv : NULL, s->qkv + QD + KVD, QKV);
        matmul(st, a, Ly->wq.dtype, MM_SET, s->n_sm);
        rope_store_kernel<<<dim3(T, H + 2 * KV), 32, hd * sizeof(float), st>>>(
            s->q, kc, vc, s->qkv, d_pos, d_entry, d_tables, mbps, bt, H, KV, hd, s->inv_freq,
            c->qk_norm ? (const float *)Ly->q_norm.dev : NULL, c->qk_norm ? (const float *)Ly->k_norm.dev : NULL, eps);

        /* x += attention . Wo^T */
        attention_kernel<<<dim3(T, H), 32 * ATT_WARPS, (hd + ATT_WARPS * (hd + 2)) * sizeof(float), st>>>(
            s->att, s->q, kc, vc, d_pos, d_entry, d_tables, mbps, bt, H, H / KV, hd, KVD);
        a = mm_input(s->att, QD, T, NULL, eps);
        a.part[0] = mm_out(&Ly->wo, NULL, s->x, D);
        matmul(st, a, Ly->wo.dtype, MM_ADD, s->n_sm);

        /* x += (silu(RMSNorm(x) . Wgate^T) * RMSNorm(x) . Wup^T) . Wdown^T */
        a = mm_input(s->x, D, T, &Ly->ffn_norm, eps);
        a.part[0] = mm_out(&Ly->w_gate, NULL, s->hb, F);
        a.w_up = Ly->w_up.dev;
        matmul(st, a, Ly->w_gate.dtype, MM_GATED, s->n_sm);
        a = mm_input(s->hb, F, T, NULL, eps);
        a.part[0] = mm_out(&Ly->w_down, NULL, s->x, D);
        matmul(st, a, Ly->w_down.dtype, MM_ADD, s->n_sm);
    }

    if (L > 0) { /* logits of the wanted tokens = RMSNorm(x) . OUTPUT^T */
        const ck_tensor *out = c->tied_embeddings ? &m->token_embd : &m->output;
        mm_args a = mm_input(s->x, D, L, &m->output_norm, eps);
        a.rows = d_logit_tok;
        a.part[0] = mm_out(out, NULL, s->logits, c->vocab);
        matmul(st, a, out->dtype, MM_SET, s->n_sm);
    }
}

extern "C" int ck_be_forward(ck_model *m, const ck_plan *p, const float **logits) {
    cuda_state *s = (cuda_state *)m->be;
    const int T = p->n_tokens, L = p->n_logits, mbps = m->max_blocks_per_seq;
    cudaStream_t st = s->stream;

    /* step metadata in one upload: tokens [T], pos [T], entry [T], logit rows [L], block tables [E][mbps] */
    int32_t *h = s->host_ints;
    memcpy(h, p->tokens, (size_t)T * 4);
    memcpy(h + T, p->tok_pos, (size_t)T * 4);
    memcpy(h + 2 * T, p->tok_entry, (size_t)T * 4);
    memcpy(h + 3 * T, p->logit_tok, (size_t)L * 4);
    int32_t *tables = h + 3 * T + L;
    for (int e = 0; e < p->n_entries; e++)
        memcpy(tables + (int64_t)e * mbps, m->block_table + (int64_t)p->entries[e].seq * mbps, (size_t)mbps * 4);
    const int64_t n_ints = 3ll * T + L + (int64_t)p->n_entries * mbps;
    CU(cudaMemcpyAsync(s->ints, h, (size_t)n_ints * 4, cudaMemcpyHostToDevice, st), "uploading the step");

    /* A decode step is ~150 small kernels: replaying them as one graph saves their launch gaps. */
    if (T == L && T <= GRAPH_MAX_T) {
        cudaGraphExec_t *g = &s->graphs[T - 1];
        if (!*g) {
            CU(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal), "capturing the step");
            enqueue_forward(m, s, T, L);
            cudaGraph_t graph = NULL;
            cudaError_t e = cudaStreamEndCapture(st, &graph);
            if (e == cudaSuccess) {
                e = cudaGraphInstantiate(g, graph, 0);
                cudaGraphDestroy(graph);
            }
            if (e != cudaSuccess) {
                *g = NULL;
                return cuda_fail(m, e, "capturing the step");
            }
        }
        CU(cudaGraphLaunch(*g, st), "launching the step");
    } else {
        enqueue_forward(m, s, T, L);
        CU(cudaGetLastError(), "launching the step's kernels");
    }
    if (L > 0)
        CU(cudaMemcpyAsync(s->host_logits, s->logits, (size_t)L * m->cfg.vocab * sizeof(float), cudaMemcpyDeviceToHost, st),
           "copying logits");
    CU(cudaStreamSynchronize(st), "running the step");
    *logits = s->host_logits;
    return CK_OK;
}
