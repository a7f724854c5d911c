/* sqlx — a small SQL execution interface.
 *
 * The TiDB snapshot logic (source_tidb.c) talks to servers only through this
 * interface, so that its exact statement sequences (GC life time extended and
 * restored, snapshot TSO, chunk boundaries) can be unit-tested by recording
 * statements against a fake executor, since no TiDB server runs in the tests.
 * The real implementation over libmariadb lives in source_mysql.c. */
#ifndef TISFS_SQLX_H
#define TISFS_SQLX_H

#include <stdbool.h>
#include <stddef.h>

#include "tisfs/schema.h"

/* A small, fully buffered result: nrows x ncols cells of text, NULL for SQL
 * NULL. Only for control queries (one row, a few hundred at most). */
struct sql_result {
    size_t nrows, ncols;
    char **names; /* ncols column names */
    char **cells; /* row-major */
};

/* The cell at (row, col), NULL when out of range or SQL NULL. */
const char *sql_cell(const struct sql_result *r, size_t row, size_t col);
/* The cell at row of the column called name (case-insensitive). */
const char *sql_cell_named(const struct sql_result *r, size_t row, const char *name);
void sql_result_free(struct sql_result *r);

/* Called for each streamed row with its n values; non-zero stops. */
typedef int (*sqlx_row_fn)(void *arg, const struct tis_value *vals, size_t n);

struct sqlx {
    /* Runs one statement. When res is not NULL, the rows the statement
     * returns are stored there (zeroed when it returns none). 0, or -1 with
     * the server's message in err. */
    int (*exec)(struct sqlx *x, const char *sql, struct sql_result *res, char *err,
                size_t errlen);
    /* Runs a query and hands its rows one by one to fn without buffering the
     * result. 0 when every row was delivered, 1 when fn stopped (the
     * connection is then unusable), -1 on error (err set). */
    int (*stream)(struct sqlx *x, const char *sql, sqlx_row_fn fn, void *arg, char *err,
                  size_t errlen);
    /* May be called from another thread while stream or exec runs: makes them
     * return promptly (the connection is then unusable). May be NULL. */
    void (*abort)(struct sqlx *x);
    void (*close)(struct sqlx *x);
};

/* Opens a connection over libmariadb (source_mysql.c). NULL with err set. */
struct sqlx *sqlx_mysql_open(const char *host, int port, const char *user, const char *password,
                             const char *db, char *err, size_t errlen);
/* The server's version string of a connection made by sqlx_mysql_open. */
const char *sqlx_mysql_server_version(struct sqlx *x);

#endif
