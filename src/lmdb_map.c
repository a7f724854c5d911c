/* lmdb_map — LMDB environments whose map grows (see include/tisfs/lmdb_map.h). */
#define _GNU_SOURCE
#include "tisfs/lmdb_map.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The maps this thread holds the lock of, shared, and how many times. A
 * thread has transactions on two or three environments at most (a query's
 * reader, the catalog). */
#define HELD_MAX 8
static _Thread_local struct held {
    const struct lmdb_map *m;
    unsigned depth;
} held[HELD_MAX];

static struct held *held_find(const struct lmdb_map *m)
{
    for (int i = 0; i < HELD_MAX; i++)
        if (held[i].m == m)
            return &held[i];
    return NULL;
}

static size_t page_round(size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    return (n + pg - 1) / pg * pg;
}

static size_t map_min(void)
{
    const char *s = getenv("TISFS_LMDB_MAP_MIN");
    char *end;
    if (!s || !*s)
        return LMDB_MAP_MIN;
    unsigned long long n = strtoull(s, &end, 10);
    int shift = *end == 'k' || *end == 'K' ? 10 : *end == 'm' || *end == 'M' ? 20
              : *end == 'g' || *end == 'G' ? 30 : 0;
    n <<= shift;
    /* LMDB needs a few pages whatever the setting. */
    return n < ((size_t)64 << 10) ? (size_t)64 << 10 : n > LMDB_MAP_MAX ? LMDB_MAP_MAX : n;
}

size_t lmdb_map_initial(size_t file)
{
    size_t min = map_min(), twice = file > LMDB_MAP_MAX / 2 ? LMDB_MAP_MAX : 2 * file;
    return page_round(twice > min ? twice : min);
}

size_t lmdb_file_size(const char *dir)
{
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

void lmdb_map_init(struct lmdb_map *m, MDB_env *env, size_t size)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&m->lock, &a);
    pthread_rwlockattr_destroy(&a);
    m->env = env;
    m->size = size;
    mdb_env_set_mapsize(env, size);
}

void lmdb_map_opened(struct lmdb_map *m)
{
    MDB_envinfo info;
    if (mdb_env_info(m->env, &info) == 0)
        m->size = info.me_mapsize;
}

void lmdb_map_destroy(struct lmdb_map *m)
{
    pthread_rwlock_destroy(&m->lock);
}

void lmdb_map_hold(struct lmdb_map *m)
{
    struct held *h = held_find(m);
    if (h) {
        h->depth++;
        return;
    }
    if (!(h = held_find(NULL))) {
        fprintf(stderr, "tisfs: a thread holds transactions on more than %d LMDB maps\n",
                HELD_MAX);
        abort();
    }
    pthread_rwlock_rdlock(&m->lock);
    *h = (struct held){m, 1};
}

void lmdb_map_release(struct lmdb_map *m)
{
    struct held *h = held_find(m);
    if (!h) {
        fprintf(stderr, "tisfs: an LMDB map released that this thread does not hold\n");
        abort();
    }
    if (--h->depth == 0) {
        h->m = NULL;
        pthread_rwlock_unlock(&m->lock);
    }
}

int lmdb_map_begin(struct lmdb_map *m, unsigned flags, MDB_txn **txn, size_t *seen)
{
    lmdb_map_hold(m);
    int rc = mdb_txn_begin(m->env, NULL, flags, txn);
    if (seen)
        *seen = m->size;
    if (rc)
        lmdb_map_release(m);
    return rc;
}

void lmdb_map_end(struct lmdb_map *m, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    lmdb_map_release(m);
}

int lmdb_map_commit(struct lmdb_map *m, MDB_txn *txn)
{
    int rc = mdb_txn_commit(txn);
    lmdb_map_release(m);
    return rc;
}

int lmdb_map_grow(struct lmdb_map *m, size_t seen, size_t *now)
{
    if (held_find(m))
        return EDEADLK;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += LMDB_GROW_WAIT_SEC;
    int rc = pthread_rwlock_timedwrlock(&m->lock, &until);
    if (rc)
        return rc == ETIMEDOUT ? EBUSY : rc;
    size_t old = m->size;
    if (old > seen)
        rc = 0; /* another writer grew it meanwhile */
    else if (old >= LMDB_MAP_MAX)
        rc = MDB_MAP_FULL;
    else {
        size_t want = old > LMDB_MAP_MAX / 2 ? LMDB_MAP_MAX : page_round(2 * old);
        rc = mdb_env_set_mapsize(m->env, want);
        if (rc == 0)
            m->size = want;
        else /* LMDB unmapped the old map first: without one the env is unusable */
            mdb_env_set_mapsize(m->env, old);
    }
    *now = m->size;
    pthread_rwlock_unlock(&m->lock);
    return rc;
}

int lmdb_map_used(MDB_env *env, size_t *used, size_t *mapsize)
{
    MDB_envinfo info;
    MDB_stat st;
    int rc = mdb_env_info(env, &info);
    if (!rc)
        rc = mdb_env_stat(env, &st);
    if (rc)
        return rc;
    *used = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
    *mapsize = info.me_mapsize;
    return 0;
}

int lmdb_map_room(MDB_env *env)
{
    size_t used, size;
    int rc = lmdb_map_used(env, &used, &size);
    if (rc)
        return rc;
    size_t mapped = size;
    while (used > size / 2 && size < LMDB_MAP_MAX)
        size = size > LMDB_MAP_MAX / 2 ? LMDB_MAP_MAX : page_round(2 * size);
    return size == mapped ? 0 : mdb_env_set_mapsize(env, size);
}
