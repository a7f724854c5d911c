/* gen — one generation of a collection: an LMDB environment in its own
 * directory (DATA/collections/NAME/gen-TASKID) that a build writes once and
 * queries then only read. A rebuild writes a new generation beside the
 * serving one; the switch is a pointer swap in the catalog, so readers always
 * see a complete generation.
 *
 * Inside: docs (u32 id -> encoded row), pk (encoded primary key -> u32 id),
 * meta (schema, snapshot, counts). The build streams rows in with
 * gen_builder_add (documents are written as they arrive, in id order, with
 * MDB_APPEND and a commit every GEN_BATCH_ROWS or GEN_BATCH_BYTES, since a
 * write transaction keeps its dirty pages in memory), and
 * gen_builder_finish is the indexBuild step: the place where index structures
 * are written in bulk before one final sync.
 *
 * Versions: every dumped row's version is the generation's snapshot version
 * (meta "snapshot": the TiDB TSO in "tso"; for MySQL/MariaDB the binlog
 * position of the consistent snapshot in "binlog", when the server logs
 * one). A change applied later by the incremental channel records its own
 * version in the row's `pk` entry (after the document id; a delete leaves
 * id 0 and its version, a tombstone) and is applied
 * only when it is newer than the row's version (its own entry, else the
 * snapshot's, else the last TRUNCATE's), so the stream may start before the
 * snapshot and repeat itself safely. Versions of different domains (a
 * snapshot without a TSO, events with one) do not compare: such an event is
 * applied, and later ones compare with what it left.
 *
 * Live changes: the serving generation is open for writing too. One
 * gen_writer is one LMDB write transaction holding a batch of changes and
 * the channel's state (its Kafka positions), committed together, so a crash
 * at any instant keeps both or neither. */
#ifndef TISFS_GEN_H
#define TISFS_GEN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include <lmdb.h>

#include "tisfs/analysis.h"
#include "tisfs/cdc.h"
#include "tisfs/index.h"
#include "tisfs/rowsum.h"
#include "tisfs/schema.h"

#define GEN_BATCH_ROWS 50000
#define GEN_BATCH_BYTES ((uint64_t)16 << 20)

struct gen_builder;

/* Creates an empty generation in dir (which must not exist yet). The builder
 * keeps its own copy of the schema. */
struct gen_builder *gen_builder_open(const char *dir, const struct tis_schema *sc,
                                     const struct analysis_opts *opts, char *err, size_t errlen);
/* Adds one row (values in schema order). A repeated primary key is an error. */
int gen_builder_add(struct gen_builder *b, const struct tis_value *vals, char *err,
                    size_t errlen);
uint64_t gen_builder_rows(const struct gen_builder *b);
/* A flag gen_builder_finish watches: set, the index merge stops at once. */
void gen_builder_set_cancel(struct gen_builder *b, const atomic_bool *cancel);
/* Values whose tokens beyond INDEX_MAX_TOKENS_PER_VALUE were not indexed. */
uint64_t gen_builder_truncated(const struct gen_builder *b);
/* Writes what remains (meta: schema, snapshot, document count) and syncs the
 * environment to disk. snapshot is borrowed. */
int gen_builder_finish(struct gen_builder *b, struct json_object *snapshot, char *err,
                       size_t errlen);
/* Closes the builder (finished or not); the caller removes an unfinished dir. */
void gen_builder_free(struct gen_builder *b);

/* A finished generation, open for reading, reference counted. */
struct gen;

struct gen *gen_open(const char *dir, char *err, size_t errlen);
void gen_ref(struct gen *g);
/* Drops a reference; the last one closes the environment, and removes the
 * directory if gen_doom was called. */
void gen_unref(struct gen *g);
/* Marks the generation for removal once no reader holds it. */
void gen_doom(struct gen *g);

/* Live documents now. */
uint64_t gen_doc_count(struct gen *g);
const struct tis_schema *gen_schema(const struct gen *g);
/* The snapshot the generation was dumped at (borrowed). */
struct json_object *gen_snapshot(const struct gen *g);
const char *gen_dir(const struct gen *g);

/* Live counts as of a read transaction: the largest document id handed
 * out, live documents, and per-field totals (documents with a value, tokens;
 * nfields entries in f, malloc'd). */
struct gen_stats {
    uint32_t last_id;
    uint64_t docs;
    struct field_totals *f;
};
void gen_stats_read(struct gen *g, MDB_txn *txn, struct gen_stats *st);
void gen_stats_free(struct gen_stats *st);
const struct analysis_opts *gen_analysis_opts(const struct gen *g);

/* Reading inside one read transaction (a consistent view for one query).
 * It holds the generation's map in place (lmdb_map.h) until gen_txn_end:
 * keep it for one query, not for an unbounded time, since a live change
 * that finds the map full waits for it (at most LMDB_GROW_WAIT_SEC). */
int gen_txn_begin(struct gen *g, MDB_txn **txn);
void gen_txn_end(struct gen *g, MDB_txn *txn);
/* The generation's map size now (it grows with live changes). */
size_t gen_map_size(struct gen *g);
/* Grows the map before a write finds it full, once more than half of it is
 * used; for a writer between its transactions. 1 when it grew (the size in
 * *now), 0 when it need not, or lmdb_map_grow's error (EBUSY: a long read,
 * a verify pass, kept it waiting; growth when full remains). */
int gen_grow_ahead(struct gen *g, size_t *now);
const struct index_dbs *gen_index(const struct gen *g);
/* The stored document id as JSON (only stored fields; fl filters later). */
struct json_object *gen_doc_json(struct gen *g, MDB_txn *txn, uint32_t id);
/* The raw values of document id in schema order, pointing into the
 * transaction's memory; vals must have nfields entries. */
bool gen_doc_values(struct gen *g, MDB_txn *txn, uint32_t id, struct tis_value *vals);
/* Calls fn with the id and raw values (as gen_doc_values) of every stored
 * document whose id is in ids, in id order: one cursor walk over the
 * documents, cheaper than gen_doc_values by id where ids has runs of
 * neighbours. vals must have nfields entries. A non-zero return of fn
 * stops the walk and is returned. */
int gen_walk_doc_values(struct gen *g, MDB_txn *txn, const roaring_bitmap_t *ids,
                        struct tis_value *vals,
                        int (*fn)(void *arg, uint32_t id, const struct tis_value *vals),
                        void *arg);

/* The sums of every chunk of live documents (rowsum.h) as of txn, into m
 * (empty; a chunk whose documents all went may be there, its sums zero).
 * Returns 0; 1 when g keeps none (a key that is not a single integer, a
 * generation written before they were kept, or with another chunk width:
 * walk the documents); -1 when they cannot be read. */
int gen_rowsums_read(struct gen *g, MDB_txn *txn, struct rowsum_map *m);
/* Adds the ids of the live documents of chunk key to ids: 0, or an LMDB
 * error. */
int gen_chunk_ids(struct gen *g, MDB_txn *txn, int64_t key, roaring_bitmap_t *ids);

/* Calls fn with each live document in id order as a JSON object of its stored
 * fields, typed (fn must not keep it). A non-zero return stops. */
int gen_each_doc(struct gen *g, int (*fn)(struct json_object *doc, void *arg), void *arg);

/* ---- live changes ---- */

/* The version every row of the snapshot carries. */
struct version gen_snapshot_version(const struct gen *g);
/* The version a snapshot description (source_begin_snapshot's info)
 * stands for: its TSO, or its binlog position. */
struct version gen_version_of_snapshot(struct json_object *snapshot);

/* What the generation holds for one primary key. */
struct gen_row {
    bool present;     /* a live document */
    uint32_t id;      /* its id, when present */
    struct version v; /* the version that last wrote the row (a deletion's
                       * too; the snapshot's for a row the build wrote) */
};
/* Looks up the row whose primary key vals holds, in txn (key is scratch).
 * Returns 0, or an LMDB error. */
int gen_row_lookup(struct gen *g, MDB_txn *txn, const struct tis_value *vals, struct tbuf *key,
                   struct gen_row *r);

struct gen_writer;

/* Starts a batch of changes (one write transaction; one writer at a time per
 * generation). an is the caller's analyzer, used on the calling thread. */
struct gen_writer *gen_write_begin(struct gen *g, struct analyzer *an, char *err, size_t errlen);

enum gen_outcome {
    GEN_APPLIED,
    GEN_STALE,     /* at or below the row's version: nothing changed */
    GEN_UNCHANGED, /* newer, but the document is the same: only its version moved */
    GEN_MISSING,   /* a delete of a row that is not there (its tombstone is kept) */
    GEN_REFUSED,   /* the row cannot be stored (its key is too long): err says why */
};

/* Inserts or replaces the row whose primary key vals holds (schema order).
 * present[i] false: the event did not carry field i, which keeps its stored
 * value (NULL for a new row). Returns 0 with *out set, or -1 with err. */
int gen_write_upsert(struct gen_writer *w, const struct tis_value *vals, const bool *present,
                     struct version v, enum gen_outcome *out, char *err, size_t errlen);
/* gen_write_upsert of a row whose every field is in vals, analysed ahead
 * by index_group_add (with gen_analysis_opts) from the same values into
 * the group attached with gen_write_use_group. */
/* Attaches a sealed group analysed ahead (NULL: none) to the batch (see
 * index_delta_attach). */
void gen_write_use_group(struct gen_writer *w, const struct index_group *g);
int gen_write_upsert_analyzed(struct gen_writer *w, const struct tis_value *vals,
                              const void *pre, struct version v, enum gen_outcome *out,
                              char *err, size_t errlen);
/* Deletes the row whose primary key vals holds (other fields ignored). */
int gen_write_delete(struct gen_writer *w, const struct tis_value *vals, struct version v,
                     enum gen_outcome *out, char *err, size_t errlen);
/* Whether a change at version v is at or below what the generation holds
 * already: its snapshot, or its last TRUNCATE (a DDL replayed from before
 * them, which must change nothing). */
bool gen_write_older(const struct gen_writer *w, struct version v);
/* Empties the collection (TRUNCATE at version v: older events stay out). */
int gen_write_truncate(struct gen_writer *w, struct version v, char *err, size_t errlen);
/* Adds delta to chunk key's kept sums with the batch (verify's repair of
 * sums found not to be their documents'); nothing when g keeps none. */
void gen_write_sums_correct(struct gen_writer *w, int64_t key, const struct rowsum *delta);
/* A step of the background merge (index_fold's mode) until the clock
 * (mono_now) passes until; *ran says whether it changed anything (else the
 * transaction may be abandoned), *left whether more merging is due now.
 * Once no posting is left to merge (and not far behind), a step purges up
 * to GEN_PURGE_IDS (_BUSY) stored documents of removed ids instead, and
 * once none is left, folds up to GEN_FOLD_SUMS_RECORDS batches' changes of
 * the chunk sums into their tree (with the stream flowing, only once
 * GEN_FOLD_SUMS_BUSY of them wait). The pages a step read are worth
 * releasing (gen_release_pages) after it. */
#define GEN_PURGE_IDS 512
#define GEN_PURGE_IDS_BUSY 128 /* with the stream flowing (INDEX_MERGE_TIERS) */
#define GEN_FOLD_SUMS_RECORDS 64
#define GEN_FOLD_SUMS_BUSY 16
int gen_write_fold(struct gen_writer *w, enum index_merge_mode mode, double until, bool *ran,
                   bool *left, char *err, size_t errlen);
/* Entries outside the base postings (the segments', exists marks). */
uint64_t gen_write_delta_entries(struct gen_writer *w);
/* Commits the batch with the channel state (a JSON object, borrowed; NULL
 * keeps the stored one) and frees the writer. Returns 0, -1 with err, or
 * GEN_GREW: the batch found the map full, nothing of it is stored, and the
 * map has grown (err says to what): apply it again. */
#define GEN_GREW 1
int gen_write_commit(struct gen_writer *w, struct json_object *channel, char *err, size_t errlen);
/* Undoes the batch and frees the writer. Returns GEN_GREW when the batch
 * had found the map full and the map has grown since (apply it again), else
 * 0. */
int gen_write_abort(struct gen_writer *w);

/* The channel state last committed with a batch (a new reference), or NULL. */
struct json_object *gen_channel_state(struct gen *g);
/* Stores a channel state on its own (a new generation's starting positions). */
int gen_set_channel_state(struct gen *g, struct json_object *channel, char *err, size_t errlen);
/* Forces committed batches to disk (they are written without a sync each). */
void gen_sync(struct gen *g);
/* Lets go of the pages of the environment this process has read through its
 * map (they stay in the page cache): a stream touches pages all over a
 * large index, and the daemon's resident size should not grow with it.
 * Callable inside a write transaction of the same thread (a long batch). */
void gen_release_pages(struct gen *g);
/* Whether a read fault on the generation's map maps only the page read
 * (lmdb_map_faults_exact): if not, each maps the pages around it too, and
 * the mapped pages grow faster between releases. */
bool gen_faults_exact(struct gen *g);

#endif
