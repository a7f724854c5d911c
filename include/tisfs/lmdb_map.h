/* lmdb_map — an LMDB environment whose map grows when it is full.
 *
 * LMDB maps the whole file at a fixed virtual size; a write that needs a
 * page beyond it fails with MDB_MAP_FULL. mdb_env_set_mapsize can enlarge
 * the map of an open environment, but it unmaps and maps the file again,
 * possibly at another address, so it needs every transaction of the process
 * on that environment ended: readers hold pointers into the old map (LMDB
 * itself only refuses while a write transaction is open).
 *
 * So every transaction on a shared environment is begun and ended here,
 * holding a read-write lock shared for its whole life; growing takes it
 * exclusive. A writer that hits MDB_MAP_FULL ends its transaction (letting
 * go of the lock), calls lmdb_map_grow, and runs again. The lock prefers
 * writers (glibc's PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP): with
 * readers preferred, a steady stream of overlapping queries would keep
 * growth, and with it the channel, waiting for ever. Taking the lock shared
 * again on a thread that already holds it does not lock again (a thread
 * holding a read transaction may begin another on the same environment),
 * since with writers preferred a second shared lock behind a waiting writer
 * would deadlock; and a thread holding a transaction is refused growth
 * (EDEADLK) instead of waiting for itself.
 *
 * Sizes: an environment opens at max(TISFS map minimum, twice its file) and
 * doubles up to LMDB_MAP_MAX. The minimum is 1 GiB; TISFS_LMDB_MAP_MIN
 * (bytes, with an optional k, m or g) lowers or raises it, for tests. */
#ifndef TISFS_LMDB_MAP_H
#define TISFS_LMDB_MAP_H

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

/* The largest map an environment grows to (virtual: the address space is
 * 128 TiB, and the file only holds what is written). */
#define LMDB_MAP_MAX ((size_t)16 << 40)
#define LMDB_MAP_MIN ((size_t)1 << 30)
/* How long a grower waits for the transactions in flight to end before it
 * gives up (EBUSY): with writers preferred, queries that arrive meanwhile
 * wait too, so a long reader (a verify pass) must not stall them for its
 * whole length. */
#define LMDB_GROW_WAIT_SEC 1

struct lmdb_map {
    MDB_env *env;
    pthread_rwlock_t lock;
    size_t size; /* the map's size; changes only under the lock held exclusive */
    int uffd;    /* the userfaultfd that keeps faults exact (map_exact_faults); -1 not
                  * asked for yet, -2 refused */
    bool exact;  /* the map is registered with it */
};

/* The size to open an environment whose data file in dir holds file bytes
 * (0 for a new one) at: max(the minimum, 2 * file), in whole OS pages. */
size_t lmdb_map_initial(size_t file);
/* The size of dir/data.mdb, 0 when there is none. */
size_t lmdb_file_size(const char *dir);

/* Sets the map size of env (created, not yet open) and wraps it. */
void lmdb_map_init(struct lmdb_map *m, MDB_env *env, size_t size);
/* After mdb_env_open: the size LMDB actually mapped (it rounds up to the
 * file's last page). */
void lmdb_map_opened(struct lmdb_map *m);
void lmdb_map_destroy(struct lmdb_map *m);

/* mdb_txn_begin with the lock held shared until lmdb_map_end or
 * lmdb_map_commit; *seen (if not NULL) is the map size the transaction runs
 * under, for lmdb_map_grow. On failure the lock is not held. */
int lmdb_map_begin(struct lmdb_map *m, unsigned flags, MDB_txn **txn, size_t *seen);
/* Aborts (ends a read transaction) and lets go of the lock. */
void lmdb_map_end(struct lmdb_map *m, MDB_txn *txn);
int lmdb_map_commit(struct lmdb_map *m, MDB_txn *txn);
/* The lock alone, shared, for work on the map outside a transaction (a
 * madvise of its pages). */
void lmdb_map_hold(struct lmdb_map *m);
void lmdb_map_release(struct lmdb_map *m);
/* Whether a read fault on the map maps that page alone. A file mapping's
 * faults map the page cache's pages around the one read too (the kernel's
 * fault-around), and they all count in the process's RSS; the map is
 * registered (at open and at each growth) with a userfaultfd for
 * asynchronous write-protection, on which the kernel maps pages one by
 * one (Linux 6.7 and later; false where refused, and faults map around,
 * as they also do with TISFS_FAULT_AROUND set, to compare). */
bool lmdb_map_faults_exact(const struct lmdb_map *m);
/* Unmaps the pages of the map this process has mapped (MADV_DONTNEED):
 * they leave its RSS, not the page cache. */
void lmdb_map_release_pages(struct lmdb_map *m);

/* Doubles the map after a transaction that ran under size seen failed with
 * MDB_MAP_FULL and was ended; when another thread has grown it since, does
 * nothing. Returns 0 (grown: run the transaction again) with the new size
 * in *now, MDB_MAP_FULL (at LMDB_MAP_MAX), EDEADLK (this thread holds a
 * transaction on it), EBUSY (transactions in flight did not end within
 * LMDB_GROW_WAIT_SEC), or mmap's error (the old size is mapped again). */
int lmdb_map_grow(struct lmdb_map *m, size_t seen, size_t *now);

/* The bytes of env's map in use (up to its last page) and the map's size. */
int lmdb_map_used(MDB_env *env, size_t *used, size_t *mapsize);
/* For an environment only one thread uses (a build's): between its
 * transactions, doubles the map while more than half of it is used, so a
 * transaction of up to the used size never finds it full. */
int lmdb_map_room(MDB_env *env);

#endif
