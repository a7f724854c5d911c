/* gen — one generation of a collection: an LMDB environment in its own
 * directory (DATA/collections/NAME/gen-TASKID) that a build writes once and
 * queries then only read. A rebuild writes a new generation beside the
 * serving one; the switch is a pointer swap in the catalog, so readers always
 * see a complete generation.
 *
 * Inside: docs (u32 id -> encoded row), pk (encoded primary key -> u32 id),
 * meta (schema, snapshot, counts). The build streams rows in with
 * gen_builder_add (documents are written as they arrive, in id order, with
 * MDB_APPEND and a commit every GEN_BATCH_ROWS so memory stays flat), and
 * gen_builder_finish is the indexBuild step: the place where index structures
 * are written in bulk before one final sync. */
#ifndef TISFS_GEN_H
#define TISFS_GEN_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "tisfs/schema.h"

#define GEN_BATCH_ROWS 50000

struct gen_builder;

/* Creates an empty generation in dir (which must not exist yet). The builder
 * keeps its own copy of the schema. */
struct gen_builder *gen_builder_open(const char *dir, const struct tis_schema *sc, char *err,
                                     size_t errlen);
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

/* Calls fn with each document in id order as a JSON object of its stored
 * fields, typed (fn must not keep it). A non-zero return stops. */
int gen_each_doc(struct gen *g, int (*fn)(struct json_object *doc, void *arg), void *arg);

#endif
