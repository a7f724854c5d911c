/* lmdb_map — LMDB environments whose map grows (see include/tisfs/lmdb_map.h). */
#define _GNU_SOURCE
#include "tisfs/lmdb_map.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Linux 6.7's; Debian 12's headers (6.1) predate them. */
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

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

/* Where the map is: LMDB does not say (me_mapaddr is only set for
 * MDB_FIXEDMAP), the process's own map list does. */
static bool map_where(struct lmdb_map *m, void **addr, size_t *len)
{
    const char *dir;
    char want[PATH_MAX + 16], real[PATH_MAX], line[PATH_MAX + 256];
    if (mdb_env_get_path(m->env, &dir) || !realpath(dir, real))
        return false;
    snprintf(want, sizeof want, "%s/data.mdb", real);
    FILE *f = fopen("/proc/self/maps", "r");
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        int path = 0;
        line[strcspn(line, "\n")] = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &path) == 2 && path &&
            strcmp(line + path, want) == 0) {
            *addr = (void *)lo;
            *len = hi - lo;
            found = true;
        }
    }
    if (f)
        fclose(f);
    return found;
}

/* A read fault on a file mapping maps, besides the page, its neighbours
 * that the page cache holds (the kernel's fault-around: 64 KB by default,
 * more with large folios), and they count in the process's RSS until
 * released. Random reads of a large generation (the pk leaves a stream
 * updates) thus map 16 pages or more for each one read. The kernel skips
 * fault-around on a range registered with a userfaultfd for
 * write-protection (mm/memory.c, uffd_disable_fault_around); asynchronous
 * write-protection (Linux 6.7) needs no handler, and LMDB's map is
 * read-only anyway, so the registration only changes that. Where it is
 * refused (older kernels, userfaultfd forbidden) faults map around as
 * before. */
static void map_exact_faults(struct lmdb_map *m)
{
    void *addr;
    size_t len;
    m->exact = false;
    if (getenv("TISFS_FAULT_AROUND")) /* to compare, or to try the fallback */
        return;
    if (m->uffd == -1) {
        m->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
        struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC};
        if (m->uffd >= 0 && ioctl(m->uffd, UFFDIO_API, &api) != 0)
            close(m->uffd), m->uffd = -1;
        if (m->uffd < 0)
            m->uffd = -2; /* not here: do not ask again */
    }
    if (m->uffd < 0 || !map_where(m, &addr, &len))
        return;
    struct uffdio_register r = {.range = {(unsigned long)addr, len},
                                .mode = UFFDIO_REGISTER_MODE_WP};
    m->exact = ioctl(m->uffd, UFFDIO_REGISTER, &r) == 0;
}

bool lmdb_map_faults_exact(const struct lmdb_map *m)
{
    return m->exact;
}

void lmdb_map_release_pages(struct lmdb_map *m)
{
    void *addr;
    size_t len;
    /* Held: a growth in between would move the map, and MADV_DONTNEED on
     * whatever took its place (a heap's pages) would zero them. */
    lmdb_map_hold(m);
    if (map_where(m, &addr, &len))
        madvise(addr, len, MADV_DONTNEED);
    lmdb_map_release(m);
}

void lmdb_map_init(struct lmdb_map *m, MDB_env *env, size_t size)
{
    m->uffd = -1;
    m->exact = false;
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
    map_exact_faults(m);
}

void lmdb_map_destroy(struct lmdb_map *m)
{
    if (m->uffd >= 0)
        close(m->uffd);
    m->uffd = -1;
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
        map_exact_faults(m);
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
