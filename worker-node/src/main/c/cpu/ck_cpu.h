/*
 * ck_cpu.h: the CPU backend's kernel table. ck_cpu.c holds the plain kernels and the forward pass;
 * ck_cpu_fast.c holds vectorised versions of the hot kernels. Both fill a ck_kernels table and
 * forward() only ever calls through one, so the two paths stay interchangeable (and testable
 * against each other).
 */
#ifndef CK_CPU_H
#define CK_CPU_H

#include <stdint.h>

/* One matrix product over a slice of output rows:
 *   y[t][o] = dot(W[o][0..in), x[t][0..in))   for o in [r0, r1), t in [0, T)
 * W is [out][in] in its dtype; x is [T][in] f32; y is [T][out] f32.
 * xq is the kernel table's own quantised copy of x (prep_x), or NULL when it has none. */
typedef struct {
    float *y;
    const float *x;
    const void *xq;
    const void *w;
    int64_t in, out;
    int32_t T;
} ck_mm;

typedef void (*ck_matmul_fn)(const ck_mm *a, int64_t r0, int64_t r1);

typedef struct {
    const char *name;
    ck_matmul_fn matmul[4];                 /* by ck_dtype */
    /* Q8_0 weights may want x quantised once per matmul: bytes for one row of `in`, and the
     * conversion of x [T][in] into T such rows. xq_row_bytes NULL: no preparation. */
    int64_t (*xq_row_bytes)(int64_t in);
    void (*prep_x)(const float *x, void *xq, int64_t in, int32_t T);
    /* One query head against one sequence's cache: out = softmax(q . k_j / sqrt(hd)) . v_j over
     * j < n_ctx. kc, vc point at this kv head in the layer's cache; position j lives in block
     * blocks[j / bt], slot j % bt, and consecutive slots are kv_stride floats apart.
     * scores: [n_ctx] scratch. */
    void (*attend)(float *out, const float *q, const float *kc, const float *vc, const int32_t *blocks, int32_t bt,
                   int64_t kv_stride, int32_t n_ctx, int32_t hd, float *scores);
} ck_kernels;

extern const ck_kernels ck_kernels_plain;
/* NULL when this build has no fast path (compiled without AVX2/FMA/F16C) */
const ck_kernels *ck_kernels_fast(void);

/* Test hook: 1 makes models created afterwards use the plain kernels. */
void ck_cpu_force_plain(int on);

#endif
