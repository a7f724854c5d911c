/* source — reading a table from a MySQL-protocol server (MySQL, MariaDB,
 * TiDB): discovery of its columns and primary key, a row-count estimate, and
 * one consistent snapshot streamed row by row (never the whole table in
 * memory). */
#ifndef TISFS_SOURCE_H
#define TISFS_SOURCE_H

#include <stdatomic.h>
#include <stdint.h>
#include <json-c/json.h>

#include "tisfs/schema.h"
#include "tisfs/spec.h"

struct source;

/* Progress lines for the task's log ("connected to ...", "chunk 3/8 done"). */
typedef void (*source_log_fn)(void *arg, const char *line);

/* Connects to the datasource of a spec. NULL with err set. log (may be
 * NULL) receives lines for the task's log. */
struct source *source_connect(const struct tis_datasource *ds, source_log_fn log, void *log_arg,
                              char *err, size_t errlen);
void source_close(struct source *s);

/* "10.11.6-MariaDB-0+deb12u1", "8.0.11-TiDB-v7.5.0", ... */
const char *source_server_version(const struct source *s);

/* Reads the table's columns and primary key and builds the collection's
 * schema: the spec's columns in spec order, then any primary key column the
 * spec did not list. Errors name the missing table or column, or say that the
 * table has no primary key. */
struct tis_schema *source_describe(struct source *s, const struct tis_spec *spec, char *err,
                                   size_t errlen);

/* The server's estimate of the table's rows (0 when it has none). */
uint64_t source_estimate_rows(struct source *s, const struct tis_spec *spec);

/* Opens one consistent snapshot (a REPEATABLE READ transaction started WITH
 * CONSISTENT SNAPSHOT); *info describes it (server, isolation, time). */
int source_begin_snapshot(struct source *s, struct json_object **info, char *err, size_t errlen);

/* Called for each row, values in schema field order; non-zero stops. */
typedef int (*source_row_fn)(void *arg, const struct tis_value *vals);

/* Streams the schema's fields of every row of the snapshot to fn. Returns 0
 * when all rows were delivered, -1 on error or when cancel became true (err
 * says which). */
int source_stream(struct source *s, const struct tis_spec *spec, const struct tis_schema *schema,
                  source_row_fn fn, void *arg, const atomic_bool *cancel, char *err,
                  size_t errlen);

#endif
