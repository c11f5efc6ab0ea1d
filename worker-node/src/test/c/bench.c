/*
 * bench.c: decode (and prefill) speed of a kernel library on a random model with Qwen2-0.5B's
 * dimensions (hidden 896, 24 layers, 14 heads, 2 kv heads, head_dim 64, ffn 4864, vocab 151936,
 * tied embeddings, q/k/v biases). Linked against the CPU objects (`make bench`) or the CUDA ones
 * (`make bench-cuda`).
 *
 *   make bench BENCH_ARGS="-t 2 -n 64 -p 128 -d q8_0,f16"
 *     -t threads (default 2)   -n decode tokens (64)   -p prompt tokens (128)
 *     -d dtypes, comma separated, of f32 f16 bf16 q8_0 (default all)
 *     -b decode batch sizes, comma separated (1)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ck_testutil.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* prefill `batch` sequences (timing the first), then decode them together; prints one line */
static int run_batch(ck_model *m, const ck_config *c, int dtype, int threads, const int32_t *prompt, int n_prompt,
                     int n_decode, int batch, double t_load) {
    ck_sampling greedy = {0};
    int32_t out[64];
    double t0, t_prefill = 0;
    for (int s = 0; s < batch; s++) {
        ck_seq_entry e = {s, 0, n_prompt, 1, greedy};
        ck_batch b = {1, &e, prompt, out, NULL};
        t0 = now();
        if (ck_step(m, &b) != CK_OK) {
            fprintf(stderr, "prefill: %s\n", ck_last_error(m));
            return 1;
        }
        if (s == 0) t_prefill = now() - t0;
    }

    /* decode: all sequences one token each per step, in rounds of 16 steps; the machine may be
     * shared, so the best round is reported beside the mean */
    ck_seq_entry e[64];
    int32_t toks[64];
    for (int s = 0; s < batch; s++) toks[s] = out[0];
    double t_decode = 0, best = 1e9;
    int done = 0;
    while (done < n_decode) {
        int round = n_decode - done < 16 ? n_decode - done : 16;
        t0 = now();
        for (int i = 0; i < round; i++, done++) {
            for (int s = 0; s < batch; s++) e[s] = (ck_seq_entry){s, n_prompt + done, 1, 1, greedy};
            ck_batch b = {batch, e, toks, out, NULL};
            if (ck_step(m, &b) != CK_OK) {
                fprintf(stderr, "decode: %s\n", ck_last_error(m));
                return 1;
            }
            memcpy(toks, out, (size_t)batch * 4);
        }
        double dt = now() - t0;
        t_decode += dt;
        if (dt / round < best) best = dt / round;
    }
    for (int s = 0; s < batch; s++) ck_seq_free(m, s);
    printf("%-5s threads %d  prefill %4d tok: %8.1f tok/s   decode x%-2d: mean %8.2f tok/s (%.3f ms/step), best round %8.2f tok/s"
           "   load %.1fs  peak %.0f MiB\n",
           ck_dtype_name(dtype), threads, n_prompt, n_prompt / t_prefill, batch, batch * n_decode / t_decode,
           1e3 * t_decode / n_decode, batch / best, t_load, ck_model_peak_bytes(m) / 1048576.0);
    fflush(stdout);
    return 0;
}

static int run(int dtype, int threads, int n_prompt, int n_decode, const char *batches) {
    ck_config c = tu_config(24, 896, 14, 2, 64, 4864, 151936, 4096);
    c.tied_embeddings = 1;
    c.attn_bias = 1;
    c.rope_theta = 1000000.0f;
    ck_model *m;
    if (ck_model_create(&c, threads, &m) != CK_OK) {
        fprintf(stderr, "create: %s\n", ck_last_error(NULL));
        return 1;
    }
    double t0 = now();
    if (tu_fill(ck_model_set_tensor, m, &c, dtype, 1, NULL) != CK_OK || ck_model_finalize(m) != CK_OK ||
        ck_kv_init(m, 1024, 16, 64) != CK_OK) {
        fprintf(stderr, "setup: %s\n", ck_last_error(m));
        return 1;
    }
    double t_load = now() - t0;

    int32_t *prompt = malloc((size_t)n_prompt * 4), out;
    for (int i = 0; i < n_prompt; i++) prompt[i] = (i * 7919 + 13) % c.vocab;

    /* one throwaway step first: the CUDA build loads its kernels on first use */
    ck_sampling greedy = {0};
    ck_seq_entry warm = {0, 0, 1, 1, greedy};
    ck_batch wb = {1, &warm, prompt, &out, NULL};
    int st = ck_step(m, &wb) == CK_OK && ck_seq_free(m, 0) == CK_OK ? 0 : 1;
    if (st) fprintf(stderr, "warm-up: %s\n", ck_last_error(m));
    for (const char *b = batches; !st && *b; b += strcspn(b, ","), b += *b == ',') {
        int batch = atoi(b);
        if (batch < 1 || batch > 64 || batch * (n_prompt + n_decode) > 1024 * 16) {
            fprintf(stderr, "batch sizes are 1 to 64, and their tokens fit 16384\n");
            st = 2;
        } else {
            st = run_batch(m, &c, dtype, threads, prompt, n_prompt, n_decode, batch, t_load);
        }
    }
    free(prompt);
    ck_model_free(m);
    return st;
}

int main(int argc, char **argv) {
    int threads = 2, n_decode = 64, n_prompt = 128;
    const char *dtypes = "f32,f16,bf16,q8_0", *batches = "1";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-t")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-n")) n_decode = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-p")) n_prompt = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-d")) dtypes = argv[i + 1];
        else if (!strcmp(argv[i], "-b")) batches = argv[i + 1];
    }
    if (n_prompt < 1 || n_decode < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    printf("bench: %s, Qwen2-0.5B-shaped random model\n", ck_backend_name());
    const char *names[4] = {"f32", "f16", "bf16", "q8_0"};
    for (int d = 0; d < 4; d++) {
        char list[64];
        snprintf(list, sizeof list, ",%s,", dtypes);
        char key[16];
        snprintf(key, sizeof key, ",%s,", names[d]);
        int st = strstr(list, key) ? run(d, threads, n_prompt, n_decode, batches) : 0;
        if (st) return st;
    }
    return 0;
}
