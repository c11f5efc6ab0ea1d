/*
 * ck_pool.h: a fixed pool of worker threads for fork/join parallel loops.
 *
 * ck_pool_run(pool, fn, arg) calls fn(arg, ith, nth) once for every ith in [0, nth) (the caller
 * runs ith 0) and returns when all have finished. Workers spin briefly between jobs, then sleep,
 * so a forward pass with hundreds of small jobs does not pay a futex wake-up for each.
 */
#ifndef CK_POOL_H
#define CK_POOL_H

typedef void (*ck_task_fn)(void *arg, int ith, int nth);
typedef struct ck_pool ck_pool;

ck_pool *ck_pool_create(int n_threads); /* n_threads >= 1, the caller included; NULL on failure */
int ck_pool_size(const ck_pool *p);
void ck_pool_run(ck_pool *p, ck_task_fn fn, void *arg);
void ck_pool_free(ck_pool *p);

#endif
