/*
 * ck_cpu_fast.c: AVX2 + FMA + F16C versions of the hot kernels (compiled in when the compiler
 * targets them, e.g. -march=native on a Haswell-or-later x86). With AVX-512 VNNI the Q8_0
 * integer dot product uses vpdpbusd; otherwise the classic maddubs/madd pair.
 *
 * Every output element is computed by the same instructions in the same order wherever its row
 * falls in a thread's share and however the step's tokens are grouped, so a sequence's results do
 * not depend on what it is batched with.
 *
 * Q8_0: x is first quantised per block of 32 to int8 with an f32 scale (prep_x), so that the
 * inner loop is an int8 x int8 dot product; the result differs from the plain kernel by that
 * rounding (about 0.5% of a block's largest |x|), as in every Q8_0 engine.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "ck_cpu.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

static inline float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---------------------------------------------------------------- f32 / f16 / bf16 rows */

static inline __m256 load8_f32(const void *p, int64_t i) {
    return _mm256_loadu_ps((const float *)p + i);
}
static inline __m256 load8_f16(const void *p, int64_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
}
static inline __m256 load8_bf16(const void *p, int64_t i) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}
static inline float load1_f32(const void *p, int64_t i) {
    return ((const float *)p)[i];
}
static inline float load1_f16(const void *p, int64_t i) {
    return _cvtsh_ss(((const uint16_t *)p)[i]);
}
static inline float load1_bf16(const void *p, int64_t i) {
    uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* One weight row against C tokens. Per dot product: K 8-wide accumulators, the i-th group of 8
 * elements going to accumulator i % K (K chains hide the FMA latency), then the accumulators
 * summed, the horizontal sum, and the scalar rest. The same instructions run for each token
 * whether C is 1 or 4, so results do not depend on how tokens are grouped. */
#define K 4
#define DEFINE_ROW_DOT(NAME, LOAD8, LOAD1, C)                                                   \
    static inline void NAME(const void *row, const float *x, int64_t in, float *y, int64_t ldy) { \
        __m256 acc[K][C];                                                                       \
        for (int k = 0; k < K; k++)                                                             \
            for (int c = 0; c < C; c++) acc[k][c] = _mm256_setzero_ps();                        \
        int64_t i = 0;                                                                          \
        for (; i + 8 * K <= in; i += 8 * K)                                                     \
            for (int k = 0; k < K; k++) {                                                       \
                __m256 w = LOAD8(row, i + 8 * k);                                               \
                for (int c = 0; c < C; c++)                                                     \
                    acc[k][c] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + c * in + i + 8 * k), acc[k][c]); \
            }                                                                                   \
        for (int k = 0; i + 8 <= in; i += 8, k++) {                                             \
            __m256 w = LOAD8(row, i);                                                           \
            for (int c = 0; c < C; c++) acc[k][c] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + c * in + i), acc[k][c]); \
        }                                                                                       \
        for (int c = 0; c < C; c++) {                                                           \
            __m256 a = _mm256_add_ps(_mm256_add_ps(acc[0][c], acc[1][c]), _mm256_add_ps(acc[2][c], acc[3][c])); \
            float s = hsum(a);                                                                  \
            for (int64_t j = i; j < in; j++) s = fmaf(LOAD1(row, j), x[c * in + j], s);         \
            y[c * ldy] = s;                                                                     \
        }                                                                                       \
    }

/* Rows one at a time, so each thread streams one contiguous run of weights (several row streams
 * at once measured 3x slower from DRAM); tokens four at a time, so a row is loaded once per four. */
#define DEFINE_MATMUL(NAME, LOAD8, LOAD1, ELEM)                                                 \
    DEFINE_ROW_DOT(NAME##_1, LOAD8, LOAD1, 1)                                                   \
    DEFINE_ROW_DOT(NAME##_4, LOAD8, LOAD1, 4)                                                   \
    static void NAME(const ck_mm *a, int64_t r0, int64_t r1) {                                  \
        for (int64_t o = r0; o < r1; o++) {                                                     \
            const void *row = (const char *)a->w + o * a->in * (ELEM);                          \
            int32_t t = 0;                                                                      \
            for (; t + 4 <= a->T; t += 4) NAME##_4(row, a->x + t * a->in, a->in, a->y + t * a->out + o, a->out); \
            for (; t < a->T; t++) NAME##_1(row, a->x + t * a->in, a->in, a->y + t * a->out + o, a->out); \
        }                                                                                       \
    }

DEFINE_MATMUL(matmul_f32_fast, load8_f32, load1_f32, 4)
DEFINE_MATMUL(matmul_f16_fast, load8_f16, load1_f16, 2)
DEFINE_MATMUL(matmul_bf16_fast, load8_bf16, load1_bf16, 2)

/* ---------------------------------------------------------------- Q8_0 */

/* x quantised, one row per token: nb*32 int8 values, then nb f32 scales, padded to 64 bytes. */
static int64_t q8x_row_bytes(int64_t in) {
    int64_t nb = in / 32;
    return (nb * 36 + 63) / 64 * 64;
}

static void q8x_prep(const float *x, void *xq, int64_t in, int32_t T) {
    const int64_t nb = in / 32, stride = q8x_row_bytes(in);
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int32_t t = 0; t < T; t++) {
        int8_t *qs = (int8_t *)xq + t * stride;
        float *ds = (float *)(qs + nb * 32);
        for (int64_t b = 0; b < nb; b++) {
            const float *p = x + t * in + b * 32;
            __m256 v0 = _mm256_loadu_ps(p), v1 = _mm256_loadu_ps(p + 8);
            __m256 v2 = _mm256_loadu_ps(p + 16), v3 = _mm256_loadu_ps(p + 24);
            __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, abs_mask), _mm256_and_ps(v1, abs_mask)),
                                     _mm256_max_ps(_mm256_and_ps(v2, abs_mask), _mm256_and_ps(v3, abs_mask)));
            __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            h = _mm_max_ps(h, _mm_movehl_ps(h, h));
            h = _mm_max_ss(h, _mm_movehdup_ps(h));
            float amax = _mm_cvtss_f32(h);
            float d = amax / 127.0f;
            ds[b] = d;
            __m256 id = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
            __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, id)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, id));
            __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, id)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, id));
            __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
            _mm256_storeu_si256((__m256i *)(qs + b * 32), _mm256_permutevar8x32_epi32(packed, order));
        }
    }
}

/* eight int32 sums of four adjacent products each: |w| (unsigned) times x with w's sign */
static inline __m256i dot_u8i8(__m256i aw, __m256i sx) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), aw, sx);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sx), _mm256_set1_epi16(1));
#endif
}

/* One Q8_0 row against C tokens' quantised x: per dot product two accumulators, even blocks into
 * one and odd into the other (one FMA chain would wait on its latency), then their sum. */
/* block b of the row, against C tokens, into acc[c] */
#define Q8_BLOCK(b, acc, C)                                                                         \
    do {                                                                                            \
        const uint8_t *blk = row + (b) * 34;                                                        \
        uint16_t dh;                                                                                \
        memcpy(&dh, blk, 2);                                                                        \
        const float dw = _cvtsh_ss(dh);                                                             \
        const __m256i w = _mm256_loadu_si256((const __m256i *)(blk + 2));                           \
        const __m256i aw = _mm256_sign_epi8(w, w); /* |w| as unsigned bytes */                      \
        for (int c = 0; c < C; c++) {                                                               \
            const int8_t *xc = xq + c * stride;                                                     \
            const float *xd = (const float *)(xc + nb * 32);                                        \
            __m256i sx = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(xc + (b) * 32)), w); \
            __m256 d = _mm256_set1_ps(dw * xd[b]);                                                  \
            acc[c] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8i8(aw, sx)), acc[c]);              \
        }                                                                                           \
    } while (0)

#define DEFINE_Q8_DOT(NAME, C)                                                                      \
    static inline void NAME(const uint8_t *row, const int8_t *xq, int64_t stride, int64_t nb, float *y, int64_t ldy) { \
        __m256 even[C], odd[C];                                                                     \
        for (int c = 0; c < C; c++) even[c] = odd[c] = _mm256_setzero_ps();                         \
        int64_t b = 0;                                                                              \
        for (; b + 2 <= nb; b += 2) {                                                               \
            Q8_BLOCK(b, even, C);                                                                   \
            Q8_BLOCK(b + 1, odd, C);                                                                \
        }                                                                                           \
        if (b < nb) Q8_BLOCK(b, even, C);                                                           \
        for (int c = 0; c < C; c++) y[c * ldy] = hsum(_mm256_add_ps(even[c], odd[c]));             \
    }

DEFINE_Q8_DOT(q8_dot_1, 1)
DEFINE_Q8_DOT(q8_dot_4, 4)

static void matmul_q8_0_fast(const ck_mm *a, int64_t r0, int64_t r1) {
    const int64_t nb = a->in / 32, row_bytes = nb * 34, stride = q8x_row_bytes(a->in);
    for (int64_t o = r0; o < r1; o++) {
        const uint8_t *row = (const uint8_t *)a->w + o * row_bytes;
        const int8_t *xq = (const int8_t *)a->xq;
        int32_t t = 0;
        for (; t + 4 <= a->T; t += 4) q8_dot_4(row, xq + t * stride, stride, nb, a->y + t * a->out + o, a->out);
        for (; t < a->T; t++) q8_dot_1(row, xq + t * stride, stride, nb, a->y + t * a->out + o, a->out);
    }
}

/* ---------------------------------------------------------------- attention */

/* e^x for x <= 0 (softmax after subtracting the max): 2^n * p(r), x = n ln2 + r, |r| <= ln2 / 2,
 * p the degree-6 Taylor polynomial (error ~1e-7 relative). Below -87 it returns e^-87, which a
 * sum that includes e^0 = 1 does not notice. */
static inline __m256 exp_neg(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x); /* ln2, high part */
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);    /* ln2, low part */
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* [sum(a[0]), ..., sum(a[7])]: eight horizontal sums at once */
static inline __m256 hsum8(const __m256 a[8]) {
    __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
    __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
    __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

static inline const float *slot_ptr(const float *c, const int32_t *blocks, int32_t bt, int64_t stride, int32_t j) {
    return c + ((int64_t)blocks[j / bt] * bt + j % bt) * stride;
}

/* out (G*8 floats, from d0) = sum_j p_j v_j[d0 ..], the accumulators in registers */
#define DEFINE_PV(NAME, G)                                                                          \
    static inline void NAME(float *out, const float *p, const float *vc, const int32_t *blocks, int32_t bt, \
                            int64_t stride, int32_t n_ctx, int32_t d0, float inv_sum) {             \
        __m256 acc[G];                                                                              \
        for (int g = 0; g < G; g++) acc[g] = _mm256_setzero_ps();                                   \
        for (int32_t j = 0; j < n_ctx; j++) {                                                       \
            const float *v = slot_ptr(vc, blocks, bt, stride, j) + d0;                              \
            const __m256 pj = _mm256_broadcast_ss(p + j);                                           \
            for (int g = 0; g < G; g++) acc[g] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + 8 * g), acc[g]); \
        }                                                                                           \
        for (int g = 0; g < G; g++) _mm256_storeu_ps(out + d0 + 8 * g, _mm256_mul_ps(acc[g], _mm256_set1_ps(inv_sum))); \
    }
DEFINE_PV(pv8, 8)
DEFINE_PV(pv1, 1)

/* Scores eight keys at a time (eight FMA chains, one transposing reduction), the softmax with a
 * vector exp, then p . V with the output in registers. Head sizes that are not a multiple of 8
 * take the plain kernel. */
static void attend_fast(float *out, const float *q, const float *kc, const float *vc, const int32_t *blocks, int32_t bt,
                        int64_t stride, int32_t n_ctx, int32_t hd, float *scores) {
    if (hd % 8 != 0) {
        ck_kernels_plain.attend(out, q, kc, vc, blocks, bt, stride, n_ctx, hd, scores);
        return;
    }
    const __m256 scale = _mm256_set1_ps(1.0f / sqrtf((float)hd));
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    int32_t j = 0;
    for (; j + 8 <= n_ctx; j += 8) {
        const float *k[8];
        __m256 acc[8];
        for (int i = 0; i < 8; i++) {
            k[i] = slot_ptr(kc, blocks, bt, stride, j + i);
            acc[i] = _mm256_setzero_ps();
        }
        for (int32_t d = 0; d < hd; d += 8) {
            const __m256 qd = _mm256_loadu_ps(q + d);
            for (int i = 0; i < 8; i++) acc[i] = _mm256_fmadd_ps(qd, _mm256_loadu_ps(k[i] + d), acc[i]);
        }
        const __m256 s = _mm256_mul_ps(hsum8(acc), scale);
        _mm256_storeu_ps(scores + j, s);
        vmax = _mm256_max_ps(vmax, s);
    }
    float max = hmax(vmax);
    for (; j < n_ctx; j++) { /* the last few keys one by one */
        const float *k = slot_ptr(kc, blocks, bt, stride, j);
        __m256 acc = _mm256_setzero_ps();
        for (int32_t d = 0; d < hd; d += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(k + d), acc);
        scores[j] = hsum(acc) * (1.0f / sqrtf((float)hd));
        if (scores[j] > max) max = scores[j];
    }

    const __m256 vm = _mm256_set1_ps(max);
    __m256 vsum = _mm256_setzero_ps();
    j = 0;
    for (; j + 8 <= n_ctx; j += 8) {
        const __m256 e = exp_neg(_mm256_sub_ps(_mm256_loadu_ps(scores + j), vm));
        _mm256_storeu_ps(scores + j, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    float sum = hsum(vsum);
    for (; j < n_ctx; j++) {
        scores[j] = expf(scores[j] - max);
        sum += scores[j];
    }

    const float inv = 1.0f / sum;
    int32_t d = 0;
    for (; d + 64 <= hd; d += 64) pv8(out, scores, vc, blocks, bt, stride, n_ctx, d, inv);
    for (; d < hd; d += 8) pv1(out, scores, vc, blocks, bt, stride, n_ctx, d, inv);
}

static const ck_kernels kernels_avx2 = {
    .name = "cpu-avx2",
    .matmul = {matmul_f32_fast, matmul_f16_fast, matmul_bf16_fast, matmul_q8_0_fast},
    .xq_row_bytes = q8x_row_bytes,
    .prep_x = q8x_prep,
    .attend = attend_fast,
};

const ck_kernels *ck_kernels_fast(void) {
    return &kernels_avx2;
}

#else

const ck_kernels *ck_kernels_fast(void) {
    return NULL;
}

#endif
