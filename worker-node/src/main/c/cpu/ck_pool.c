/*
 * ck_pool.c: see ck_pool.h. One job at a time: the caller publishes (fn, arg), bumps a generation
 * counter, does its own share and waits for the workers' count to drop to zero.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#include "ck_pool.h"

/* how long an idle worker spins before it sleeps (pause instructions; ~100-200 us) */
#define SPIN_LIMIT 20000

typedef struct {
    ck_pool *pool;
    int ith;
} worker_arg;

struct ck_pool {
    int n;                      /* threads, the caller included */
    pthread_t *threads;         /* [n - 1] */
    worker_arg *args;           /* [n - 1] */
    ck_task_fn fn;
    void *arg;
    atomic_uint generation;     /* bumped once per job */
    atomic_int pending;         /* workers still running the current job */
    atomic_int stop;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
};

static void *worker_main(void *p) {
    worker_arg *wa = p;
    ck_pool *pool = wa->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned gen;
        int spins = 0;
        while ((gen = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&pool->stop, memory_order_relaxed) && spins < SPIN_LIMIT) {
            CPU_RELAX();
            spins++;
        }
        if (gen == seen && !atomic_load(&pool->stop)) {
            pthread_mutex_lock(&pool->mutex);
            while ((gen = atomic_load(&pool->generation)) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->wake, &pool->mutex);
            pthread_mutex_unlock(&pool->mutex);
        }
        if (atomic_load(&pool->stop)) return NULL;
        seen = gen;
        pool->fn(pool->arg, wa->ith, pool->n);
        atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_release);
    }
}

ck_pool *ck_pool_create(int n) {
    if (n < 1) return NULL;
    ck_pool *p = calloc(1, sizeof(ck_pool));
    if (!p) return NULL;
    p->n = n;
    atomic_init(&p->generation, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->stop, 0);
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (n > 1) {
        p->threads = calloc((size_t)n - 1, sizeof(pthread_t));
        p->args = calloc((size_t)n - 1, sizeof(worker_arg));
        if (!p->threads || !p->args) goto fail;
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

void ck_pool_run(ck_pool *p, ck_task_fn fn, void *arg) {
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    /* wake sleepers; a worker checks the generation under this mutex before it sleeps */
    pthread_mutex_lock(&p->mutex);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    fn(arg, 0, p->n);
    for (long spins = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; spins++) {
        if (spins < SPIN_LIMIT) CPU_RELAX();
        else sched_yield(); /* more threads than cores: let the straggler run */
    }
}

void ck_pool_free(ck_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mutex);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    for (int i = 1; i < p->n; i++)
        if (p->threads) pthread_join(p->threads[i - 1], NULL);
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->wake);
    free(p->threads);
    free(p->args);
    free(p);
}
