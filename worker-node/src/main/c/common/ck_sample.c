/*
 * ck_sample.c: turning one row of logits into a token id, on the host, for every backend.
 *
 * Order: penalties (presence, frequency) over the tokens this sequence has sampled
 *        -> temperature 0: argmax (lowest id on ties)
 *        -> else logits / temperature -> top-k -> softmax -> top-p -> draw.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ck_internal.h"

/* ---- xoshiro256** with splitmix64 seeding ---- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void ck_rng_seed(ck_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t ck_rng_next(ck_rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* uniform in [0, 1) with 53 random bits */
static double rng_uniform(ck_rng *r) {
    return (double)(ck_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- candidate ordering: higher value first, then lower id ---- */

static _Thread_local const float *g_key; /* qsort has no context argument */

static int before(const float *key, int32_t a, int32_t b) {
    if (key[a] != key[b]) return key[a] > key[b];
    return a < b;
}

static int cmp_desc(const void *pa, const void *pb) {
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    if (a == b) return 0;
    return before(g_key, a, b) ? -1 : 1;
}

/* Moves the k best of idx[0..n) to the front (in no particular order); quickselect. */
static void select_top(const float *key, int32_t *idx, int32_t n, int32_t k) {
    int32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int32_t pivot = idx[lo + (hi - lo) / 2];
        int32_t i = lo, j = hi;
        while (i <= j) {
            while (before(key, idx[i], pivot)) i++;
            while (before(key, pivot, idx[j])) j--;
            if (i <= j) {
                int32_t t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
                i++;
                j--;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

/* the first index of the largest value; NaN never wins (all NaN: 0) */
static int32_t argmax(const float *l, int32_t n) {
    int32_t best = 0;
    while (best < n - 1 && isnan(l[best])) best++;
    for (int32_t i = best + 1; i < n; i++)
        if (l[i] > l[best]) best = i;
    return isnan(l[best]) ? 0 : best;
}

int32_t ck_sample(ck_model *m, ck_seq_state *s, const ck_sampling *sp, const float *logits) {
    const int32_t vocab = m->cfg.vocab;
    float *l = m->sample_buf;          /* [vocab] working copy */
    int32_t *idx = m->sample_idx;      /* [vocab] candidate ids */
    int32_t *count = m->sample_counts; /* [vocab] zero on entry and exit */

    const int penalties = s->n_gen > 0 && (sp->presence_penalty != 0.0f || sp->frequency_penalty != 0.0f);
    if (sp->temperature == 0.0f && !penalties) return argmax(logits, vocab); /* no copy needed */

    memcpy(l, logits, (size_t)vocab * sizeof(float));
    for (int32_t i = 0; i < vocab; i++)
        if (isnan(l[i])) l[i] = -INFINITY;

    /* presence / frequency penalties over the generated tokens */
    if (penalties) {
        for (int32_t i = 0; i < s->n_gen; i++) count[s->gen[i]]++;
        for (int32_t i = 0; i < s->n_gen; i++) {
            int32_t t = s->gen[i];
            if (count[t] > 0) {
                l[t] -= sp->presence_penalty + sp->frequency_penalty * (float)count[t];
                count[t] = 0; /* applied once per distinct token; also restores the zeros */
            }
        }
    }

    if (sp->temperature == 0.0f) return argmax(l, vocab);

    for (int32_t i = 0; i < vocab; i++) {
        l[i] /= sp->temperature;
        idx[i] = i;
    }
    int32_t n = vocab;

    /* top-k */
    if (sp->top_k > 0 && sp->top_k < n) {
        select_top(l, idx, n, sp->top_k);
        n = sp->top_k;
    }

    /* softmax over the candidates; probabilities go back into l */
    float max = -INFINITY;
    for (int32_t i = 0; i < n; i++) max = fmaxf(max, l[idx[i]]);
    if (max == -INFINITY) return idx[0]; /* every logit is -inf: nothing to weigh */
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        float p = expf(l[idx[i]] - max);
        l[idx[i]] = p;
        sum += p;
    }
    for (int32_t i = 0; i < n; i++) l[idx[i]] = (float)(l[idx[i]] / sum);

    /* top-p: the smallest most-probable set whose mass reaches top_p */
    double mass = 1.0;
    if (sp->top_p > 0.0f && sp->top_p < 1.0f && n > 1) {
        /* a token below (1 - top_p) / (n - 1) can never be in the set: drop those before sorting */
        float cutoff = (1.0f - sp->top_p) / (float)(n - 1);
        int32_t kept = 0;
        for (int32_t i = 0; i < n; i++)
            if (l[idx[i]] >= cutoff) idx[kept++] = idx[i];
        g_key = l;
        qsort(idx, (size_t)kept, sizeof(int32_t), cmp_desc);
        double cum = 0.0;
        int32_t last = kept - 1;
        for (int32_t i = 0; i < kept; i++) {
            cum += l[idx[i]];
            if (cum >= sp->top_p) {
                last = i;
                break;
            }
        }
        n = last + 1;
        mass = 0.0;
        for (int32_t i = 0; i < n; i++) mass += l[idx[i]];
    }

    /* draw */
    double r = rng_uniform(&s->rng) * mass, cum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        cum += l[idx[i]];
        if (r < cum) return idx[i];
    }
    return idx[n - 1]; /* rounding */
}
