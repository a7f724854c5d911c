/* source_tidb — the TiDB snapshot sequence, chunk planning and the parallel
 * reader (see include/tisfs/source_tidb.h). TiDB-only statements come from
 * tidb_sql.h. */
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

/* ---- sql_result ---- */

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

/* ---- small helpers ---- */

bool tidb_is_tidb(const char *version)
{
    return version && strstr(version, TIDB_VERSION_MARK) != NULL;
}

double tidb_parse_duration(const char *s)
{
    if (!s)
        return -1;
    while (*s == ' ')
        s++;
    if (*s == '+')
        s++;
    if (strcmp(s, "0") == 0)
        return 0;
    if (!*s)
        return -1;
    double total = 0;
    while (*s) {
        if (!((*s >= '0' && *s <= '9') || *s == '.'))
            return -1;
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || errno || v < 0)
            return -1;
        s = end;
        static const struct {
            const char *unit;
            double secs;
        } units[] = {{"ns", 1e-9}, {"us", 1e-6}, {"\xc2\xb5s", 1e-6}, {"\xce\xbcs", 1e-6},
                     {"ms", 1e-3}, {"s", 1},     {"m", 60},           {"h", 3600}};
        size_t i = 0, n = sizeof units / sizeof units[0];
        /* Longest match first: "ms" before "m". */
        for (; i < n; i++) {
            size_t l = strlen(units[i].unit);
            if (strncmp(s, units[i].unit, l) == 0 && !(l == 1 && s[0] == 'm' && s[1] == 's'))
                break;
        }
        if (i == n)
            return -1;
        total += v * units[i].secs;
        s += strlen(units[i].unit);
    }
    return total;
}

int64_t tidb_parse_safe_point(const char *s)
{
    if (!s)
        return -1;
    int Y, M, D, h, m, sec, n = 0;
    if (sscanf(s, "%4d%2d%2d-%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) != 6 || n != 17)
        return -1;
    const char *p = s + n;
    int64_t ms = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        for (; digits < 3; digits++)
            ms *= 10;
    }
    int off = 0;
    while (*p == ' ')
        p++;
    if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d%2d", &hh, &mm) != 2)
            return -1;
        off = (hh * 60 + mm) * 60 * (*p == '-' ? -1 : 1);
    } else if (*p) {
        return -1;
    }
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return -1;
    struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h,
                    .tm_min = m, .tm_sec = sec};
    time_t t = timegm(&tm);
    return ((int64_t)t - off) * 1000 + ms;
}

void tidb_tso_time(uint64_t tso, char *buf)
{
    uint64_t ms = tidb_tso_ms(tso);
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char day[24];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, 32, "%.20s.%03dZ", day, (int)(ms % 1000));
}

/* ---- snapshot sequence ---- */

void tidb_snapshot_clear(struct tidb_snapshot *snap)
{
    free(snap->safe_point);
    free(snap->gc_was);
    memset(snap, 0, sizeof *snap);
}

/* Runs a query expected to return one value; its text (malloc'd) or NULL
 * with err set (also when it returned no row). */
static char *query_one(struct sqlx *x, const char *sql, const char *col, char *err, size_t errlen)
{
    struct sql_result r = {0};
    if (x->exec(x, sql, &r, err, errlen))
        return NULL;
    const char *v = col ? sql_cell_named(&r, 0, col) : sql_cell(&r, 0, 0);
    char *out = v ? xstrdup(v) : NULL;
    if (!out)
        snprintf(err, errlen, "%s returned no value", sql);
    sql_result_free(&r);
    return out;
}

static int set_gc_life_time(struct sqlx *x, bool via_table, const char *value, char *err,
                            size_t errlen)
{
    char sql[256];
    snprintf(sql, sizeof sql, via_table ? TIDB_SQL_GC_LIFE_TIME_SET_TABLE : TIDB_SQL_GC_LIFE_TIME_SET,
             value);
    return x->exec(x, sql, NULL, err, errlen);
}

/* The GC life time now; *via_table says where it was found. */
static char *get_gc_life_time(struct sqlx *x, bool *via_table, char *err, size_t errlen)
{
    char *v = query_one(x, TIDB_SQL_GC_LIFE_TIME_GET, NULL, err, errlen);
    *via_table = false;
    if (!v) {
        char err2[512];
        v = query_one(x, TIDB_SQL_GC_LIFE_TIME_GET_TABLE, NULL, err2, sizeof err2);
        if (v)
            *via_table = true;
        else {
            struct tbuf both = {0};
            tbuf_printf(&both, "%s; %s", err, err2);
            snprintf(err, errlen, "%s", both.data);
            tbuf_free(&both);
        }
    }
    return v;
}

static void extend_gc(struct sqlx *x, struct tidb_snapshot *snap, source_log_fn log,
                      void *log_arg)
{
    char err[512] = "";
    bool via_table;
    char *was = get_gc_life_time(x, &via_table, err, sizeof err);
    if (!was) {
        source_logf(
            log, log_arg,
            "WARNING: cannot read the GC life time (%s); not extending it: a dump longer than "
            "it may fail",
            err);
        return;
    }
    double secs = tidb_parse_duration(was), want = tidb_parse_duration(TIDB_DUMP_GC_LIFE_TIME);
    if (secs >= want) {
        source_logf(log, log_arg, "tidb_gc_life_time is %s: long enough for the dump, left as is",
                    was);
        free(was);
        return;
    }
    if (set_gc_life_time(x, via_table, TIDB_DUMP_GC_LIFE_TIME, err, sizeof err)) {
        source_logf(
            log, log_arg,
            "WARNING: cannot extend tidb_gc_life_time from %s to %s (%s): a dump longer than "
            "%s may fail",
            was, TIDB_DUMP_GC_LIFE_TIME, err, was);
        free(was);
        return;
    }
    snap->gc_was = was;
    snap->gc_changed = true;
    snap->gc_via_table = via_table;
    source_logf(log, log_arg,
                "extended tidb_gc_life_time from %s to %s for the dump (restored after it)", was,
                TIDB_DUMP_GC_LIFE_TIME);
}

static bool parse_tso(const char *v, uint64_t *tso)
{
    if (!v || !*v)
        return false;
    char *end;
    errno = 0;
    unsigned long long t = strtoull(v, &end, 10);
    if (errno || *end || t == 0 || v[0] == '-')
        return false;
    *tso = t;
    return true;
}

static int read_tso(struct sqlx *x, uint64_t *tso, source_log_fn log, void *log_arg, char *err,
                    size_t errlen)
{
    char e1[512] = "", e2[512] = "";
    char *v = query_one(x, TIDB_SQL_TSO, TIDB_TSO_COLUMN, e1, sizeof e1);
    bool ok = parse_tso(v, tso);
    if (v && !ok)
        snprintf(e1, sizeof e1, "%s: Position \"%s\" is not a TSO", TIDB_SQL_TSO, v);
    free(v);
    if (ok) {
        source_logf(log, log_arg, "snapshot TSO from %s", TIDB_SQL_TSO);
        return 0;
    }
    if (x->exec(x, TIDB_SQL_TSO_TXN_BEGIN, NULL, e2, sizeof e2) == 0) {
        v = query_one(x, TIDB_SQL_TSO_TXN_READ, NULL, e2, sizeof e2);
        ok = parse_tso(v, tso);
        if (v && !ok)
            snprintf(e2, sizeof e2, "%s: \"%s\" is not a TSO", TIDB_SQL_TSO_TXN_READ, v);
        free(v);
        char e3[256];
        x->exec(x, TIDB_SQL_TSO_TXN_END, NULL, e3, sizeof e3);
    }
    if (ok) {
        source_logf(log, log_arg, "snapshot TSO from %s (%s failed: %s)", TIDB_SQL_TSO_TXN_READ,
                    TIDB_SQL_TSO, e1);
        return 0;
    }
    snprintf(err, errlen, "cannot read the snapshot TSO: %s; %s", e1, e2);
    return -1;
}

int tidb_snapshot_begin(struct sqlx *x, struct tidb_snapshot *snap, source_log_fn log,
                        void *log_arg, char *err, size_t errlen)
{
    memset(snap, 0, sizeof *snap);
    /* Extend first, then take the TSO: GC can then never pass the TSO
     * between the two steps. */
    extend_gc(x, snap, log, log_arg);
    if (read_tso(x, &snap->tso, log, log_arg, err, errlen))
        goto fail;
    char when[32], e[512];
    tidb_tso_time(snap->tso, when);
    snap->safe_point = query_one(x, TIDB_SQL_GC_SAFE_POINT, NULL, e, sizeof e);
    int64_t sp = tidb_parse_safe_point(snap->safe_point);
    if (sp < 0) {
        source_logf(log, log_arg, "WARNING: cannot read the GC safe point (%s); not checked",
                    snap->safe_point ? snap->safe_point : e);
    } else if ((int64_t)tidb_tso_ms(snap->tso) <= sp) {
        snprintf(err, errlen,
                 "snapshot TSO %" PRIu64 " (%s) is not above the GC safe point %s: the data of "
                 "that time is garbage-collected",
                 snap->tso, when, snap->safe_point);
        goto fail;
    }
    source_logf(log, log_arg, "snapshot TSO %" PRIu64 " (%s), above the GC safe point %s",
                snap->tso, when, snap->safe_point ? snap->safe_point : "(unknown)");
    return 0;
fail:;
    char rerr[512];
    if (tidb_gc_restore(x, snap, log, log_arg, rerr, sizeof rerr))
        source_logf(log, log_arg,
                    "WARNING: cannot restore tidb_gc_life_time to %s (%s); set it by "
                    "hand: " TIDB_SQL_GC_LIFE_TIME_SET,
                    snap->gc_was, rerr, snap->gc_was);
    tidb_snapshot_clear(snap);
    return -1;
}

int tidb_gc_restore(struct sqlx *x, struct tidb_snapshot *snap, source_log_fn log,
                    void *log_arg, char *err, size_t errlen)
{
    if (!snap->gc_changed)
        return 0;
    bool via_table;
    char *now = get_gc_life_time(x, &via_table, err, errlen);
    if (!now)
        return -1;
    if (tidb_parse_duration(now) != tidb_parse_duration(TIDB_DUMP_GC_LIFE_TIME)) {
        source_logf(log, log_arg,
                    "tidb_gc_life_time is %s now, not the %s set for the dump: someone changed it "
                    "meanwhile, left as is",
                    now, TIDB_DUMP_GC_LIFE_TIME);
        free(now);
        snap->gc_changed = false;
        return 0;
    }
    free(now);
    if (set_gc_life_time(x, snap->gc_via_table, snap->gc_was, err, errlen))
        return -1;
    snap->gc_changed = false;
    source_logf(log, log_arg, "restored tidb_gc_life_time to %s", snap->gc_was);
    return 0;
}

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

/* ---- parallel reader ---- */

struct vref {
    size_t off, len;
    bool null;
};

/* Rows (or one log line, msg) handed from a worker to the caller. */
struct batch {
    struct batch *next;
    size_t nrows;
    struct tbuf data;
    struct vref *v;
    size_t vlen, vcap;
    char *msg;
};

struct par;

struct worker {
    struct par *p;
    size_t idx;
    pthread_t th;
    bool started;
    pthread_mutex_t mu; /* guards x against abort from the caller */
    struct sqlx *x;
    struct batch *cur;
    uint64_t chunk_rows;
    char desc[128];
};

struct par {
    const struct tidb_read *r;
    pthread_mutex_t mu;
    pthread_cond_t can_pop, can_push;
    struct batch *head, *tail;
    size_t count, cap;
    size_t live;       /* workers still running */
    size_t next_chunk; /* the next chunk to hand out */
    atomic_bool stop;
    bool failed;
    char err[1024];
};

static void batch_free(struct batch *b)
{
    if (!b)
        return;
    tbuf_free(&b->data);
    free(b->v);
    free(b->msg);
    free(b);
}

/* Queues b; blocks while the queue is full. Frees b when stopping. */
static void push(struct par *p, struct batch *b)
{
    pthread_mutex_lock(&p->mu);
    while (p->count >= p->cap && !atomic_load(&p->stop))
        pthread_cond_wait(&p->can_push, &p->mu);
    if (atomic_load(&p->stop)) {
        pthread_mutex_unlock(&p->mu);
        batch_free(b);
        return;
    }
    if (p->tail)
        p->tail->next = b;
    else
        p->head = b;
    p->tail = b;
    p->count++;
    pthread_cond_signal(&p->can_pop);
    pthread_mutex_unlock(&p->mu);
}

static void push_msg(struct par *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void push_msg(struct par *p, const char *fmt, ...)
{
    struct batch *b = xcalloc(1, sizeof *b);
    struct tbuf t = {0};
    va_list ap;
    va_start(ap, fmt);
    tbuf_vprintf(&t, fmt, ap);
    va_end(ap);
    b->msg = tbuf_take(&t);
    push(p, b);
}

/* Records the first failure and stops everything. Failures after a stop
 * (connections cut on purpose) are not causes. */
static void fail(struct par *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct par *p, const char *fmt, ...)
{
    pthread_mutex_lock(&p->mu);
    if (!atomic_load(&p->stop)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err, sizeof p->err, fmt, ap);
        va_end(ap);
        p->failed = true;
        atomic_store(&p->stop, true);
        pthread_cond_broadcast(&p->can_pop);
        pthread_cond_broadcast(&p->can_push);
    }
    pthread_mutex_unlock(&p->mu);
}

static int worker_row(void *arg, const struct tis_value *vals, size_t n)
{
    struct worker *w = arg;
    struct par *p = w->p;
    if (atomic_load(&p->stop))
        return 1;
    if (!w->cur)
        w->cur = xcalloc(1, sizeof *w->cur);
    struct batch *b = w->cur;
    size_t nf = p->r->nfields;
    if (b->vlen + nf > b->vcap) {
        b->vcap = b->vcap ? 2 * b->vcap : nf * 64;
        while (b->vcap < b->vlen + nf)
            b->vcap *= 2;
        b->v = xrealloc(b->v, b->vcap * sizeof *b->v);
    }
    for (size_t i = 0; i < nf; i++) {
        bool has = i < n && !vals[i].null;
        b->v[b->vlen++] = (struct vref){b->data.len, has ? vals[i].len : 0, !has};
        if (has)
            tbuf_add(&b->data, vals[i].p, vals[i].len);
    }
    b->nrows++;
    w->chunk_rows++;
    if (b->nrows >= TIDB_BATCH_ROWS || b->data.len >= TIDB_BATCH_BYTES) {
        w->cur = NULL;
        push(p, b);
    }
    return atomic_load(&p->stop) ? 1 : 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct par *p = w->p;
    const struct tidb_read *r = p->r;
    char err[1024] = "";
    struct sqlx *x = r->open(r->open_arg, w->idx, w->desc, sizeof w->desc, err, sizeof err);
    if (!x) {
        fail(p, "connection %zu: %s", w->idx + 1, err);
        goto out;
    }
    pthread_mutex_lock(&w->mu);
    w->x = x;
    pthread_mutex_unlock(&w->mu);
    push_msg(p, "connection %zu: %s", w->idx + 1, w->desc);
    for (size_t i = 0; i < r->nsetup && !atomic_load(&p->stop); i++)
        if (x->exec(x, r->setup[i], NULL, err, sizeof err)) {
            fail(p, "connection %zu (%s): %s: %s", w->idx + 1, w->desc, r->setup[i], err);
            goto out;
        }
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t c = p->next_chunk;
        bool done = atomic_load(&p->stop) || c >= r->nchunks;
        if (!done)
            p->next_chunk++;
        pthread_mutex_unlock(&p->mu);
        if (done)
            break;
        double t0 = mono_now();
        w->chunk_rows = 0;
        int rc = x->stream(x, r->sqls[c], worker_row, w, err, sizeof err);
        if (rc < 0) {
            fail(p, "chunk %zu/%zu on %s: %s", c + 1, r->nchunks, w->desc, err);
            break;
        }
        if (rc > 0 || atomic_load(&p->stop))
            break;
        if (w->cur) {
            struct batch *b = w->cur;
            w->cur = NULL;
            push(p, b);
        }
        push_msg(p, "chunk %zu/%zu done: %" PRIu64 " rows in %.3f s on %s", c + 1, r->nchunks,
                 w->chunk_rows, mono_now() - t0, w->desc);
    }
out:
    batch_free(w->cur);
    w->cur = NULL;
    pthread_mutex_lock(&w->mu);
    w->x = NULL;
    pthread_mutex_unlock(&w->mu);
    if (x)
        x->close(x);
    pthread_mutex_lock(&p->mu);
    p->live--;
    pthread_cond_broadcast(&p->can_pop);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void stop_all(struct par *p, struct worker *ws, size_t n)
{
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->can_push);
    pthread_cond_broadcast(&p->can_pop);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&ws[i].mu);
        if (ws[i].x && ws[i].x->abort)
            ws[i].x->abort(ws[i].x);
        pthread_mutex_unlock(&ws[i].mu);
    }
}

int tidb_parallel_read(const struct tidb_read *r, source_row_fn fn, void *arg,
                       const atomic_bool *cancel, char *err, size_t errlen)
{
    struct par p = {.r = r};
    size_t nw = r->nworkers ? r->nworkers : 1;
    if (nw > r->nchunks)
        nw = r->nchunks;
    if (nw == 0)
        return 0;
    p.cap = r->queue_batches ? r->queue_batches : 2 * nw;
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.can_pop, NULL);
    pthread_cond_init(&p.can_push, NULL);
    atomic_init(&p.stop, false);
    struct worker *ws = xcalloc(nw, sizeof *ws);
    p.live = nw;
    for (size_t i = 0; i < nw; i++) {
        ws[i].p = &p;
        ws[i].idx = i;
        pthread_mutex_init(&ws[i].mu, NULL);
        snprintf(ws[i].desc, sizeof ws[i].desc, "connection %zu", i + 1);
    }
    for (size_t i = 0; i < nw; i++) {
        if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) == 0) {
            ws[i].started = true;
        } else {
            pthread_mutex_lock(&p.mu);
            p.live--;
            pthread_mutex_unlock(&p.mu);
            fail(&p, "cannot start reader thread %zu", i + 1);
        }
    }
    source_logf(r->log, r->log_arg, "reading %zu chunks over %zu connections", r->nchunks, nw);

    bool cancelled = false, fn_stopped = false;
    struct tis_value *vals = xcalloc(r->nfields ? r->nfields : 1, sizeof *vals);
    for (;;) {
        pthread_mutex_lock(&p.mu);
        while (!p.head && p.live > 0 && !atomic_load(&p.stop)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&p.can_pop, &p.mu, &ts);
            if (cancel && atomic_load(cancel))
                break;
        }
        struct batch *b = NULL;
        bool end = atomic_load(&p.stop) || (!p.head && p.live == 0);
        if (!end && p.head) {
            b = p.head;
            p.head = b->next;
            if (!p.head)
                p.tail = NULL;
            p.count--;
            pthread_cond_signal(&p.can_push);
        }
        pthread_mutex_unlock(&p.mu);
        if (cancel && atomic_load(cancel)) {
            batch_free(b);
            cancelled = true;
            break;
        }
        if (end)
            break;
        if (!b)
            continue;
        if (b->msg) {
            source_logf(r->log, r->log_arg, "%s", b->msg);
        } else {
            for (size_t row = 0; row < b->nrows && !fn_stopped; row++) {
                for (size_t i = 0; i < r->nfields; i++) {
                    const struct vref *v = &b->v[row * r->nfields + i];
                    vals[i] = (struct tis_value){b->data.data + v->off, v->len, v->null};
                }
                if (fn(arg, vals))
                    fn_stopped = true;
            }
        }
        batch_free(b);
        if (fn_stopped)
            break;
    }
    free(vals);
    stop_all(&p, ws, nw);
    for (size_t i = 0; i < nw; i++)
        if (ws[i].started)
            pthread_join(ws[i].th, NULL);
    while (p.head) {
        struct batch *b = p.head;
        p.head = b->next;
        batch_free(b);
    }
    int rc = 0;
    if (p.failed) {
        snprintf(err, errlen, "%s", p.err);
        rc = -1;
    } else if (cancelled) {
        snprintf(err, errlen, "cancelled");
        rc = -1;
    } else if (fn_stopped) {
        rc = -1;
    }
    for (size_t i = 0; i < nw; i++)
        pthread_mutex_destroy(&ws[i].mu);
    free(ws);
    pthread_cond_destroy(&p.can_pop);
    pthread_cond_destroy(&p.can_push);
    pthread_mutex_destroy(&p.mu);
    return rc;
}

/* ---- the whole read ---- */

void tidb_gc_restore_any(struct sqlx *x, tidb_open_fn open, void *open_arg,
                         struct tidb_snapshot *snap, source_log_fn log, void *log_arg)
{
    if (!snap->gc_changed)
        return;
    char err[1024] = "", err2[1024] = "", desc[256];
    if (x && tidb_gc_restore(x, snap, log, log_arg, err, sizeof err) == 0)
        return;
    struct sqlx *y = open ? open(open_arg, 0, desc, sizeof desc, err2, sizeof err2) : NULL;
    if (y && tidb_gc_restore(y, snap, log, log_arg, err2, sizeof err2) == 0) {
        y->close(y);
        return;
    }
    if (y)
        y->close(y);
    source_logf(log, log_arg,
                "WARNING: cannot restore tidb_gc_life_time to %s (%s; %s); set it by "
                "hand: " TIDB_SQL_GC_LIFE_TIME_SET,
                snap->gc_was, err, err2, snap->gc_was);
    snap->gc_changed = false;
}

int tidb_read_snapshot(struct sqlx *x, tidb_open_fn open, void *open_arg, const char *db,
                       const char *table, const struct tis_schema *sc, uint64_t est_rows,
                       struct tidb_snapshot *snap, source_row_fn fn, void *arg,
                       const atomic_bool *cancel, source_log_fn log, void *log_arg, char *err,
                       size_t errlen)
{
    char **sqls = NULL;
    size_t n = 0;
    int rc = tidb_plan_chunks(x, db, table, sc, est_rows, &sqls, &n, log, log_arg, err, errlen);
    if (rc == 0) {
        char setup[128];
        snprintf(setup, sizeof setup, TIDB_SQL_SNAPSHOT, (unsigned long long)snap->tso);
        const char *const setups[] = {setup};
        struct tidb_read r = {
            .open = open,
            .open_arg = open_arg,
            .nworkers = TIDB_DUMP_CONNECTIONS,
            .setup = setups,
            .nsetup = 1,
            .sqls = sqls,
            .nchunks = n,
            .nfields = sc->nfields,
            .log = log,
            .log_arg = log_arg,
        };
        source_logf(log, log_arg, "reading at TSO %" PRIu64 ": %zu chunks", snap->tso, n);
        rc = tidb_parallel_read(&r, fn, arg, cancel, err, errlen);
    }
    for (size_t i = 0; i < n; i++)
        free(sqls[i]);
    free(sqls);
    /* The index build that follows may take long: give GC its time back now. */
    tidb_gc_restore_any(x, open, open_arg, snap, log, log_arg);
    return rc;
}
