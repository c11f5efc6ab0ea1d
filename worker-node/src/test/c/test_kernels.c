/*
 * test_kernels.c: the CPU library's tests (`make test`). Linked against the objects, so it can
 * reach the plain and fast kernel tables and the sampler directly. Prints "N passed, M failed";
 * exits nonzero on any failure.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ck_cpu.h"
#include "ck_testutil.h"

#if defined(__F16C__)
#include <immintrin.h>
#endif


static const int dtypes[4] = {CK_F32, CK_F16, CK_BF16, CK_Q8_0};
static const ck_sampling greedy = {0.0f, 1.0f, 0, 0.0f, 0.0f, 0};

/* ---------------------------------------------------------------- model helpers */

enum { V_QWEN2, V_LLAMA3, V_QWEN3, V_LINEAR, N_VARIANTS };
static const char *variant_names[N_VARIANTS] = {"qwen2", "llama3", "qwen3", "linear"};

/* the tiny test model: 2 layers, hidden 64, 4 heads, 2 kv heads, ffn 128, vocab 96 */
static ck_config variant(int v) {
    ck_config c = tu_config(2, 64, 4, 2, 16, 128, 96, 64);
    switch (v) {
    case V_QWEN2: /* biases, tied embeddings */
        c.attn_bias = 1;
        c.tied_embeddings = 1;
        c.rope_theta = 1000000.0f;
        break;
    case V_LLAMA3: /* Llama 3.1 rope scaling (tiny original context so every band occurs), own output */
        c.rope_theta = 500000.0f;
        c.rope_scaling = CK_ROPE_LLAMA3;
        c.rope_factor = 8.0f;
        c.rope_low_freq_factor = 1.0f;
        c.rope_high_freq_factor = 4.0f;
        c.rope_original_context = 64;
        c.rms_eps = 1e-5f;
        break;
    case V_QWEN3: /* qk norm; head_dim * heads != hidden */
        c.qk_norm = 1;
        c.head_dim = 32;
        c.tied_embeddings = 1;
        break;
    case V_LINEAR:
        c.rope_scaling = CK_ROPE_LINEAR;
        c.rope_factor = 4.0f;
        c.n_kv_heads = 4;
        break;
    }
    return c;
}

static ck_model *new_model(const ck_config *c, int dtype, uint64_t seed, int plain, int threads, int n_blocks, int bt,
                           int max_seqs, tu_weights *w) {
    ck_model *m = NULL;
    ck_cpu_force_plain(plain);
    int st = ck_model_create(c, threads, &m);
    ck_cpu_force_plain(0);
    if (st != CK_OK) {
        printf("ck_model_create: %s\n", ck_last_error(NULL));
        exit(2);
    }
    st = tu_fill(ck_model_set_tensor, m, c, dtype, seed, w);
    if (st == CK_OK) st = ck_model_finalize(m);
    if (st == CK_OK) st = ck_kv_init(m, n_blocks, bt, max_seqs);
    if (st != CK_OK) {
        printf("model setup: %s\n", ck_last_error(m));
        exit(2);
    }
    return m;
}

/* one entry, one step */
static int step1(ck_model *m, int seq, int pos, const int32_t *toks, int n, int sample, const ck_sampling *sp,
                 int32_t *out_tok, float *out_logits) {
    ck_seq_entry e = {seq, pos, n, sample, sp ? *sp : greedy};
    int32_t tok = -2;
    ck_batch b = {1, &e, toks, &tok, out_logits};
    int st = ck_step(m, &b);
    if (out_tok) *out_tok = tok;
    return st;
}

static void random_tokens(int32_t *t, int n, int vocab, uint64_t seed) {
    trng r = trng_make(seed);
    for (int i = 0; i < n; i++) t[i] = (int32_t)(trng_next(&r) % (uint64_t)vocab);
}

/* ---------------------------------------------------------------- numbers */

static void test_numeric(void) {
    const float exact[] = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.9604644775390625e-08f, 0.333251953125f};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        CHECK(ck_f16_to_f32(ck_f32_to_f16(exact[i])) == exact[i], "f16 round trip of %g", exact[i]);
    CHECK(isinf(ck_f16_to_f32(ck_f32_to_f16(1e6f))), "f16 overflow is inf");
    CHECK(ck_bf16_to_f32(ck_f32_to_bf16(1.5f)) == 1.5f, "bf16 round trip");
    CHECK(ck_f32_to_bf16(1.00390625f) == 0x3f80, "bf16 rounds to nearest even (down)");
    CHECK(ck_f32_to_bf16(1.01171875f) == 0x3f82, "bf16 rounds to nearest even (up)");
#if defined(__F16C__)
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float a = ck_f16_to_f32((uint16_t)h), b = _cvtsh_ss((uint16_t)h);
        if (!(a == b || (isnan(a) && isnan(b))) || (a == 0 && signbit(a) != signbit(b))) bad++;
    }
    CHECK(bad == 0, "f16 decode differs from F16C for %d values", bad);
    trng r = trng_make(7);
    bad = 0;
    for (int i = 0; i < 200000; i++) {
        uint32_t u = (uint32_t)trng_next(&r);
        float f;
        memcpy(&f, &u, 4);
        if (isnan(f)) continue;
        if (ck_f32_to_f16(f) != _cvtss_sh(f, 0)) bad++;
    }
    CHECK(bad == 0, "f16 encode differs from F16C for %d values", bad);
#endif
    float v[64], back[64];
    uint8_t q[68];
    trng rr = trng_make(3);
    for (int i = 0; i < 64; i++) v[i] = trng_sym(&rr) * (i < 32 ? 1.0f : 100.0f);
    ck_quantize_q8_0(v, q, 64);
    ck_row_to_f32(q, CK_Q8_0, 64, back);
    CHECK(tu_rel_err(back, v, 32) < 0.01 && tu_rel_err(back + 32, v + 32, 32) < 0.01, "Q8_0 round trip");
}

/* ---------------------------------------------------------------- fast kernels against plain */

static void test_fast_kernels(void) {
    const ck_kernels *fast = ck_kernels_fast(), *plain = &ck_kernels_plain;
    if (!fast) {
        printf("note: built without a fast path (%s); fast-vs-plain kernel tests skipped\n", ck_backend_name());
        return;
    }
    const int ins[] = {32, 64, 96, 160, 896, 37, 100, 8, 15};
    const int outs[] = {1, 3, 8, 13, 33};
    const int Ts[] = {1, 2, 5};
    trng r = trng_make(11);
    for (int di = 0; di < 4; di++) {
        int dt = dtypes[di];
        double worst = 0;
        int split_ok = 1, token_ok = 1;
        for (size_t ii = 0; ii < sizeof ins / sizeof ins[0]; ii++) {
            int in = ins[ii];
            if (dt == CK_Q8_0 && in % 32) continue;
            for (size_t oi = 0; oi < sizeof outs / sizeof outs[0]; oi++)
                for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++) {
                    int out = outs[oi], T = Ts[ti];
                    float *wf = malloc((size_t)out * in * 4), *x = malloc((size_t)T * in * 4);
                    for (int i = 0; i < out * in; i++) wf[i] = trng_sym(&r);
                    for (int i = 0; i < T * in; i++) x[i] = trng_sym(&r) * 3.0f;
                    int64_t nb;
                    void *w = tu_encode(wf, out, in, dt, &nb);
                    float *yp = calloc((size_t)T * out, 4), *yf = calloc((size_t)T * out, 4);
                    float *ys = calloc((size_t)T * out, 4), *y1 = calloc((size_t)out, 4);
                    void *xq = NULL;
                    if (fast->xq_row_bytes) {
                        xq = aligned_alloc(64, (size_t)(fast->xq_row_bytes(in) * T + 64));
                        fast->prep_x(x, xq, in, T);
                    }
                    ck_mm a = {yp, x, NULL, w, in, out, T};
                    plain->matmul[dt](&a, 0, out);
                    ck_mm b = {yf, x, xq, w, in, out, T};
                    fast->matmul[dt](&b, 0, out);
                    ck_mm s = {ys, x, xq, w, in, out, T};
                    int k = out / 2 + 1 < out ? out / 2 + 1 : out;
                    fast->matmul[dt](&s, 0, k);
                    fast->matmul[dt](&s, k, out);
                    if (memcmp(ys, yf, (size_t)T * out * 4)) split_ok = 0;
                    for (int t = 0; t < T; t++) {
                        ck_mm one = {y1, x + t * in, xq ? (char *)xq + fast->xq_row_bytes(in) * t : NULL, w, in, out, 1};
                        fast->matmul[dt](&one, 0, out);
                        if (memcmp(y1, yf + t * out, (size_t)out * 4)) token_ok = 0;
                    }
                    /* error against sum |w| |x|, the scale rounding errors grow with */
                    float *wd = malloc((size_t)out * in * 4);
                    for (int o = 0; o < out; o++) ck_row_to_f32((char *)w + o * ck_dtype_row_bytes(dt, in), dt, in, wd + (int64_t)o * in);
                    for (int t = 0; t < T; t++)
                        for (int o = 0; o < out; o++) {
                            double mag = 1e-30;
                            for (int i = 0; i < in; i++) mag += fabs(wd[(int64_t)o * in + i] * x[t * in + i]);
                            double e = fabs(yf[t * out + o] - yp[t * out + o]) / mag;
                            if (e > worst || isnan(e)) worst = isnan(e) ? INFINITY : e;
                        }
                    free(wd);
                    free(wf), free(x), free(w), free(yp), free(yf), free(ys), free(y1), free(xq);
                }
        }
        double tol = dt == CK_Q8_0 ? 1e-2 : 1e-6;
        CHECK(worst < tol, "%s fast matmul vs plain: rel err %.3g > %.3g", ck_dtype_name(dt), worst, tol);
        CHECK(split_ok, "%s fast matmul: results depend on how rows are split", ck_dtype_name(dt));
        CHECK(token_ok, "%s fast matmul: results depend on the number of tokens", ck_dtype_name(dt));
    }
    /* attention over a paged cache: blocks out of order, other heads interleaved */
    const int hds[] = {8, 12, 16, 64, 80, 128}, ctxs[] = {1, 5, 8, 9, 33, 200}, bts[] = {4, 16};
    double worst = 0;
    for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++)
        for (size_t ci = 0; ci < sizeof ctxs / sizeof ctxs[0]; ci++)
            for (size_t bi = 0; bi < 2; bi++) {
                int hd = hds[hi], n = ctxs[ci], bt = bts[bi], nb = (n + bt - 1) / bt + 3;
                int64_t stride = 2 * hd + 8;
                float *kc = malloc((size_t)nb * bt * stride * 4), *vc = malloc((size_t)nb * bt * stride * 4);
                for (int64_t i = 0; i < (int64_t)nb * bt * stride; i++) kc[i] = 2 * trng_sym(&r), vc[i] = trng_sym(&r);
                int32_t blocks[64];
                for (int i = 0; i < nb; i++) blocks[i] = (i * 7 + 3) % nb;
                float q[128], op[128], of[128], sp[200], sf[200];
                for (int i = 0; i < hd; i++) q[i] = trng_sym(&r);
                plain->attend(op, q, kc + hd, vc + hd, blocks, bt, stride, n, hd, sp);
                fast->attend(of, q, kc + hd, vc + hd, blocks, bt, stride, n, hd, sf);
                double e = tu_rel_err(of, op, hd);
                if (e > worst) worst = e;
                free(kc), free(vc);
            }
    CHECK(worst < 1e-5, "fast attention vs plain: rel err %.3g", worst);
}

/* ---------------------------------------------------------------- against the reference */

static void test_reference(void) {
    for (int v = 0; v < N_VARIANTS; v++)
        for (int di = 0; di < 4; di++) {
            int dt = dtypes[di];
            ck_config c = variant(v);
            tu_weights w;
            ck_model *mp = new_model(&c, dt, 100 + v, 1, 2, 32, 4, 2, &w);
            ck_model *mf = new_model(&c, dt, 100 + v, 0, 2, 32, 4, 2, NULL);
            int32_t toks[16];
            random_tokens(toks, 16, c.vocab, 40 + v);
            float *lp = malloc((size_t)c.vocab * 4), *lf = malloc((size_t)c.vocab * 4), *lr = malloc((size_t)c.vocab * 4);
            /* prefill 9 tokens in one chunk, then 4 decode steps (crossing blocks of 4) */
            int ok = 1;
            double ep = 0, ef = 0;
            for (int n = 9; n <= 13 && ok; n++) {
                int first = n == 9 ? 0 : n - 1, cnt = n == 9 ? 9 : 1;
                ok = step1(mp, 1, first, toks + first, cnt, 0, NULL, NULL, lp) == CK_OK &&
                     step1(mf, 1, first, toks + first, cnt, 0, NULL, NULL, lf) == CK_OK;
                ref_forward(&w, toks, n, lr);
                double a = tu_rel_err(lp, lr, c.vocab), b = tu_rel_err(lf, lr, c.vocab);
                if (a > ep) ep = a;
                if (b > ef) ef = b;
            }
            if (getenv("CK_VERBOSE")) printf("%s/%s plain %.2g fast %.2g\n", variant_names[v], ck_dtype_name(dt), ep, ef);
            CHECK(ok, "%s/%s: steps failed: %s %s", variant_names[v], ck_dtype_name(dt), ck_last_error(mp), ck_last_error(mf));
            CHECK(ep < 1e-4, "%s/%s plain vs reference: rel err %.3g", variant_names[v], ck_dtype_name(dt), ep);
            double tol = dt == CK_Q8_0 ? 4e-2 : 1e-4;
            CHECK(ef < tol, "%s/%s fast vs reference: rel err %.3g", variant_names[v], ck_dtype_name(dt), ef);
            free(lp), free(lf), free(lr);
            tu_weights_free(&w);
            ck_model_free(mp);
            ck_model_free(mf);
        }
}

/* ---------------------------------------------------------------- batching */

#define GEN 10

/* seq A alone: prefill 7, then GEN-1 decode steps; tokens and each step's logits */
static void run_alone(ck_model *m, int seq, const int32_t *prompt, int n, const ck_sampling *sp, int32_t *toks, float *logits) {
    int vocab = m->cfg.vocab;
    step1(m, seq, 0, prompt, n, 1, sp, &toks[0], logits);
    for (int i = 1; i < GEN; i++) step1(m, seq, n + i - 1, &toks[i - 1], 1, 1, sp, &toks[i], logits + (int64_t)i * vocab);
}

static void test_batch_invariance(void) {
    for (int di = 0; di < 4; di++)
        for (int mode = 0; mode < 2; mode++) {
            int dt = dtypes[di];
            ck_config c = variant(di % 2 ? V_QWEN2 : V_QWEN3);
            ck_sampling sp = mode ? (ck_sampling){0.9f, 0.95f, 40, 0.2f, 0.1f, 1234} : greedy;
            int32_t A[7], B[5], C[9];
            random_tokens(A, 7, c.vocab, 1);
            random_tokens(B, 5, c.vocab, 2);
            random_tokens(C, 9, c.vocab, 3);
            int32_t alone[GEN], batched[GEN];
            float *la = malloc((size_t)GEN * c.vocab * 4), *lb = malloc((size_t)GEN * c.vocab * 4);

            ck_model *m1 = new_model(&c, dt, 7, 0, 2, 64, 4, 4, NULL);
            run_alone(m1, 0, A, 7, &sp, alone, la);

            /* A in slot 3, batched with B (slot 0, decoding alongside) and C (slot 1, prefilled in chunks) */
            ck_model *m2 = new_model(&c, dt, 7, 0, 3, 64, 4, 4, NULL);
            int ok = 1, bitexact = 1;
            int32_t btok = 0, ctok = 0;
            int cpos = 0;
            float *logits = malloc((size_t)3 * c.vocab * 4);
            for (int i = 0; i < GEN && ok; i++) {
                ck_seq_entry e[3];
                int32_t toks[32], out[3];
                int n = 0, nt = 0;
                /* B: its prompt on step 0, then decoding */
                if (i == 0) {
                    e[n++] = (ck_seq_entry){0, 0, 5, 1, sp};
                    memcpy(toks + nt, B, sizeof B), nt += 5;
                } else {
                    e[n++] = (ck_seq_entry){0, 5 + i - 1, 1, 1, sp};
                    toks[nt++] = btok;
                }
                /* A */
                if (i == 0) {
                    e[n++] = (ck_seq_entry){3, 0, 7, 1, sp};
                    memcpy(toks + nt, A, sizeof A), nt += 7;
                } else {
                    e[n++] = (ck_seq_entry){3, 7 + i - 1, 1, 1, sp};
                    toks[nt++] = batched[i - 1];
                }
                /* C: chunks of 2 until its prompt is in, then decoding */
                if (cpos < 9) {
                    int k = 9 - cpos < 2 ? 9 - cpos : 2;
                    e[n++] = (ck_seq_entry){1, cpos, k, cpos + k == 9, sp};
                    memcpy(toks + nt, C + cpos, (size_t)k * 4), nt += k;
                    cpos += k;
                } else {
                    e[n++] = (ck_seq_entry){1, cpos, 1, 1, sp};
                    toks[nt++] = ctok;
                    cpos++;
                }
                ck_batch b = {n, e, toks, out, logits};
                ok = ck_step(m2, &b) == CK_OK;
                btok = out[0];
                batched[i] = out[1];
                if (out[2] >= 0) ctok = out[2];
                if (memcmp(logits + c.vocab, la + (int64_t)i * c.vocab, (size_t)c.vocab * 4)) bitexact = 0;
            }
            CHECK(ok, "batched steps failed: %s", ck_last_error(m2));
            CHECK(!memcmp(alone, batched, sizeof alone), "%s %s: tokens differ alone vs batched",
                  ck_dtype_name(dt), mode ? "sampled" : "greedy");
            CHECK(bitexact, "%s %s: logits differ alone vs batched", ck_dtype_name(dt), mode ? "sampled" : "greedy");
            free(la), free(lb), free(logits);
            ck_model_free(m1);
            ck_model_free(m2);
        }
}

/* the same logits whatever the thread count */
static void test_threads(void) {
    ck_config c = variant(V_QWEN2);
    int32_t p[11];
    random_tokens(p, 11, c.vocab, 5);
    float *l1 = malloc((size_t)c.vocab * 4), *ln = malloc((size_t)c.vocab * 4);
    for (int di = 0; di < 4; di++) {
        ck_model *m1 = new_model(&c, dtypes[di], 9, 0, 1, 16, 8, 1, NULL);
        step1(m1, 0, 0, p, 11, 0, NULL, NULL, l1);
        for (int th = 2; th <= 5; th += 3) {
            ck_model *mn = new_model(&c, dtypes[di], 9, 0, th, 16, 8, 1, NULL);
            step1(mn, 0, 0, p, 11, 0, NULL, NULL, ln);
            CHECK(!memcmp(l1, ln, (size_t)c.vocab * 4), "%s: logits differ between 1 and %d threads", ck_dtype_name(dtypes[di]), th);
            ck_model_free(mn);
        }
        ck_model_free(m1);
    }
    free(l1), free(ln);
}

/* ---------------------------------------------------------------- chunked prefill */

static void test_chunked_prefill(void) {
    const int chunkings[3][5] = {{13}, {5, 1, 7}, {4, 4, 4, 1}};
    for (int di = 0; di < 4; di++) {
        ck_config c = variant(di % 2 ? V_LLAMA3 : V_QWEN2);
        int32_t p[13];
        random_tokens(p, 13, c.vocab, 77);
        float *ref = malloc((size_t)c.vocab * 4), *got = malloc((size_t)c.vocab * 4);
        int32_t ref_tok[4], got_tok[4];
        for (int k = 0; k < 3; k++) {
            ck_model *m = new_model(&c, dtypes[di], 21, 0, 2, 16, 4, 2, NULL);
            int pos = 0, ok = 1;
            int32_t tok = -1;
            for (int j = 0; j < 5 && chunkings[k][j]; j++) {
                int n = chunkings[k][j];
                ok &= step1(m, 1, pos, p + pos, n, pos + n == 13, NULL, &tok, k ? got : ref) == CK_OK;
                pos += n;
            }
            int32_t *toks = k ? got_tok : ref_tok;
            toks[0] = tok;
            for (int i = 1; i < 4; i++) ok &= step1(m, 1, 13 + i - 1, &toks[i - 1], 1, 1, NULL, &toks[i], NULL) == CK_OK;
            CHECK(ok, "chunked prefill steps: %s", ck_last_error(m));
            if (k) {
                double e = tu_rel_err(got, ref, c.vocab);
                CHECK(e < 1e-4, "%s: prefill in chunks differs from one chunk: rel err %.3g", ck_dtype_name(dtypes[di]), e);
                CHECK(!memcmp(got_tok, ref_tok, sizeof ref_tok), "%s: decode after chunked prefill differs", ck_dtype_name(dtypes[di]));
            }
            ck_model_free(m);
        }
        free(ref), free(got);
    }
}

/* ---------------------------------------------------------------- capacity */

static void test_capacity(void) {
    ck_config c = variant(V_QWEN2);
    ck_model *m = new_model(&c, CK_F16, 5, 0, 2, 6, 4, 3, NULL);   /* 6 blocks of 4 tokens */
    ck_model *ctl = new_model(&c, CK_F16, 5, 0, 2, 6, 4, 3, NULL); /* never sees the failed step */
    int32_t p[16];
    random_tokens(p, 16, c.vocab, 8);
    int32_t t0, t1;
    CHECK(step1(m, 0, 0, p, 10, 1, NULL, &t0, NULL) == CK_OK && step1(ctl, 0, 0, p, 10, 1, NULL, &t1, NULL) == CK_OK, "prefill 10");
    CHECK(ck_kv_free_blocks(m) == 3, "10 tokens hold 3 blocks: %d free", ck_kv_free_blocks(m));
    CHECK(step1(m, 1, 0, p, 8, 0, NULL, NULL, NULL) == CK_OK && step1(ctl, 1, 0, p, 8, 0, NULL, NULL, NULL) == CK_OK, "prefill 8");
    CHECK(ck_kv_free_blocks(m) == 1, "1 block left: %d", ck_kv_free_blocks(m));

    /* seq 0 decodes (no new block) while seq 1 grows to 13 tokens (2 new blocks): 1 free -> capacity */
    ck_seq_entry e[2] = {{0, 10, 1, 1, greedy}, {1, 8, 5, 1, greedy}};
    int32_t toks[6] = {t0, 1, 2, 3, 4, 5}, out[2] = {-7, -7};
    float *lg = malloc((size_t)2 * c.vocab * 4);
    for (int i = 0; i < 2 * c.vocab; i++) lg[i] = 42.0f;
    ck_batch b = {2, e, toks, out, lg};
    CHECK(ck_step(m, &b) == CK_E_CAPACITY, "over capacity");
    CHECK(strlen(ck_last_error(m)) > 0, "capacity has a message");
    CHECK(ck_kv_free_blocks(m) == 1, "capacity changed the free blocks: %d", ck_kv_free_blocks(m));
    CHECK(out[0] == -7 && out[1] == -7 && lg[0] == 42.0f, "capacity wrote outputs");
    free(lg);

    /* state untouched: seq 0's decode matches the control model's */
    float *a = malloc((size_t)c.vocab * 4), *bb = malloc((size_t)c.vocab * 4);
    CHECK(step1(m, 0, 10, &t0, 1, 1, NULL, NULL, a) == CK_OK, "decode after capacity: %s", ck_last_error(m));
    CHECK(strcmp(ck_last_error(m), "") == 0, "a good call clears the error");
    step1(ctl, 0, 10, &t1, 1, 1, NULL, NULL, bb);
    CHECK(!memcmp(a, bb, (size_t)c.vocab * 4), "capacity failure changed the sequence");

    /* restarting seq 1 at pos 0 frees its 2 blocks first: 12 tokens fit in 2 + 1 */
    CHECK(step1(m, 1, 0, p, 12, 0, NULL, NULL, NULL) == CK_OK, "restart within freed blocks: %s", ck_last_error(m));
    CHECK(ck_kv_free_blocks(m) == 0, "0 free: %d", ck_kv_free_blocks(m));
    CHECK(step1(m, 2, 0, p, 1, 0, NULL, NULL, NULL) == CK_E_CAPACITY, "a third sequence does not fit");
    CHECK(ck_seq_free(m, 1) == CK_OK && ck_kv_free_blocks(m) == 3, "seq_free returns 3 blocks");
    CHECK(ck_seq_free(m, 1) == CK_OK && ck_seq_free(m, 2) == CK_OK, "freeing an empty slot is fine");
    CHECK(step1(m, 2, 0, p, 12, 0, NULL, NULL, NULL) == CK_OK, "fits after free");
    /* a pos that does not match the slot's length is refused */
    CHECK(step1(m, 2, 11, p, 1, 0, NULL, NULL, NULL) == CK_E_INVALID, "pos mismatch");
    free(a), free(bb);
    ck_model_free(m);
    ck_model_free(ctl);
}

/* ---------------------------------------------------------------- invalid input */

#define EXPECT_INVALID(call, what)                                                                         \
    do {                                                                                                   \
        int st_ = (call);                                                                                  \
        CHECK(st_ == CK_E_INVALID && strlen(ck_last_error(m)) > 0, "%s: status %d, error '%s'", what, st_, \
              ck_last_error(m));                                                                           \
    } while (0)

static void test_invalid(void) {
    ck_model *m = NULL;
    ck_config c = variant(V_QWEN2);
    ck_config bad = c;
    bad.n_kv_heads = 3;
    CHECK(ck_model_create(&bad, 1, &m) == CK_E_INVALID && m == NULL && strlen(ck_last_error(NULL)) > 0, "heads %% kv_heads");
    bad = c, bad.head_dim = 15;
    CHECK(ck_model_create(&bad, 1, &m) == CK_E_INVALID, "odd head_dim");
    bad = c, bad.rms_eps = 0;
    CHECK(ck_model_create(&bad, 1, &m) == CK_E_INVALID, "rms_eps 0");
    bad = c, bad.rope_scaling = CK_ROPE_LLAMA3, bad.rope_original_context = 0;
    CHECK(ck_model_create(&bad, 1, &m) == CK_E_INVALID, "llama3 without original context");
    bad = c, bad.rope_scaling = 9;
    CHECK(ck_model_create(&bad, 1, &m) == CK_E_INVALID, "unknown rope scaling");
    CHECK(ck_model_create(NULL, 1, &m) == CK_E_INVALID, "NULL config");
    CHECK(ck_model_create(&c, -1, &m) == CK_E_INVALID, "negative threads");
    CHECK(ck_kv_bytes(&bad, 1, 1) == -1, "kv_bytes of a bad config");

    /* hidden 48: Q8_0 matrices with in_features 48 are not possible */
    ck_config c48 = tu_config(1, 48, 2, 1, 24, 64, 40, 32);
    CHECK(ck_model_create(&c48, 1, &m) == CK_OK, "create 48");
    {
        float *f = calloc(64 * 48, 4);
        uint8_t buf[64 * 34 * 2];
        EXPECT_INVALID(ck_model_set_tensor(m, CK_T_WQ, 0, CK_Q8_0, buf, 48 / 32 * 34 * 48), "Q8_0 in 48");
        EXPECT_INVALID(ck_model_set_tensor(m, CK_T_W_DOWN, 0, CK_Q8_0, buf, 48 * 68 - 1), "Q8_0 one byte short");
        CHECK(ck_model_set_tensor(m, CK_T_W_DOWN, 0, CK_Q8_0, buf, 48 * 68) == CK_OK, "Q8_0 W_DOWN [48][64]: %s", ck_last_error(m));
        CHECK(strcmp(ck_last_error(m), "") == 0, "success clears the error");
        EXPECT_INVALID(ck_model_set_tensor(m, CK_T_WQ, 0, CK_F32, f, 48 * 48 * 4 - 4), "short F32");
        EXPECT_INVALID(ck_model_set_tensor(m, CK_T_WQ, 0, CK_F32, f, 48 * 48 * 4 + 4), "long F32");
        EXPECT_INVALID(ck_model_set_tensor(m, CK_T_WQ, 0, CK_F32, NULL, 48 * 48 * 4), "NULL data");
        EXPECT_INVALID(ck_model_set_tensor(m, CK_T_ATTN_NORM, 0, CK_F16, f, 48 * 2), "F16 norm");
        EXPECT_INVALID(ck_model_set_tensor(m, CK_T_ATTN_NORM, 1, CK_F32, f, 48 * 4), "layer out of range");
        EXPECT_INVALID(ck_model_set_tensor(m, CK_T_ATTN_NORM, -1, CK_F32, f, 48 * 4), "negative layer");
        EXPECT_INVALID(ck_model_set_tensor(m, CK_T_OUTPUT_NORM, 3, CK_F32, f, 48 * 4), "global with layer 3");
        EXPECT_INVALID(ck_model_set_tensor(m, CK_T_BQ, 0, CK_F32, f, 48 * 4), "bias without attn_bias");
        EXPECT_INVALID(ck_model_set_tensor(m, CK_T_Q_NORM, 0, CK_F32, f, 24 * 4), "q_norm without qk_norm");
        EXPECT_INVALID(ck_model_set_tensor(m, (ck_tensor_kind)17, 0, CK_F32, f, 4), "unknown kind");
        EXPECT_INVALID(ck_model_set_tensor(m, CK_T_WQ, 0, (ck_dtype)7, f, 4), "unknown dtype");
        EXPECT_INVALID(ck_model_finalize(m), "finalize with tensors missing");
        CHECK(ck_kv_init(m, 4, 4, 1) == CK_E_STATE, "kv_init before finalize");
        CHECK(ck_step(m, &(ck_batch){0}) == CK_E_STATE, "step before finalize");
        CHECK(ck_seq_free(m, 0) == CK_E_STATE, "seq_free before kv_init");
        free(f);
    }
    ck_model_free(m);

    m = new_model(&c, CK_F32, 1, 0, 1, 8, 4, 2, NULL);
    CHECK(ck_model_set_tensor(m, CK_T_OUTPUT_NORM, 0, CK_F32, (float[64]){0}, 256) == CK_E_STATE, "set after finalize");
    CHECK(ck_model_finalize(m) == CK_E_STATE, "finalize twice");
    CHECK(ck_kv_init(m, 8, 4, 2) == CK_E_STATE, "kv_init twice");
    int32_t toks[4] = {1, 2, 3, 4}, out[2];
    ck_seq_entry e = {0, 0, 2, 1, greedy};
    ck_batch b = {1, &e, toks, out, NULL};
#define STEP_INVALID(setup, what)      \
    do {                               \
        e = (ck_seq_entry){0, 0, 2, 1, greedy}; \
        b = (ck_batch){1, &e, toks, out, NULL}; \
        setup;                         \
        EXPECT_INVALID(ck_step(m, &b), what); \
    } while (0)
    STEP_INVALID(e.seq = 2, "seq out of range");
    STEP_INVALID(e.seq = -1, "negative seq");
    STEP_INVALID(e.pos = 3, "pos beyond the sequence");
    STEP_INVALID(e.n_tokens = 0, "no tokens");
    STEP_INVALID((e.pos = 0, e.n_tokens = 65), "beyond max_context");
    STEP_INVALID(toks[1] = 96, "token = vocab");
    toks[1] = 2;
    STEP_INVALID(toks[0] = -1, "negative token");
    toks[0] = 1;
    STEP_INVALID(e.sampling.temperature = -1, "negative temperature");
    STEP_INVALID(e.sampling.temperature = NAN, "NaN temperature");
    STEP_INVALID(e.sampling.top_k = -2, "negative top_k");
    STEP_INVALID(e.sampling.presence_penalty = INFINITY, "infinite penalty");
    STEP_INVALID(e.sample = 2, "sample 2");
    STEP_INVALID(b.out_tokens = NULL, "sampling without out_tokens");
    STEP_INVALID(b.tokens = NULL, "NULL tokens");
    STEP_INVALID(b.entries = NULL, "NULL entries");
    STEP_INVALID(b.n_entries = -1, "negative n_entries");
    STEP_INVALID(b.n_entries = 3, "more entries than slots");
    {
        ck_seq_entry two[2] = {{1, 0, 1, 0, greedy}, {1, 0, 1, 0, greedy}};
        ck_batch bb = {2, two, toks, out, NULL};
        EXPECT_INVALID(ck_step(m, &bb), "one seq twice");
    }
    CHECK(ck_kv_free_blocks(m) == 8, "invalid steps took no blocks");
    EXPECT_INVALID(ck_step(m, NULL), "NULL batch");
    EXPECT_INVALID(ck_seq_free(m, 2), "seq_free out of range");
    e = (ck_seq_entry){0, 0, 2, 0, greedy};
    b = (ck_batch){1, &e, toks, NULL, NULL};
    CHECK(ck_step(m, &b) == CK_OK, "no sampling, no outputs: %s", ck_last_error(m));
    b.n_entries = 0;
    CHECK(ck_step(m, &b) == CK_OK, "an empty step is fine");
    ck_model_free(m);
    ck_model_free(NULL);
    CHECK(ck_step(NULL, &b) == CK_E_INVALID, "NULL model");
}

/* ---------------------------------------------------------------- sampling */

static ck_model *fake_model(int vocab) {
    ck_model *m = calloc(1, sizeof(ck_model));
    m->cfg.vocab = vocab;
    m->sample_buf = malloc((size_t)vocab * 4);
    m->sample_idx = malloc((size_t)vocab * 4);
    m->sample_counts = calloc((size_t)vocab, 4);
    return m;
}

static void fake_free(ck_model *m) {
    free(m->sample_buf), free(m->sample_idx), free(m->sample_counts), free(m);
}

/* frequencies of N draws */
static void draw(ck_model *m, const float *l, ck_sampling sp, int n, double *freq) {
    ck_seq_state s = {0};
    ck_rng_seed(&s.rng, sp.seed);
    int64_t *count = calloc((size_t)m->cfg.vocab, sizeof(int64_t));
    for (int i = 0; i < n; i++) count[ck_sample(m, &s, &sp, l)]++;
    for (int i = 0; i < m->cfg.vocab; i++) freq[i] = (double)count[i] / n;
    free(count);
}

static void test_sampling(void) {
    ck_model *m = fake_model(4);
    ck_seq_state s = {0};
    float l[4] = {1, 3, 3, 2};
    CHECK(ck_sample(m, &s, &greedy, l) == 1, "greedy ties go to the lowest id");
    int32_t gen[3] = {1, 1, 2};
    s.gen = gen, s.n_gen = 3;
    ck_sampling pen = greedy;
    pen.presence_penalty = 0.5f, pen.frequency_penalty = 1.0f;
    CHECK(ck_sample(m, &s, &pen, l) == 3, "penalties: 3-0.5-2, 3-0.5-1 < 2");
    CHECK(m->sample_counts[1] == 0 && m->sample_counts[2] == 0, "penalty counts restored");
    s.n_gen = 0;
    float nan_l[4] = {NAN, 0, 1, NAN};
    CHECK(ck_sample(m, &s, &greedy, nan_l) == 2, "NaN logits never win");

    float lp[4] = {0, logf(2), logf(3), logf(4)};
    double f[4];
    const int N = 40000;
    draw(m, lp, (ck_sampling){1.0f, 1.0f, 0, 0, 0, 1}, N, f);
    CHECK(fabs(f[0] - 0.1) < 0.01 && fabs(f[1] - 0.2) < 0.01 && fabs(f[2] - 0.3) < 0.01 && fabs(f[3] - 0.4) < 0.01,
          "temperature 1: %.3f %.3f %.3f %.3f", f[0], f[1], f[2], f[3]);
    draw(m, lp, (ck_sampling){1.0f, 0.0f, 2, 0, 0, 2}, N, f);
    CHECK(f[0] == 0 && f[1] == 0 && fabs(f[2] - 3.0 / 7) < 0.01 && fabs(f[3] - 4.0 / 7) < 0.01, "top-k 2: %.3f %.3f", f[2], f[3]);
    draw(m, lp, (ck_sampling){1.0f, 0.65f, 0, 0, 0, 3}, N, f);
    CHECK(f[0] == 0 && f[1] == 0 && fabs(f[2] - 3.0 / 7) < 0.01 && fabs(f[3] - 4.0 / 7) < 0.01, "top-p 0.65: %.3f %.3f", f[2], f[3]);
    draw(m, lp, (ck_sampling){1.0f, 0.75f, 0, 0, 0, 3}, N, f);
    CHECK(f[0] == 0 && fabs(f[1] - 2.0 / 9) < 0.01, "top-p 0.75 keeps three: %.3f", f[1]);
    draw(m, lp, (ck_sampling){1.0f, 0.01f, 0, 0, 0, 4}, 1000, f);
    CHECK(f[3] > 0.99999, "top-p tiny is greedy");
    draw(m, lp, (ck_sampling){1.0f, 1.0f, 1, 0, 0, 5}, 1000, f);
    CHECK(f[3] > 0.99999, "top-k 1 is greedy");
    float l2[4] = {0, logf(2), -INFINITY, -INFINITY};
    draw(m, l2, (ck_sampling){0.5f, 1.0f, 0, 0, 0, 6}, N, f);
    CHECK(fabs(f[0] - 0.2) < 0.01 && fabs(f[1] - 0.8) < 0.01, "temperature 0.5: %.3f %.3f", f[0], f[1]);
    fake_free(m);

    /* top-k selection against a full sort, on a big vocabulary with ties */
    m = fake_model(5000);
    float *big = malloc(5000 * 4);
    trng r = trng_make(9);
    for (int i = 0; i < 5000; i++) big[i] = (float)(trng_next(&r) % 300) / 10.0f;
    ck_sampling sp = {1.0f, 1.0f, 17, 0, 0, 0};
    int bad = 0;
    ck_seq_state st = {0};
    for (int i = 0; i < 300; i++) {
        int tok = ck_sample(m, &st, &sp, big);
        int rank = 0;
        for (int j = 0; j < 5000; j++) rank += big[j] > big[tok] || (big[j] == big[tok] && j < tok);
        if (rank >= 17) bad++;
    }
    CHECK(bad == 0, "top-k 17 drew %d tokens outside the top 17", bad);
    free(big);
    fake_free(m);

    /* same seed, same tokens; another seed, other tokens */
    ck_config c = variant(V_QWEN2);
    int32_t p[5] = {1, 2, 3, 4, 5}, t1[GEN], t2[GEN], t3[GEN];
    float *lg = malloc((size_t)GEN * c.vocab * 4);
    ck_sampling hot = {3.0f, 1.0f, 0, 0, 0, 99};
    ck_model *mm = new_model(&c, CK_F32, 3, 0, 2, 16, 4, 2, NULL);
    run_alone(mm, 0, p, 5, &hot, t1, lg);
    run_alone(mm, 1, p, 5, &hot, t2, lg);
    hot.seed = 100;
    run_alone(mm, 0, p, 5, &hot, t3, lg);
    CHECK(!memcmp(t1, t2, sizeof t1), "same seed, same tokens");
    CHECK(memcmp(t1, t3, sizeof t1) != 0, "another seed, other tokens");

    /* out_logits are the raw logits, before penalties */
    float *raw = malloc((size_t)c.vocab * 4), *pl = malloc((size_t)c.vocab * 4);
    ck_sampling pens = {0.0f, 1.0f, 0, 100.0f, 5.0f, 0};
    run_alone(mm, 0, p, 5, &greedy, t1, lg);
    memcpy(raw, lg + (int64_t)(GEN - 1) * c.vocab, (size_t)c.vocab * 4);
    run_alone(mm, 1, p, 5, &pens, t2, lg);
    int repeats = 0;
    for (int i = 0; i < GEN; i++)
        for (int j = 0; j < i; j++) repeats += t2[i] == t2[j];
    CHECK(repeats == 0, "heavy penalties: no token repeats (%d)", repeats);
    step1(mm, 0, 0, p, 5, 1, &greedy, NULL, raw);
    step1(mm, 1, 0, p, 5, 1, &pens, NULL, pl);
    CHECK(!memcmp(raw, pl, (size_t)c.vocab * 4), "out_logits are taken before penalties");
    free(lg), free(raw), free(pl);
    ck_model_free(mm);
}

/* ---------------------------------------------------------------- odds and ends */

static void test_misc(void) {
    CHECK(ck_abi_version() == CK_ABI_VERSION, "abi version");
    CHECK(ck_backend_available() == 1, "cpu is available");
    CHECK(strncmp(ck_backend_name(), "cpu-", 4) == 0, "backend name %s", ck_backend_name());
    ck_config c = variant(V_QWEN3);
    CHECK(ck_kv_bytes(&c, 10, 16) == (int64_t)c.n_layers * 2 * 10 * 16 * c.n_kv_heads * c.head_dim * 4, "kv_bytes");
    CHECK(ck_kv_bytes(&c, 0, 16) == -1, "kv_bytes of 0 blocks");
    ck_model *m = new_model(&c, CK_BF16, 1, 0, 2, 10, 16, 2, NULL);
    int64_t weights = (int64_t)c.vocab * c.hidden * 2;
    CHECK(ck_model_peak_bytes(m) > weights + ck_kv_bytes(&c, 10, 16), "peak bytes %lld", (long long)ck_model_peak_bytes(m));
    CHECK(ck_kv_free_blocks(m) == 10, "free blocks");
    CHECK(ck_kv_free_blocks(NULL) == -1, "free blocks of NULL");
    ck_model_free(m);
}

int main(void) {
    printf("test_kernels: backend %s\n", ck_backend_name());
    test_numeric();
    test_fast_kernels();
    test_reference();
    test_batch_invariance();
    test_threads();
    test_chunked_prefill();
    test_capacity();
    test_invalid();
    test_sampling();
    test_misc();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
