/* gen_internal.h — what gen.c (building, reading) and gen_live.c (live
 * changes) share. Not a public interface. */
#ifndef TISFS_GEN_INTERNAL_H
#define TISFS_GEN_INTERNAL_H

#include <stdatomic.h>

#include "tisfs/gen.h"
#include "tisfs/lmdb_map.h"
#include "tisfs/rowsum.h"
#include "tisfs/util.h"

struct gen_env {
    MDB_env *env;
    /* Every transaction on a serving generation goes through map (its lock,
     * its growth); a builder's environment is its thread's alone and grows
     * between transactions instead (lmdb_map_room). */
    struct lmdb_map map;
    /* pk: encoded primary key -> u32 document id (0: none, deleted), then
     * the row's version (u8 domain + u64) once the stream has changed it,
     * then (for a document the stream wrote) the hash64 of its encoding.
     * dead: ids removed from the index whose documents are still in docs
     * (index_idset form), until the merge purges them (gen_live.c).
     * sums: the chunk key (sums_key) -> the rowsum of the chunk's live
     * documents (sums_encode), kept while meta "rowsums" names the chunk
     * width; sumlog: a batch's changes to them (u64 big-endian sequence ->
     * sums_log_encode's record), until the merge folds them into sums. A
     * row's pk entry then ends with its row hash (rowsum.h). */
    MDB_dbi docs, pk, meta, dead, sums, sumlog;
    /* pkrecent: the stream's latest entries of keys pk holds too, ahead of
     * pk's (gen_pk.c); absent from generations written before it, which
     * a read-only open leaves without (has_recent false). */
    MDB_dbi pkrecent;
    bool has_recent;
    /* The writers' filter of pkrecent's keys (gen_pk.c), made at the first
     * write transaction. */
    struct pk_filter *filter;
    struct index_dbs index;
};

struct gen {
    struct gen_env e;
    char *dir;
    atomic_int refs;
    atomic_bool doomed;
    uint64_t docs; /* rows the build wrote */
    struct tis_schema *sc;
    struct json_object *snapshot;
    struct json_object *stats;
    struct analysis_opts opts;
};

int lmdb_fail(int rc, const char *what, char *err, size_t errlen);

/* ---- the primary key map (gen_pk.c) ----
 * A key's entry is pkrecent's if it has one, else pk's. The stream's
 * changes of keys in pk go to pkrecent while pk is at most
 * PK_RECENT_MAX_LEAVES leaves; each batch's commit folds pkrecent down to
 * PK_RECENT_KEEP entries, half as many at most, a key range after the
 * last. 32 768 entries are ~500 leaves: a 1M-event catch-up (510 000 rows
 * at the end) wrote 1.37 KB an event in all against 2.1 with pk alone.
 * The cost model: a batch of A random changes rewrites ~A leaves of pk
 * alone; with pkrecent, all of its ~500 leaves and the leaves of pk under
 * the key range folded, L * A / KEEP for L leaves. Above 16 384 leaves
 * (~1.5M rows) the two come too close (at A = 1 000 they are equal),
 * and larger tables write pk alone. */
#define PK_RECENT_KEEP 32768
#define PK_RECENT_MAX_LEAVES 16384
enum pk_where { PK_ABSENT, PK_IN_MAIN, PK_IN_RECENT };
enum { PK_LAST_UNKNOWN, PK_LAST_KNOWN, PK_LAST_EMPTY };
/* A tree's last key as a write transaction knows it. */
struct pk_last {
    struct tbuf key;
    int state;
};
/* A write transaction's view of the map: the trees' last keys (a key above
 * both is in neither; above pk's, it is appended to it), and whether
 * changes go to pkrecent. */
struct pk_writer {
    struct pk_last main, recent;
    bool route;
    size_t keep;   /* PK_RECENT_KEEP unless the environment says */
    bool filtered; /* the filter holds every key pkrecent has */
    bool claimed;  /* meta "pkrecent_by" names the filter (or none) */
};
/* The entry of key k into *v (MDB_NOTFOUND: none), and where it is. */
int pk_get(MDB_txn *txn, const struct gen_env *e, const MDB_val *k, MDB_val *v,
           enum pk_where *where);
/* pk_get for a writer, which knows more. */
int pk_find(MDB_txn *txn, const struct gen_env *e, struct pk_writer *pw, const MDB_val *k,
            MDB_val *v, enum pk_where *where);
void pk_writer_begin(MDB_txn *txn, const struct gen_env *e, struct pk_writer *pw);
void pk_filter_free(struct pk_filter *f);
void pk_writer_free(struct pk_writer *pw);
/* Puts key k's entry, where pk_get found it (where). */
int pk_put(MDB_txn *txn, const struct gen_env *e, struct pk_writer *pw, const MDB_val *k,
           const MDB_val *v, enum pk_where where);
/* Folds pkrecent's entries past the first keep into pk, max at most. */
int pk_fold(MDB_txn *txn, const struct gen_env *e, size_t keep, size_t max);
/* Every entry of pkrecent into pk (a writer's, which then looks its
 * trees' last keys up again). */
int pk_fold_all(MDB_txn *txn, const struct gen_env *e, struct pk_writer *pw);
/* A commit's fold: down to pw->keep entries (none when not routing). */
int pk_fold_some(MDB_txn *txn, const struct gen_env *e, struct pk_writer *pw);
/* The ids of the live entries of keys from..to into ids. */
int pk_ids_in_range(MDB_txn *txn, const struct gen_env *e, const MDB_val *from,
                    const MDB_val *to, roaring_bitmap_t *ids);
void pk_encode(const struct tis_schema *sc, const struct tis_value *vals, struct tbuf *k);
void doc_encode(const struct tis_schema *sc, const struct tis_value *vals, struct tbuf *d);
bool doc_values(const struct tis_schema *sc, const MDB_val *v, struct tis_value *vals);
/* Whether g keeps its chunk sums (meta "rowsums"). */
bool rowsums_kept(struct gen *g, MDB_txn *txn);
/* The sums DB's key of chunk key: order-preserving, like pk_encode's. */
void sums_key(int64_t key, unsigned char b[8]);
#define SUMS_VALUE_SIZE 20
void sums_encode(const struct rowsum *s, unsigned char b[SUMS_VALUE_SIZE]);
bool sums_decode(const MDB_val *v, struct rowsum *s);
/* A record of the sums log: the chunks of keys (n of them, sorted) with
 * their sums in m, as (i64 key, u64 count, u64 sum, u32 x) each. */
void sums_log_encode(const struct rowsum_map *m, const int64_t *keys, size_t n, struct tbuf *out);
/* Adds a record's sums to m; false when v is not one. */
bool sums_log_decode(const MDB_val *v, struct rowsum_map *m);
/* A meta value parsed as JSON (a new reference), or NULL. */
struct json_object *meta_get(struct gen *g, MDB_txn *txn, const char *key);
/* A meta value holding a version (u8 domain + u64); VER_NONE when absent. */
struct version meta_version(struct gen *g, MDB_txn *txn, const char *key);

#endif
