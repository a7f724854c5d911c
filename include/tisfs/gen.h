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
 * (meta "snapshot": the TiDB TSO in "tso", null for a MySQL/MariaDB
 * consistent-snapshot transaction). A change applied later by the
 * incremental channel must record its own commit ts per document and apply
 * an event only when it is newer than the row's version (its own entry, else
 * the snapshot's), so the stream may start before the snapshot safely. */
#ifndef TISFS_GEN_H
#define TISFS_GEN_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include <lmdb.h>

#include "tisfs/analysis.h"
#include "tisfs/index.h"
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

uint64_t gen_doc_count(const struct gen *g);
const struct tis_schema *gen_schema(const struct gen *g);
/* The snapshot the generation was dumped at (borrowed). */
struct json_object *gen_snapshot(const struct gen *g);
const char *gen_dir(const struct gen *g);

/* Index statistics of field i: documents with a value, total tokens. */
void gen_field_stats(const struct gen *g, size_t field, uint64_t *docs, uint64_t *tokens);
const struct analysis_opts *gen_analysis_opts(const struct gen *g);

/* Reading inside one read transaction (a consistent view for one query). */
int gen_txn_begin(struct gen *g, MDB_txn **txn);
const struct index_dbs *gen_index(const struct gen *g);
/* The stored document id as JSON (only stored fields; fl filters later). */
struct json_object *gen_doc_json(struct gen *g, MDB_txn *txn, uint32_t id);
/* The raw values of document id in schema order, pointing into the
 * transaction's memory; vals must have nfields entries. */
bool gen_doc_values(struct gen *g, MDB_txn *txn, uint32_t id, struct tis_value *vals);

/* Calls fn with each document in id order as a JSON object of its stored
 * fields, typed (fn must not keep it). A non-zero return stops. */
int gen_each_doc(struct gen *g, int (*fn)(struct json_object *doc, void *arg), void *arg);

#endif
