/*
 * ck_pool.c: see ck_pool.h.
 *
 * One job at a time. The caller publishes (fn, arg, n_chunks), then a ticket holding the job's
 * generation (high 32 bits) and the next unclaimed chunk (low 32 bits). A thread claims a chunk by
 * compare-and-swap on the ticket, which fails if the generation moved on, so a worker that wakes
 * up late cannot take part in a job it did not see published. The caller returns once `done`
 * reaches n_chunks; only then may the next job overwrite (fn, arg, n_chunks).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#include "ck_pool.h"

/* pause instructions an idle thread spins before it sleeps (worker) or yields (caller) */
#define SPIN_LIMIT 20000

typedef struct {
    ck_pool *pool;
    int ith;
} worker_arg;

struct ck_pool {
    int n;                       /* threads, the caller included */
    pthread_t *threads;          /* [n - 1] */
    worker_arg *args;            /* [n - 1] */
    uint32_t gen;                /* the caller's count of jobs */
    ck_task_fn fn;               /* the current job */
    void *arg;
    atomic_int n_chunks;
    _Atomic uint64_t ticket;     /* gen << 32 | next chunk */
    atomic_int done;             /* chunks finished */
    atomic_uint generation;      /* what sleeping workers wait on */
    atomic_int sleepers;
    atomic_int stop;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
};

/* Claims and runs chunks of job `gen` until none are left. */
static void run_chunks(ck_pool *p, uint32_t gen, int ith) {
    for (;;) {
        uint64_t v = atomic_load_explicit(&p->ticket, memory_order_acquire);
        if ((uint32_t)(v >> 32) != gen) return;           /* that job is over */
        uint32_t chunk = (uint32_t)v;
        if (chunk >= (uint32_t)atomic_load_explicit(&p->n_chunks, memory_order_relaxed)) return;       /* n_chunks is gen's: gen is current */
        if (!atomic_compare_exchange_weak_explicit(&p->ticket, &v, v + 1, memory_order_acq_rel, memory_order_acquire))
            continue;
        p->fn(p->arg, (int)chunk, ith);                  /* stable: the job cannot end before this */
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
    }
}

static void *worker_main(void *q) {
    worker_arg *wa = q;
    ck_pool *p = wa->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned gen;
        int spins = 0;
        while ((gen = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&p->stop, memory_order_relaxed)) {
            if (++spins < SPIN_LIMIT) {
                CPU_RELAX();
                continue;
            }
            pthread_mutex_lock(&p->mutex);
            atomic_fetch_add(&p->sleepers, 1);
            while ((gen = atomic_load(&p->generation)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mutex);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mutex);
            spins = 0;
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = gen;
        run_chunks(p, gen, wa->ith);
    }
}

ck_pool *ck_pool_create(int n) {
    if (n < 1) return NULL;
    ck_pool *p = calloc(1, sizeof(ck_pool));
    if (!p) return NULL;
    p->n = n;
    atomic_init(&p->ticket, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->n_chunks, 0);
    atomic_init(&p->generation, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stop, 0);
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (n > 1) {
        p->threads = calloc((size_t)n - 1, sizeof(pthread_t));
        p->args = calloc((size_t)n - 1, sizeof(worker_arg));
        if (!p->threads || !p->args) {
            p->n = 1;
            goto fail;
        }
        for (int i = 1; i < n; i++) {
            p->args[i - 1] = (worker_arg){p, i};
            if (pthread_create(&p->threads[i - 1], NULL, worker_main, &p->args[i - 1]) != 0) {
                p->n = i; /* the ones started so far are joined by ck_pool_free */
                goto fail;
            }
        }
    }
    return p;
fail:
    ck_pool_free(p);
    return NULL;
}

int ck_pool_size(const ck_pool *p) {
    return p->n;
}

void ck_pool_run(ck_pool *p, ck_task_fn fn, void *arg, int n_chunks) {
    if (n_chunks <= 0) return;
    if (p->n == 1 || n_chunks == 1) {
        for (int c = 0; c < n_chunks; c++) fn(arg, c, 0);
        return;
    }
    uint32_t gen = ++p->gen;
    if (gen == 0) gen = ++p->gen; /* 0 is the workers' initial "seen" */
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->n_chunks, n_chunks, memory_order_relaxed);
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->ticket, (uint64_t)gen << 32, memory_order_release);
    atomic_store(&p->generation, gen);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mutex);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mutex);
    }
    run_chunks(p, gen, 0);
    for (long spins = 0; atomic_load_explicit(&p->done, memory_order_acquire) < n_chunks; spins++) {
        if (spins < SPIN_LIMIT) CPU_RELAX();
        else sched_yield(); /* a worker holding a chunk was descheduled: let it run */
    }
}

void ck_pool_free(ck_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mutex);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i - 1], NULL);
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->wake);
    free(p->threads);
    free(p->args);
    free(p);
}
