/* source — reading a table from a MySQL-protocol server (MySQL, MariaDB,
 * TiDB): discovery of its columns and primary key, a row-count estimate, and
 * one consistent snapshot streamed row by row (never the whole table in
 * memory).
 *
 * Plugins: MySQL (host, port) connects there. TiKV finds a live TiDB through
 * PD (pd.h), or uses tidbAddr. On a TiDB server (whichever plugin) the
 * snapshot is a TSO read over several connections in parallel
 * (source_tidb.h); on any other server, one consistent-snapshot transaction
 * on one connection. */
#ifndef TISFS_SOURCE_H
#define TISFS_SOURCE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "tisfs/schema.h"
#include "tisfs/spec.h"

struct source;

/* Progress lines for the task's log ("connected to ...", "chunk 3/8 done"). */
typedef void (*source_log_fn)(void *arg, const char *line);
/* Formats one line (at most 2047 bytes) and hands it to log; nothing when log is NULL. */
void source_logf(source_log_fn log, void *arg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Connects to the datasource of a spec. NULL with err set. log (may be
 * NULL) receives lines for the task's log (the PD that answered, the TiDB
 * chosen, the TSO, chunks and their progress); it is called on the thread
 * that calls into the source. For TiKV, errors say what failed: every PD
 * unreachable (each named), no TiDB registered, none alive, none answering. */
struct source *source_connect(const struct tis_datasource *ds, source_log_fn log, void *log_arg,
                              char *err, size_t errlen);
void source_close(struct source *s);
/* From another thread: cuts the main connection (shutdown, not close) so
 * that a read blocked on a stalled server returns at once; the stream then
 * fails and source_close still cleans up. */
void source_abort(struct source *s);

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

/* Opens one consistent snapshot; *info describes it (method, server, time,
 * and "tso": the TiDB snapshot TSO, the version of every dumped row, or null
 * when the server is not TiDB). On TiDB: tidb_gc_life_time is extended when
 * shorter than the dump may take (restored when the stream ends, or at
 * source_close at the latest, also on failure), the TSO is taken and checked
 * against the GC safe point. Elsewhere: a REPEATABLE READ transaction started
 * WITH CONSISTENT SNAPSHOT. */
int source_begin_snapshot(struct source *s, struct json_object **info, char *err, size_t errlen);
/* The same, with up to n connections that read the one snapshot
 * (source_query_each). On MariaDB with a binlog: n consistent-snapshot
 * transactions started back to back whose binlog_snapshot_file/position
 * are equal, so that they see the same commits, started again while
 * commits fall between them (a few times); otherwise (no binlog, a server
 * that does not name the position, positions that keep differing) the main
 * connection alone, said in the log. The snapshot's info and version are
 * the main connection's either way. On TiDB n is ignored: its parallel
 * readers share the TSO. */
int source_begin_snapshot_shared(struct source *s, size_t n, struct json_object **info,
                                 char *err, size_t errlen);
/* How many connections read the snapshot: 1 unless
 * source_begin_snapshot_shared could share it. */
size_t source_snapshot_conns(const struct source *s);

/* Called for each row, values in schema field order; non-zero stops. */
typedef int (*source_row_fn)(void *arg, const struct tis_value *vals);

/* Streams the schema's fields of every row of the snapshot to fn, which is
 * called on the calling thread only, serially (on TiDB, reader threads hand
 * rows over through a bounded queue, so memory stays flat). Returns 0 when
 * all rows were delivered, -1 on error or when cancel became true (err says
 * which; cancel is honoured within a moment). */
int source_stream(struct source *s, const struct tis_spec *spec, const struct tis_schema *schema,
                  source_row_fn fn, void *arg, const atomic_bool *cancel, char *err,
                  size_t errlen);

/* Whether the snapshot is a TiDB TSO snapshot (read by parallel readers). */
bool source_is_tidb(const struct source *s);
/* Runs one SELECT of ncols columns on the snapshot's own connection (on
 * MySQL/MariaDB: inside the consistent-snapshot transaction) and streams its
 * rows to fn. 0, or -1 with err (a stop by fn or cancel leaves the
 * connection unusable). */
int source_query(struct source *s, const char *sql, size_t ncols, source_row_fn fn, void *arg,
                 const atomic_bool *cancel, char *err, size_t errlen);
/* Runs the n queries sql[] over every connection that reads the snapshot,
 * each connection taking the next query when done with one (so that all
 * finish together however long each query takes): connection 0, the main
 * one, on the calling thread, each other on a thread of its own. The rows
 * of any query run on connection i go to fn(args[i], row), on that
 * connection's thread; args has source_snapshot_conns entries. 0, or -1
 * with the first failure's err (the others then take no new query; a
 * failed or cancelled connection is left unusable). */
int source_query_each(struct source *s, const char *const *sql, size_t n, size_t ncols,
                      source_row_fn fn, void *const *args, const atomic_bool *cancel, char *err,
                      size_t errlen);

#endif
