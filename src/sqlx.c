/* sqlx — the helpers of a query's stored result (sqlx.h). */
#define _GNU_SOURCE
#include "tisfs/sqlx.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *sql_cell(const struct sql_result *r, size_t row, size_t col)
{
    if (!r || row >= r->nrows || col >= r->ncols)
        return NULL;
    return r->cells[row * r->ncols + col];
}

const char *sql_cell_named(const struct sql_result *r, size_t row, const char *name)
{
    for (size_t c = 0; r && c < r->ncols; c++)
        if (r->names[c] && strcasecmp(r->names[c], name) == 0)
            return sql_cell(r, row, c);
    return NULL;
}

void sql_result_free(struct sql_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ncols; i++)
        free(r->names ? r->names[i] : NULL);
    for (size_t i = 0; i < r->nrows * r->ncols; i++)
        free(r->cells ? r->cells[i] : NULL);
    free(r->names);
    free(r->cells);
    memset(r, 0, sizeof *r);
}
