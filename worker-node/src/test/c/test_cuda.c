/*
 * test_cuda.c: loads the CPU and the CUDA library side by side (dlopen) and checks that they
 * export the same ABI; where a GPU is visible, that the CUDA build computes what the naive
 * reference computes, that a sequence's tokens do not depend on its batch, that chunked prefill
 * matches one chunk, and that capacity failures change nothing.
 *
 *   test_cuda <libcocoon_kernels.so> <libcocoon_kernels_cuda.so>
 *
 * Without a GPU it checks what it can (symbols, ABI version, CK_E_UNSUPPORTED on create) and
 * says the rest was skipped.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ck_testutil.h"


/* one library's entry points */
typedef struct {
    void *dl;
    int32_t (*abi_version)(void);
    const char *(*backend_name)(void);
    int32_t (*backend_available)(void);
    int (*model_create)(const ck_config *, int32_t, ck_model **);
    int (*model_set_tensor)(ck_model *, ck_tensor_kind, int32_t, ck_dtype, const void *, int64_t);
    int (*model_finalize)(ck_model *);
    int (*kv_init)(ck_model *, int32_t, int32_t, int32_t);
    int64_t (*kv_bytes)(const ck_config *, int32_t, int32_t);
    int32_t (*kv_free_blocks)(const ck_model *);
    int (*step)(ck_model *, ck_batch *);
    int (*seq_free)(ck_model *, int32_t);
    int64_t (*model_peak_bytes)(const ck_model *);
    const char *(*last_error)(const ck_model *);
    void (*model_free)(ck_model *);
} lib;

static int load(lib *L, const char *path) {
    memset(L, 0, sizeof *L);
    L->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!L->dl) {
        printf("FAIL dlopen %s: %s\n", path, dlerror());
        failed++;
        return 0;
    }
#define SYM(f)                                                       \
    do {                                                             \
        *(void **)&L->f = dlsym(L->dl, "ck_" #f);                    \
        CHECK(L->f != NULL, "%s does not export ck_%s", path, #f);  \
        if (!L->f) return 0;                                         \
    } while (0)
    SYM(abi_version);
    SYM(backend_name);
    SYM(backend_available);
    SYM(model_create);
    SYM(model_set_tensor);
    SYM(model_finalize);
    SYM(kv_init);
    SYM(kv_bytes);
    SYM(kv_free_blocks);
    SYM(step);
    SYM(seq_free);
    SYM(model_peak_bytes);
    SYM(last_error);
    SYM(model_free);
    return 1;
}

static const int dtypes[4] = {CK_F32, CK_F16, CK_BF16, CK_Q8_0};
static const ck_sampling greedy = {0.0f, 1.0f, 0, 0.0f, 0.0f, 0};

static ck_config variant(int v) {
    ck_config c = tu_config(2, 64, 4, 2, 16, 128, 96, 300);
    if (v == 0) c.attn_bias = 1, c.tied_embeddings = 1, c.rope_theta = 1000000.0f;
    if (v == 1) {
        c.rope_scaling = CK_ROPE_LLAMA3, c.rope_factor = 8, c.rope_high_freq_factor = 4, c.rope_original_context = 64;
        c.rope_theta = 500000.0f;
    }
    if (v == 2) c.qk_norm = 1, c.head_dim = 32, c.tied_embeddings = 1;
    return c;
}

static ck_model *new_model(lib *L, const ck_config *c, int dtype, uint64_t seed, int n_blocks, int bt, int max_seqs, tu_weights *w) {
    ck_model *m = NULL;
    int st = L->model_create(c, 2, &m);
    if (st == CK_OK) st = tu_fill(L->model_set_tensor, m, c, dtype, seed, w);
    if (st == CK_OK) st = L->model_finalize(m);
    if (st == CK_OK) st = L->kv_init(m, n_blocks, bt, max_seqs);
    if (st != CK_OK) {
        printf("FAIL model setup on %s: %s\n", L->backend_name(), L->last_error(m));
        exit(1);
    }
    return m;
}

static int step1(lib *L, ck_model *m, int seq, int pos, const int32_t *toks, int n, int32_t *tok, float *logits) {
    ck_seq_entry e = {seq, pos, n, 1, greedy};
    int32_t t = -2;
    ck_batch b = {1, &e, toks, &t, logits};
    int st = L->step(m, &b);
    if (tok) *tok = t;
    return st;
}

static void random_tokens(int32_t *t, int n, int vocab, uint64_t seed) {
    trng r = trng_make(seed);
    for (int i = 0; i < n; i++) t[i] = (int32_t)(trng_next(&r) % (uint64_t)vocab);
}

/* CUDA against the naive reference (and the CPU library) over a long prompt and a few decode steps */
static void test_reference(lib *cpu, lib *gpu) {
    for (int v = 0; v < 3; v++)
        for (int di = 0; di < 4; di++) {
            ck_config c = variant(v);
            tu_weights w;
            ck_model *mg = new_model(gpu, &c, dtypes[di], 50 + v, 64, 8, 2, &w);
            ck_model *mc = new_model(cpu, &c, dtypes[di], 50 + v, 64, 8, 2, NULL);
            int32_t toks[200];
            random_tokens(toks, 200, c.vocab, v);
            float *lg = malloc((size_t)c.vocab * 4), *lc = malloc((size_t)c.vocab * 4), *lr = malloc((size_t)c.vocab * 4);
            double eg = 0, ec = 0;
            int ok = 1, n = 0;
            /* a 190-token prompt (two attention tiles), then 3 decode steps */
            int sizes[4] = {190, 1, 1, 1};
            for (int k = 0; k < 4 && ok; k++) {
                ok = step1(gpu, mg, 0, n, toks + n, sizes[k], NULL, lg) == CK_OK &&
                     step1(cpu, mc, 0, n, toks + n, sizes[k], NULL, lc) == CK_OK;
                n += sizes[k];
                ref_forward(&w, toks, n, lr);
                double a = tu_rel_err(lg, lr, c.vocab), b = tu_rel_err(lg, lc, c.vocab);
                if (a > eg) eg = a;
                if (b > ec) ec = b;
            }
            CHECK(ok, "steps failed: %s", gpu->last_error(mg));
            CHECK(eg < 1e-4, "variant %d %s: cuda vs reference rel err %.3g", v, ck_dtype_name(dtypes[di]), eg);
            CHECK(ec < (dtypes[di] == CK_Q8_0 ? 4e-2 : 1e-4), "variant %d %s: cuda vs cpu rel err %.3g", v, ck_dtype_name(dtypes[di]), ec);
            free(lg), free(lc), free(lr);
            tu_weights_free(&w);
            gpu->model_free(mg);
            cpu->model_free(mc);
        }
}

/* seq 3 alone, then with two others (one prefilling in chunks): same tokens, same logits */
static void test_batch(lib *L) {
    for (int di = 0; di < 4; di++) {
        ck_config c = variant(di % 3);
        int32_t A[7], B[5], C[9];
        random_tokens(A, 7, c.vocab, 1);
        random_tokens(B, 5, c.vocab, 2);
        random_tokens(C, 9, c.vocab, 3);
        enum { GEN = 8 };
        int32_t alone[GEN], batched[GEN];
        float *la = malloc((size_t)GEN * c.vocab * 4), *lb = malloc((size_t)3 * c.vocab * 4);
        ck_model *m1 = new_model(L, &c, dtypes[di], 7, 64, 4, 4, NULL);
        step1(L, m1, 3, 0, A, 7, &alone[0], la);
        for (int i = 1; i < GEN; i++) step1(L, m1, 3, 7 + i - 1, &alone[i - 1], 1, &alone[i], la + (int64_t)i * c.vocab);
        ck_model *m2 = new_model(L, &c, dtypes[di], 7, 64, 4, 4, NULL);
        int cpos = 0, ok = 1, same_logits = 1;
        int32_t btok = 0, ctok = 0;
        for (int i = 0; i < GEN && ok; i++) {
            ck_seq_entry e[3];
            int32_t toks[32], out[3];
            int nt = 0;
            if (i == 0) e[0] = (ck_seq_entry){0, 0, 5, 1, greedy}, memcpy(toks, B, sizeof B), nt = 5;
            else e[0] = (ck_seq_entry){0, 5 + i - 1, 1, 1, greedy}, toks[nt++] = btok;
            if (i == 0) e[1] = (ck_seq_entry){3, 0, 7, 1, greedy}, memcpy(toks + nt, A, sizeof A), nt += 7;
            else e[1] = (ck_seq_entry){3, 7 + i - 1, 1, 1, greedy}, toks[nt++] = batched[i - 1];
            if (cpos < 9) {
                int k = 9 - cpos < 2 ? 9 - cpos : 2;
                e[2] = (ck_seq_entry){1, cpos, k, cpos + k == 9, greedy};
                memcpy(toks + nt, C + cpos, (size_t)k * 4), nt += k, cpos += k;
            } else {
                e[2] = (ck_seq_entry){1, cpos, 1, 1, greedy}, toks[nt++] = ctok, cpos++;
            }
            ck_batch b = {3, e, toks, out, lb};
            ok = L->step(m2, &b) == CK_OK;
            btok = out[0], batched[i] = out[1];
            if (out[2] >= 0) ctok = out[2];
            if (memcmp(lb + c.vocab, la + (int64_t)i * c.vocab, (size_t)c.vocab * 4)) same_logits = 0;
        }
        CHECK(ok, "batched steps: %s", L->last_error(m2));
        CHECK(!memcmp(alone, batched, sizeof alone), "%s: tokens differ alone vs batched", ck_dtype_name(dtypes[di]));
        CHECK(same_logits, "%s: logits differ alone vs batched", ck_dtype_name(dtypes[di]));
        free(la), free(lb);
        L->model_free(m1);
        L->model_free(m2);
    }
}

/* seq 0 decoding alone (a warp per row, activations read per warp) and beside seven others
 * (activations staged in shared memory): the same logits, bit for bit */
static void test_wide_batch(lib *L) {
    for (int di = 0; di < 4; di++) {
        ck_config c = variant(di % 3);
        enum { GEN = 5, N = 8 };
        int32_t prompt[N][6], tok[N];
        float *alone = malloc((size_t)GEN * c.vocab * 4), *wide = malloc((size_t)N * c.vocab * 4);
        for (int s = 0; s < N; s++) random_tokens(prompt[s], 6, c.vocab, 20 + s);
        ck_model *m1 = new_model(L, &c, dtypes[di], 9, 64, 4, N, NULL), *m2 = new_model(L, &c, dtypes[di], 9, 64, 4, N, NULL);
        int ok = step1(L, m1, 0, 0, prompt[0], 6, &tok[0], NULL) == CK_OK, same = 1;
        for (int i = 0; i < GEN && ok; i++)
            ok = step1(L, m1, 0, 6 + i, &tok[0], 1, &tok[0], alone + (int64_t)i * c.vocab) == CK_OK;
        for (int s = 0; s < N && ok; s++) ok = step1(L, m2, s, 0, prompt[s], 6, &tok[s], NULL) == CK_OK;
        for (int i = 0; i < GEN && ok; i++) {
            ck_seq_entry e[N];
            for (int s = 0; s < N; s++) e[s] = (ck_seq_entry){s, 6 + i, 1, 1, greedy};
            int32_t in[N];
            memcpy(in, tok, sizeof in);
            ck_batch b = {N, e, in, tok, wide};
            ok = L->step(m2, &b) == CK_OK;
            if (memcmp(wide, alone + (int64_t)i * c.vocab, (size_t)c.vocab * 4)) same = 0;
        }
        CHECK(ok, "wide batch steps: %s", L->last_error(m2));
        CHECK(same, "%s: logits differ alone vs in a batch of %d", ck_dtype_name(dtypes[di]), N);
        free(alone), free(wide);
        L->model_free(m1);
        L->model_free(m2);
    }
}

static void test_chunks_and_capacity(lib *L) {
    ck_config c = variant(0);
    int32_t p[13];
    random_tokens(p, 13, c.vocab, 4);
    float *a = malloc((size_t)c.vocab * 4), *b = malloc((size_t)c.vocab * 4);
    ck_model *m = new_model(L, &c, CK_F16, 3, 6, 4, 3, NULL);
    CHECK(step1(L, m, 0, 0, p, 13, NULL, a) == CK_OK, "one chunk");
    CHECK(step1(L, m, 1, 0, p, 9, NULL, NULL) == CK_E_CAPACITY, "6 blocks of 4: 13 + 9 tokens do not fit");
    CHECK(L->kv_free_blocks(m) == 2, "capacity left the blocks alone");
    CHECK(L->seq_free(m, 0) == CK_OK && L->kv_free_blocks(m) == 6, "seq_free");
    CHECK(step1(L, m, 1, 0, p, 5, NULL, NULL) == CK_OK && step1(L, m, 1, 5, p + 5, 1, NULL, NULL) == CK_OK &&
              step1(L, m, 1, 6, p + 6, 7, NULL, b) == CK_OK,
          "three chunks: %s", L->last_error(m));
    CHECK(tu_rel_err(b, a, c.vocab) < 1e-4, "chunked prefill differs: %.3g", tu_rel_err(b, a, c.vocab));
    CHECK(L->model_peak_bytes(m) > 0, "peak bytes");
    L->model_free(m);
    free(a), free(b);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_cuda <cpu library> <cuda library>\n");
        return 2;
    }
    lib cpu, gpu;
    if (!load(&cpu, argv[1]) || !load(&gpu, argv[2])) {
        printf("%d passed, %d failed\n", passed, failed);
        return 1;
    }
    CHECK(gpu.abi_version() == CK_ABI_VERSION && cpu.abi_version() == CK_ABI_VERSION, "ABI versions");
    CHECK(strncmp(gpu.backend_name(), "cuda", 4) == 0, "backend name %s", gpu.backend_name());
    ck_config c = variant(0);
    CHECK(gpu.kv_bytes(&c, 7, 16) == cpu.kv_bytes(&c, 7, 16), "kv_bytes agree");
    if (!gpu.backend_available()) {
        ck_model *m = NULL;
        int st = gpu.model_create(&c, 0, &m);
        CHECK(st == CK_E_UNSUPPORTED && m == NULL && strlen(gpu.last_error(NULL)) > 0,
              "without a GPU, create says CK_E_UNSUPPORTED (%d: %s)", st, gpu.last_error(NULL));
        printf("test_cuda: no GPU visible; numerical tests skipped\n");
    } else {
        printf("test_cuda: %s\n", gpu.backend_name());
        test_reference(&cpu, &gpu);
        test_batch(&gpu);
        test_wide_batch(&gpu);
       
        test_chunks_and_capacity(&gpu);
    }
    printf("test_cuda: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
