/* tidb_chunks — SQL text (identifiers, literals safe in any sql_mode) and
 * chunk planning over the primary key (see include/tisfs/source_tidb.h). */
#define _GNU_SOURCE
#include "tisfs/source_tidb.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tisfs/tidb_sql.h"

/* ---- SQL text ---- */

void tidb_add_ident(struct tbuf *b, const char *name)
{
    tbuf_add(b, "`", 1);
    for (const char *p = name; *p; p++) {
        if (*p == '`')
            tbuf_add(b, "`", 1);
        tbuf_add(b, p, 1);
    }
    tbuf_add(b, "`", 1);
}

static bool plain_number(const char *v, size_t len)
{
    size_t i = 0;
    if (i < len && v[i] == '-')
        i++;
    size_t d = i;
    while (i < len && v[i] >= '0' && v[i] <= '9')
        i++;
    if (i == d)
        return false;
    if (i < len && v[i] == '.') {
        size_t f = ++i;
        while (i < len && v[i] >= '0' && v[i] <= '9')
            i++;
        if (i == f)
            return false;
    }
    if (i < len && (v[i] == 'e' || v[i] == 'E')) {
        i++;
        if (i < len && (v[i] == '+' || v[i] == '-'))
            i++;
        size_t e = i;
        while (i < len && v[i] >= '0' && v[i] <= '9')
            i++;
        if (i == e)
            return false;
    }
    return i == len;
}

void tidb_add_literal(struct tbuf *b, enum tis_vtype vt, const char *v, size_t len)
{
    switch (vt) {
    case VT_INT:
    case VT_UINT:
    case VT_FLOAT:
    case VT_DECIMAL:
    case VT_YEAR:
        if (plain_number(v, len)) {
            tbuf_add(b, v, len);
            return;
        }
        break;
    case VT_BINARY:
    case VT_BIT:
        tbuf_adds(b, "X'");
        for (size_t i = 0; i < len; i++)
            tbuf_printf(b, "%02X", (unsigned char)v[i]);
        tbuf_adds(b, "'");
        return;
    default:
        break;
    }
    /* Text as a hex literal with a character set introducer: nothing in
     * it is ever read as SQL whatever the server's sql_mode (backslash
     * escaping is wrong under NO_BACKSLASH_ESCAPES), and as a literal
     * (coercibility 4) it compares in the column's own collation. */
    tbuf_adds(b, "_utf8mb4 X'");
    for (size_t i = 0; i < len; i++)
        tbuf_printf(b, "%02X", (unsigned char)v[i]);
    tbuf_add(b, "'", 1);
}

void tidb_select_sql(struct tbuf *b, const char *db, const char *table,
                     const struct tis_schema *sc, const char *where)
{
    tbuf_adds(b, "SELECT ");
    for (size_t i = 0; i < sc->nfields; i++) {
        if (i)
            tbuf_adds(b, ", ");
        tidb_add_ident(b, sc->fields[i].name);
    }
    tbuf_adds(b, " FROM ");
    tidb_add_ident(b, db);
    tbuf_adds(b, ".");
    tidb_add_ident(b, table);
    if (where) {
        tbuf_adds(b, " WHERE ");
        tbuf_adds(b, where);
    }
}

/* ---- chunk boundaries ---- */

void tidb_bounds_add(struct tidb_bounds *b, const char *const *vals, const size_t *lens)
{
    b->vals = xrealloc(b->vals, (b->n + 1) * b->npk * sizeof *b->vals);
    b->lens = xrealloc(b->lens, (b->n + 1) * b->npk * sizeof *b->lens);
    for (size_t k = 0; k < b->npk; k++) {
        b->vals[b->n * b->npk + k] = xstrndup(vals[k], lens[k]);
        b->lens[b->n * b->npk + k] = lens[k];
    }
    b->n++;
}

void tidb_bounds_free(struct tidb_bounds *b)
{
    for (size_t i = 0; i < b->n * b->npk; i++)
        free(b->vals[i]);
    free(b->vals);
    free(b->lens);
    b->vals = NULL;
    b->lens = NULL;
    b->n = 0;
}

void tidb_bounds_thin(struct tidb_bounds *b, size_t max)
{
    if (b->n <= max)
        return;
    /* Keep the boundaries nearest to n*j/(max+1), j = 1..max. */
    size_t n = b->n, keep = 0;
    for (size_t j = 1; j <= max; j++) {
        size_t src = (size_t)((double)n * (double)j / (double)(max + 1));
        if (src >= n)
            src = n - 1;
        for (size_t k = 0; k < b->npk; k++) {
            char *v = b->vals[src * b->npk + k];
            size_t l = b->lens[src * b->npk + k];
            /* src >= keep, and later sources lie beyond src. */
            b->vals[src * b->npk + k] = NULL;
            free(b->vals[keep * b->npk + k]);
            b->vals[keep * b->npk + k] = v;
            b->lens[keep * b->npk + k] = l;
        }
        keep++;
    }
    for (size_t i = keep * b->npk; i < n * b->npk; i++)
        free(b->vals[i]);
    b->n = keep;
}

/* One side of a composite-key range: every row whose key is >= (ge) or <
 * (lt) the boundary k. */
static void add_key_cmp(struct tbuf *w, const struct tis_schema *sc, const struct tidb_bounds *b,
                        size_t k, bool ge)
{
    size_t npk = sc->npk;
    tbuf_adds(w, "(");
    for (size_t i = 0; i < npk; i++) {
        if (i)
            tbuf_adds(w, " OR ");
        if (npk > 1 && i > 0)
            tbuf_adds(w, "(");
        for (size_t j = 0; j <= i; j++) {
            const struct tis_field *f = &sc->fields[sc->pk[j]];
            if (j)
                tbuf_adds(w, " AND ");
            tidb_add_ident(w, f->name);
            if (j < i)
                tbuf_adds(w, " = ");
            else if (i + 1 < npk)
                tbuf_adds(w, ge ? " > " : " < ");
            else
                tbuf_adds(w, ge ? " >= " : " < ");
            tidb_add_literal(w, f->vt, b->vals[k * b->npk + j], b->lens[k * b->npk + j]);
        }
        if (npk > 1 && i > 0)
            tbuf_adds(w, ")");
    }
    tbuf_adds(w, ")");
}

char *tidb_chunk_where(const struct tis_schema *sc, const struct tidb_bounds *b, size_t i)
{
    if (b->n == 0 || i > b->n)
        return NULL;
    struct tbuf w = {0};
    if (i > 0)
        add_key_cmp(&w, sc, b, i - 1, true);
    if (i > 0 && i < b->n)
        tbuf_adds(&w, " AND ");
    if (i < b->n)
        add_key_cmp(&w, sc, b, i, false);
    return tbuf_take(&w);
}

#define SIGN_FLIP 0x8000000000000000ull

void tidb_int_bounds(bool is_unsigned, const char *min, const char *max, size_t n,
                     struct tidb_bounds *out)
{
    *out = (struct tidb_bounds){.npk = 1};
    uint64_t lo, hi;
    char *e1, *e2;
    errno = 0;
    if (is_unsigned) {
        lo = strtoull(min, &e1, 10);
        hi = strtoull(max, &e2, 10);
    } else {
        lo = (uint64_t)strtoll(min, &e1, 10) ^ SIGN_FLIP;
        hi = (uint64_t)strtoll(max, &e2, 10) ^ SIGN_FLIP;
    }
    if (errno || *e1 || *e2 || e1 == min || e2 == max || hi <= lo || n < 2)
        return;
    uint64_t span = hi - lo, width = span / n;
    if (width == 0)
        width = 1;
    for (size_t k = 1; k < n; k++) {
        if ((uint64_t)k > span / width)
            break;
        uint64_t v = lo + (uint64_t)k * width;
        if (v > hi)
            break;
        char buf[32];
        if (is_unsigned)
            snprintf(buf, sizeof buf, "%" PRIu64, v);
        else
            snprintf(buf, sizeof buf, "%" PRId64, (int64_t)(v ^ SIGN_FLIP));
        const char *vals[1] = {buf};
        size_t lens[1] = {strlen(buf)};
        tidb_bounds_add(out, vals, lens);
    }
}

static void pk_list(struct tbuf *b, const struct tis_schema *sc)
{
    for (size_t k = 0; k < sc->npk; k++) {
        if (k)
            tbuf_adds(b, ", ");
        tidb_add_ident(b, sc->fields[sc->pk[k]].name);
    }
}

static bool same_key(const struct tidb_bounds *b, size_t i, const char *const *v,
                     const size_t *l)
{
    for (size_t k = 0; k < b->npk; k++)
        if (b->lens[i * b->npk + k] != l[k] || memcmp(b->vals[i * b->npk + k], v[k], l[k]))
            return false;
    return true;
}

/* Boundaries from TABLESAMPLE REGIONS(); -1 when TiDB cannot sample. */
static int sample_regions(struct sqlx *x, const char *qtable, const struct tis_schema *sc,
                          struct tidb_bounds *b, size_t *regions, char *err, size_t errlen)
{
    struct tbuf cols = {0}, q = {0};
    pk_list(&cols, sc);
    tbuf_printf(&q, TIDB_SQL_REGION_SAMPLE, cols.data, qtable, cols.data);
    struct sql_result r = {0};
    int rc = x->exec(x, q.data, &r, err, errlen);
    tbuf_free(&cols);
    tbuf_free(&q);
    if (rc)
        return -1;
    *regions = r.nrows;
    const char **v = xcalloc(sc->npk, sizeof *v);
    size_t *l = xcalloc(sc->npk, sizeof *l);
    /* The first sample is the table's first row: no boundary before it. */
    for (size_t row = 1; row < r.nrows; row++) {
        bool null = false;
        for (size_t k = 0; k < sc->npk && k < r.ncols; k++) {
            v[k] = sql_cell(&r, row, k);
            null |= !v[k];
            l[k] = v[k] ? strlen(v[k]) : 0;
        }
        if (null || r.ncols < sc->npk || (b->n && same_key(b, b->n - 1, v, l)))
            continue;
        tidb_bounds_add(b, v, l);
    }
    free(v);
    free(l);
    sql_result_free(&r);
    return 0;
}

int tidb_plan_chunks(struct sqlx *x, const char *db, const char *table,
                     const struct tis_schema *sc, uint64_t est_rows, char ***sqls,
                     size_t *nchunks, source_log_fn log, void *log_arg, char *err,
                     size_t errlen)
{
    struct tidb_bounds b = {.npk = sc->npk};
    struct tbuf qt = {0};
    tidb_add_ident(&qt, db);
    tbuf_adds(&qt, ".");
    tidb_add_ident(&qt, table);
    char e[512] = "";
    size_t regions = 0;
    if (sample_regions(x, qt.data, sc, &b, &regions, e, sizeof e) == 0) {
        tidb_bounds_thin(&b, TIDB_MAX_CHUNKS - 1);
        source_logf(log, log_arg,
                    "chunk boundaries from TABLESAMPLE REGIONS(): %zu regions, %zu chunks", regions,
                    b.n + 1);
    } else {
        const struct tis_field *f = sc->npk == 1 ? &sc->fields[sc->pk[0]] : NULL;
        if (f && (f->vt == VT_INT || f->vt == VT_UINT)) {
            struct tbuf q = {0};
            tbuf_adds(&q, "SELECT MIN(");
            tidb_add_ident(&q, f->name);
            tbuf_adds(&q, "), MAX(");
            tidb_add_ident(&q, f->name);
            tbuf_printf(&q, ") FROM %s", qt.data);
            struct sql_result r = {0};
            int rc = x->exec(x, q.data, &r, err, errlen);
            tbuf_free(&q);
            if (rc) {
                tbuf_free(&qt);
                return -1;
            }
            const char *mn = sql_cell(&r, 0, 0), *mx = sql_cell(&r, 0, 1);
            if (mn && mx) {
                uint64_t n = est_rows ? (est_rows + TIDB_CHUNK_ROWS - 1) / TIDB_CHUNK_ROWS : 1;
                if (n > TIDB_MAX_CHUNKS)
                    n = TIDB_MAX_CHUNKS;
                tidb_int_bounds(f->vt == VT_UINT, mn, mx, (size_t)n, &b);
            }
            source_logf(
                log, log_arg,
                "TABLESAMPLE REGIONS() unavailable (%s); %zu chunks from ranges of the integer "
                "key %s (%s..%s)",
                e, b.n + 1, f->name, mn ? mn : "NULL", mx ? mx : "NULL");
            sql_result_free(&r);
        } else {
            source_logf(
                log, log_arg,
                "TABLESAMPLE REGIONS() unavailable (%s) and the primary key is not one integer "
                "column: one chunk",
                e);
        }
    }
    *nchunks = b.n + 1;
    *sqls = xcalloc(*nchunks, sizeof **sqls);
    for (size_t i = 0; i < *nchunks; i++) {
        char *where = tidb_chunk_where(sc, &b, i);
        struct tbuf q = {0};
        tidb_select_sql(&q, db, table, sc, where);
        (*sqls)[i] = tbuf_take(&q);
        free(where);
    }
    tidb_bounds_free(&b);
    tbuf_free(&qt);
    return 0;
}
