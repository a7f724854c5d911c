/* collection — the registry of collections: the records in memory, their
 * catalog records, which tasks belong to which collection, and their place
 * on disk (DATA/collections/NAME, generations in NAME/gen-K). No other
 * module builds those paths or keeps a list of collections.
 *
 * One lock guards the list and every field of every struct coll: hold it
 * (coll_lock) around any call marked "locked" and any field access. */
#ifndef TISFS_COLLECTION_H
#define TISFS_COLLECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tisfs/catalog.h"
#include "tisfs/spec.h"

struct gen;
struct task;
struct incr;
struct verify;

struct coll {
    char name[TIS_NAME_MAX + 1];
    char created[32];
    struct tis_spec *spec; /* NULL until a spec is accepted */
    struct tis_spec *next_spec; /* a rebuild's new spec, accepted at its switch */
    struct gen *gen;       /* the serving generation, NULL before the first build */
    uint64_t gen_id;
    char *gen_err;         /* why gen_id could not be opened at start-up, or NULL */
    uint64_t *tasks;       /* every task of this collection, ascending */
    size_t ntasks;
    struct task *task;     /* the latest task started by this process */
    struct incr *incr;     /* the running channel, NULL when none runs */
    struct verify *verify; /* the latest verification started by this process */
    uint64_t last_verify;  /* its task id (kept across restarts), 0 when none */
    bool deleting;         /* rm -r under way: invisible to coll_find */
    struct coll *next;
};

/* Opens the registry over data_dir and cat: loads every collection, opens
 * its serving generation and removes generations nothing serves (leftovers
 * of interrupted builds). Starts nothing. */
void coll_registry_open(const char *data_dir, struct catalog *cat);
/* Frees every record (tasks and channels must be stopped already). */
void coll_registry_close(void);
struct catalog *coll_catalog(void);

void coll_lock(void);
void coll_unlock(void);

/* Locked. The collection called name, NULL if unknown or being deleted. */
struct coll *coll_find(const char *name);
/* Locked. The first record (iterate with ->next; skip those deleting). */
struct coll *coll_first(void);
/* Locked. Reserves name (already validated) and persists it; NULL when a
 * collection has that name, even one being deleted. */
struct coll *coll_add(const char *name);
/* Locked. The latest task id, 0 when none ran. */
uint64_t coll_last_task(const struct coll *c);
/* Tasks a collection keeps (status and log); older ones are removed as new
 * ones start, which bounds the collection's log on disk. */
#define COLL_MAX_TASKS 50

/* Locked. Records task id as c's latest and persists the record; drops
 * the oldest task beyond COLL_MAX_TASKS. */
void coll_add_task(struct coll *c, uint64_t id);
/* Locked. Writes c's record to the catalog (the caller syncs when it must
 * survive a power cut: cat_sync). Returns 0, or the LMDB error (a full
 * disk): the record on disk is then the previous one. */
int coll_persist(const struct coll *c);

/* Not locked (c must be marked deleting and its task and channel stopped):
 * removes its catalog record, its tasks and their logs, and its directory,
 * then takes c out of the list (its name is refused until then) and frees
 * it. */
void coll_destroy(struct coll *c);

/* Locked. The collection whose tasks include id, NULL if none. */
struct coll *coll_of_task(uint64_t id);

/* DATA/collections/NAME and DATA/collections/NAME/gen-ID. */
void coll_dir(const char *name, char *buf, size_t len);
void coll_gen_dir(const char *name, uint64_t gen_id, char *buf, size_t len);

#endif
