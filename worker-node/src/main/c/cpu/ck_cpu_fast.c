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

static float dot_fast(const float *a, const float *b, int32_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    if (i + 8 <= n) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        i += 8;
    }
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static void axpy_fast(float *y, float a, const float *x, int32_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

static const ck_kernels kernels_avx2 = {
    .name = "cpu-avx2",
    .matmul = {matmul_f32_fast, matmul_f16_fast, matmul_bf16_fast, matmul_q8_0_fast},
    .xq_row_bytes = q8x_row_bytes,
    .prep_x = q8x_prep,
    .dot = dot_fast,
    .axpy = axpy_fast,
};

const ck_kernels *ck_kernels_fast(void) {
    return &kernels_avx2;
}

#else

const ck_kernels *ck_kernels_fast(void) {
    return NULL;
}

#endif
