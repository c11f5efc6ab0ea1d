/*
 * ck_pool.h: a fixed pool of worker threads for fork/join parallel loops.
 *
 * ck_pool_run(pool, fn, arg, n_chunks) calls fn(arg, chunk, ith) once for every chunk in
 * [0, n_chunks) and returns when all have finished. The caller (ith 0) and the workers
 * (ith 1 .. n-1) claim chunks from a shared counter, so a worker the OS has descheduled does not
 * hold the others up: the caller simply takes its chunks. ith identifies the thread running the
 * chunk, for per-thread scratch. Workers spin briefly between jobs, then sleep.
 */
#ifndef CK_POOL_H
#define CK_POOL_H

typedef void (*ck_task_fn)(void *arg, int chunk, int ith);
typedef struct ck_pool ck_pool;

ck_pool *ck_pool_create(int n_threads); /* n_threads >= 1, the caller included; NULL on failure */
int ck_pool_size(const ck_pool *p);
void ck_pool_run(ck_pool *p, ck_task_fn fn, void *arg, int n_chunks);
void ck_pool_free(ck_pool *p);

#endif
