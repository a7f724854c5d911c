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
