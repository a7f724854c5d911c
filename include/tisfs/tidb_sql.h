/* tidb_sql — every SQL statement tisfs sends only to TiDB, in one place.
 *
 * No TiDB server runs in this project's tests: these statements are checked
 * only as recorded sequences against a fake executor (tests/unit/test_tidb.c).
 * Each is taken from TiDB's documentation and Dumpling's source (TiDB's own
 * dump tool, which does the same job); the TiDB versions they need are noted.
 * Where a statement may be missing on an older TiDB, source_tidb.c has a
 * fallback, named here too. Statements that any MySQL-protocol server runs
 * (information_schema, SELECT ... WHERE) are not listed. */
#ifndef TISFS_TIDB_SQL_H
#define TISFS_TIDB_SQL_H

/* Recognising TiDB: VERSION() reads like "8.0.11-TiDB-v7.5.0" (TiDB) or
 * "10.11.6-MariaDB-0+deb12u1" (not). Portable; listed since the decision
 * between the TiDB path and the fallback hangs on it. */
#define TIDB_SQL_VERSION "SELECT VERSION()"
#define TIDB_VERSION_MARK "TiDB"

/* The snapshot TSO. TiDB answers SHOW MASTER STATUS with one row whose
 * column Position is the current TSO (all versions; Dumpling's first
 * choice). MySQL/MariaDB answer a binlog position instead, which is why this
 * is asked only after VERSION() said TiDB. */
#define TIDB_SQL_TSO "SHOW MASTER STATUS"
#define TIDB_TSO_COLUMN "Position"

/* Fallback for the TSO: the start TSO of a fresh transaction (TiDB >= 2.1). */
#define TIDB_SQL_TSO_TXN_BEGIN "START TRANSACTION"
#define TIDB_SQL_TSO_TXN_READ "SELECT @@tidb_current_ts"
#define TIDB_SQL_TSO_TXN_END "ROLLBACK"

/* The GC safe point: versions older than it may already be gone, so the
 * snapshot TSO must be above it. Value like "20260124-10:00:00.123 +0800"
 * (Go's "20060102-15:04:05.000 -0700"). All versions. */
#define TIDB_SQL_GC_SAFE_POINT \
    "SELECT VARIABLE_VALUE FROM mysql.tidb WHERE VARIABLE_NAME = 'tikv_gc_safe_point'"

/* The GC life time, a Go duration ("10m0s"). A system variable since TiDB
 * 5.0; before, a row of mysql.tidb (the _TABLE forms, used when the variable
 * is unknown). Setting either needs SUPER or SYSTEM_VARIABLES_ADMIN. The
 * argument of the SET forms is a single-quoted Go duration (%s). */
#define TIDB_SQL_GC_LIFE_TIME_GET "SELECT @@GLOBAL.tidb_gc_life_time"
#define TIDB_SQL_GC_LIFE_TIME_SET "SET GLOBAL tidb_gc_life_time = '%s'"
#define TIDB_SQL_GC_LIFE_TIME_GET_TABLE \
    "SELECT VARIABLE_VALUE FROM mysql.tidb WHERE VARIABLE_NAME = 'tikv_gc_life_time'"
#define TIDB_SQL_GC_LIFE_TIME_SET_TABLE \
    "UPDATE mysql.tidb SET VARIABLE_VALUE = '%s' WHERE VARIABLE_NAME = 'tikv_gc_life_time'"

/* Reading at the snapshot: after this every read of the session sees the
 * data as of TSO %llu (the session becomes read-only). All versions. */
#define TIDB_SQL_SNAPSHOT "SET SESSION tidb_snapshot = '%llu'"

/* Chunk boundaries: the first row of each TiKV region of the table (TiDB >=
 * 5.0; an error before, when integer key ranges are used instead). Arguments:
 * the primary key column list, the qualified table, the same column list. */
#define TIDB_SQL_REGION_SAMPLE "SELECT %s FROM %s TABLESAMPLE REGIONS() ORDER BY %s"

#endif
