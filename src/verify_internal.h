/* verify_internal.h — what verify.c (the task, the row comparison, the
 * repair) and verify_chunks.c (chunks compared by checksum) share. Not a
 * public interface. */
#ifndef TISFS_VERIFY_INTERNAL_H
#define TISFS_VERIFY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <roaring/roaring.h>

#include "tisfs/source.h"
#include "tisfs/verify.h"

struct recheck;

struct verify {
    uint64_t id;
    char *collection;
    struct tis_spec *spec;
    struct gen *g;
    struct incr *channel;
    struct source *src; /* the pass's, while it runs (mu): verify_cancel cuts it */
    bool repair;
    struct catalog *cat;
    pthread_t thread;
    atomic_bool cancel;

    pthread_mutex_t mu; /* guards everything below */
    const char *stage;  /* "verify", "repair", "verify again" */
    bool running, complete, failed;
    char errs[1024], cancel_reason[128];
    char started[32], finished[32];
    double t0, secs;
    uint64_t total; /* the server's estimate */
    /* The latest pass's counts; repaired is the first pass's repairs. */
    uint64_t checked, missing, extra, differ, newer, repaired;
    struct json_object *samples, *snapshot;
    struct json_object *found; /* with repair: what the first pass found */
    /* With repair by chunks: the keys of the rows the first pass repaired,
     * the only ones the second pass checks again (NULL: every row). */
    struct recheck *recheck;
};

/* One pass over the table: the comparison's working state. */
struct pass {
    struct verify *v;
    const struct tis_schema *sc;
    MDB_txn *txn;
    struct version snap;
    roaring_bitmap_t *seen;
    struct tis_value *stored;
    struct tbuf key;
    bool repair;
    struct analyzer *an;
    struct gen_writer *w;
    size_t in_batch;
    double batch_began; /* mono_now() when w began */
    /* Called with every row (or extra document) about to be repaired. */
    void (*on_repair)(void *pass, const struct tis_value *vals);
    char err[512];
};

void verify_log(struct verify *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* source_row_fn: one snapshot row against the collection (and its repair). */
int verify_compare_row(void *arg, const struct tis_value *vals);
/* With repair: adds delta to chunk key's kept sums, with the repairs. */
int verify_correct_sums(struct pass *ps, int64_t key, const struct rowsum *delta);
/* Documents no row matched, within scope (NULL: all). */
int verify_find_extra(struct pass *ps, const roaring_bitmap_t *scope);

/* Connections that read a pass's snapshot: the server's checksums are
 * split over them by key range (source_begin_snapshot_shared). */
#define VERIFY_SERVER_CONNS 2
/* How many connections a pass of v over a table of schema sc asks for:
 * VERIFY_SERVER_CONNS when it may go by chunks, else 1. */
size_t verify_snapshot_conns(const struct verify *v, const struct tis_schema *sc);
/* Whether the pass can go by chunks (a single integer key, not TiDB). */
bool verify_chunkable(struct source *src, const struct tis_schema *sc);
/* The pass by chunks: 0, -1 on error (err), or 1 when the keys do not
 * allow it (compare row by row instead). */
int verify_chunked_pass(struct pass *ps, struct source *src, const struct tis_schema *sc,
                        char *err, size_t errlen);
void verify_chunks_free(struct recheck *r);

#endif
