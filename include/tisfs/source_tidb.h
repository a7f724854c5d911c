/* source_tidb — one consistent, parallel snapshot of a TiDB table.
 *
 * The pieces of the TiKV plugin that do not depend on how SQL travels (they
 * use the sqlx interface), so that each is unit-testable:
 *  - the snapshot sequence: extend tidb_gc_life_time when it is shorter than
 *    the dump may take, take the snapshot TSO, check it is above the GC safe
 *    point; and the restore of the GC life time afterwards (also on failure);
 *  - chunk planning: boundaries from TABLESAMPLE REGIONS(), or ranges of an
 *    integer primary key, turned into WHERE clauses that partition the table
 *    (every row in exactly one chunk, for any key type, composite keys too);
 *  - the parallel reader: worker threads, each on its own connection set to
 *    the snapshot, read chunks and hand rows through a bounded queue to the
 *    calling thread, which alone calls the row callback.
 * The statements TiDB alone understands are in tidb_sql.h. */
#ifndef TISFS_SOURCE_TIDB_H
#define TISFS_SOURCE_TIDB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tisfs/schema.h"
#include "tisfs/source.h"
#include "tisfs/sqlx.h"
#include "tisfs/util.h"

/* Connections reading in parallel (Dumpling's default is 4 too). */
#define TIDB_DUMP_CONNECTIONS 4
/* At most this many chunks; more TiKV regions are merged. */
#define TIDB_MAX_CHUNKS 64
/* Integer key ranges aim at this many rows per chunk. */
#define TIDB_CHUNK_ROWS 200000
/* tidb_gc_life_time during a dump, when it is shorter. */
#define TIDB_DUMP_GC_LIFE_TIME "24h"
/* Rows handed over per batch (and at most TIDB_BATCH_BYTES of values). */
#define TIDB_BATCH_ROWS 256
#define TIDB_BATCH_BYTES (1u << 20)

/* True when a VERSION() string is TiDB's. */
bool tidb_is_tidb(const char *version);
/* A Go duration ("10m0s", "1h30m", "720h", "1.5h") in seconds; -1 if bad. */
double tidb_parse_duration(const char *s);
/* A GC safe point ("20260124-10:00:00.123 +0800") as Unix milliseconds; -1 if bad. */
int64_t tidb_parse_safe_point(const char *s);
/* The physical part of a TSO, Unix milliseconds. */
static inline uint64_t tidb_tso_ms(uint64_t tso)
{
    return tso >> 18;
}
/* A TSO's time as ISO-8601 UTC with milliseconds; buf needs 32 bytes. */
void tidb_tso_time(uint64_t tso, char *buf);

struct tidb_snapshot {
    uint64_t tso;
    char *safe_point; /* as TiDB shows it; NULL when unreadable */
    /* The GC life time: gc_was is the value found, gc_changed says tisfs set
     * it to TIDB_DUMP_GC_LIFE_TIME and owes a restore. */
    char *gc_was;
    bool gc_changed, gc_via_table;
    /* The cluster, named by the caller before tidb_snapshot_begin (its PD or
     * TiDB address): dumps of one daemon on one cluster share one extension
     * of the GC life time; the first sets it, the last restores it. */
    char cluster[128];
    bool gc_joined;   /* relies on another dump's extension */
    bool gc_released; /* has let go of its share (restore done or handed on) */
};

/* Runs the snapshot sequence on x (a connection to TiDB). On success fills
 * snap; on failure restores the GC life time it extended, and returns -1 with
 * err set. log receives what was done. */
int tidb_snapshot_begin(struct sqlx *x, struct tidb_snapshot *snap, source_log_fn log,
                        void *log_arg, char *err, size_t errlen);
/* Restores the GC life time if tidb_snapshot_begin changed it, unless
 * someone else changed it meanwhile (then it is left alone). Idempotent:
 * returns 0 when there is nothing (left) to do, -1 with err when the
 * statements failed (the caller may retry on another connection). */
int tidb_gc_restore(struct sqlx *x, struct tidb_snapshot *snap, source_log_fn log,
                    void *log_arg, char *err, size_t errlen);
void tidb_snapshot_clear(struct tidb_snapshot *snap);

/* SQL text helpers. Identifiers are backquoted; literals are numbers when
 * the type is numeric and the text is a plain number, X'..' for binary
 * types, else single-quoted with backslash escapes. */
void tidb_add_ident(struct tbuf *b, const char *name);
void tidb_add_literal(struct tbuf *b, enum tis_vtype vt, const char *v, size_t len);
/* SELECT <fields> FROM `db`.`table` [WHERE where] */
void tidb_select_sql(struct tbuf *b, const char *db, const char *table,
                     const struct tis_schema *sc, const char *where);

/* Sorted chunk boundaries: n keys of npk primary key values each. Chunk i
 * (0 <= i <= n) holds the keys k with b[i-1] <= k < b[i] (b[-1] = -inf,
 * b[n] = +inf), in the key's own order (lexicographic for composite keys). */
struct tidb_bounds {
    size_t n, npk;
    char **vals;  /* n * npk values */
    size_t *lens; /* their lengths */
};
void tidb_bounds_add(struct tidb_bounds *b, const char *const *vals, const size_t *lens);
void tidb_bounds_free(struct tidb_bounds *b);
/* Keeps at most max evenly spread boundaries. */
void tidb_bounds_thin(struct tidb_bounds *b, size_t max);
/* The WHERE clause of chunk i (malloc'd), NULL when it is the whole table
 * (no boundaries). Composite keys are expanded (a > x OR (a = x AND b >= y))
 * so that TiDB turns them into key ranges. */
char *tidb_chunk_where(const struct tis_schema *sc, const struct tidb_bounds *b, size_t i);
/* Boundaries splitting the integer range [min, max] (decimal text, signed or
 * not) into at most n ranges of equal width; *out is overwritten (not freed). */
void tidb_int_bounds(bool is_unsigned, const char *min, const char *max, size_t n,
                     struct tidb_bounds *out);

/* Plans the chunks of table db.table: TABLESAMPLE REGIONS() boundaries, else
 * MIN/MAX of a single integer primary key split by est_rows, else one chunk.
 * *sqls gets one SELECT per chunk (free each and the array). */
int tidb_plan_chunks(struct sqlx *x, const char *db, const char *table,
                     const struct tis_schema *sc, uint64_t est_rows, char ***sqls,
                     size_t *nchunks, source_log_fn log, void *log_arg, char *err,
                     size_t errlen);

/* Opens connection number i (0-based) for a worker; desc names it in logs
 * ("TiDB 10.0.0.1:4000"). NULL with err set. */
typedef struct sqlx *(*tidb_open_fn)(void *arg, size_t i, char *desc, size_t desclen, char *err,
                                     size_t errlen);

struct tidb_read {
    tidb_open_fn open;
    void *open_arg;
    size_t nworkers;          /* connections; at most nchunks are used */
    const char *const *setup; /* statements run on each connection first */
    size_t nsetup;
    char *const *sqls; /* one query per chunk */
    size_t nchunks;
    size_t nfields;       /* values per row */
    size_t queue_batches; /* bound of the queue; 0: 2 per worker */
    source_log_fn log;
    void *log_arg;
};

/* Reads every chunk on r->nworkers threads and calls fn, on the calling
 * thread only and serially, for every row. Memory stays bounded: at most
 * queue_batches + nworkers + 1 batches of TIDB_BATCH_ROWS rows exist at once.
 * 0 when all rows were delivered; -1 when a chunk failed (err names it), fn
 * stopped (err untouched), or cancel became true ("cancelled"). */
int tidb_parallel_read(const struct tidb_read *r, source_row_fn fn, void *arg,
                       const atomic_bool *cancel, char *err, size_t errlen);

/* The whole read of a snapshot taken by tidb_snapshot_begin on x: plans the
 * chunks on x, reads them in parallel on connections from open (each first
 * set to the snapshot with TIDB_SQL_SNAPSHOT), and restores the GC life time
 * afterwards, whatever happened (see tidb_gc_restore_any). Returns as
 * tidb_parallel_read. */
int tidb_read_snapshot(struct sqlx *x, tidb_open_fn open, void *open_arg, const char *db,
                       const char *table, const struct tis_schema *sc, uint64_t est_rows,
                       struct tidb_snapshot *snap, source_row_fn fn, void *arg,
                       const atomic_bool *cancel, source_log_fn log, void *log_arg, char *err,
                       size_t errlen);

/* The GC life times this daemon owes to clusters (extended by dumps that
 * have not restored them yet), as JSON, handed to fn whenever they change,
 * so that a daemon killed mid-dump can be told at its restart: with
 * tidb_gc_leases_load, the next dump of such a cluster restores the value
 * the killed one found, instead of taking the extended one for the
 * cluster's own. */
typedef void (*tidb_gc_persist_fn)(void *arg, const char *json);
void tidb_gc_set_persist(tidb_gc_persist_fn fn, void *arg);
/* Loads what tidb_gc_set_persist's fn was last given; returns how many
 * clusters are owed a restore (each logged by the caller). */
size_t tidb_gc_leases_load(const char *json);
/* Forgets every lease (tests: a restart of the process). */
void tidb_gc_leases_reset(void);

/* tidb_gc_restore on x, or, when that fails (the connection may be gone),
 * on a fresh connection from open; when both fail the log says how to set it
 * back by hand. No-op when nothing is owed. */
void tidb_gc_restore_any(struct sqlx *x, tidb_open_fn open, void *open_arg,
                         struct tidb_snapshot *snap, source_log_fn log, void *log_arg);

#endif
