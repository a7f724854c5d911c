/* Unit tests for source_tidb (src/source_tidb.c).
 *
 * Without arguments (meson test): parsing of Go durations, GC safe points and
 * TSOs; SQL literals; chunk boundaries and WHERE clauses for integer, string
 * and composite keys; the TiDB statement sequences (GC life time extended,
 * TSO, safe point check, restore after success and after failure) recorded
 * against a fake executor that models TiDB's state; and the parallel reader
 * (every row once, bounded memory, errors, cancel, the callback's stop).
 *
 * With --mysql HOST PORT USER PASSWORD DB (run by tests/test_tikv.py against
 * a real MariaDB): the WHERE clauses and the parallel reader on real
 * connections, checking that the chunks partition real tables, integer,
 * unsigned, string (quotes, backslashes, NUL, Unicode) and composite keys,
 * every row in exactly one chunk.
 *
 * Ends with "N passed, M failed". */
#define _GNU_SOURCE
#include "tisfs/source_tidb.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tisfs/tidb_sql.h"
#include "tisfs/util.h"
#include "check.h"

static struct tbuf logs;
static pthread_mutex_t logs_mu = PTHREAD_MUTEX_INITIALIZER;
static void collect_log(void *arg, const char *line)
{
    (void)arg;
    pthread_mutex_lock(&logs_mu);
    tbuf_printf(&logs, "%s\n", line);
    pthread_mutex_unlock(&logs_mu);
}

/* A schema of fields (name, vt), the first npk of which are the key. */
static struct tis_schema *schema(size_t npk, size_t n, const char *const *names,
                                 const enum tis_vtype *vts)
{
    struct tis_schema *sc = xcalloc(1, sizeof *sc);
    sc->fields = xcalloc(n, sizeof *sc->fields);
    sc->pk = xcalloc(npk, sizeof *sc->pk);
    for (size_t i = 0; i < n; i++) {
        sc->fields[i].name = xstrdup(names[i]);
        sc->fields[i].source_type = xstrdup("t");
        sc->fields[i].vt = vts[i];
        sc->fields[i].pk = i < npk;
    }
    sc->nfields = n;
    for (size_t k = 0; k < npk; k++)
        sc->pk[sc->npk++] = k;
    return sc;
}

/* ---- parsing ---- */

static void test_parsing(void)
{
    CHECK(tidb_is_tidb("5.7.25-TiDB-v7.5.0"));
    CHECK(tidb_is_tidb("8.0.11-TiDB-v8.1.0"));
    CHECK(!tidb_is_tidb("10.11.6-MariaDB-0+deb12u1"));
    CHECK(!tidb_is_tidb("8.0.36"));
    CHECK(!tidb_is_tidb(NULL));

    CHECK(tidb_parse_duration("10m0s") == 600);
    CHECK(tidb_parse_duration("10m") == 600);
    CHECK(tidb_parse_duration("24h") == 86400);
    CHECK(tidb_parse_duration("720h0m0s") == 720 * 3600);
    CHECK(tidb_parse_duration("1h30m") == 5400);
    CHECK(tidb_parse_duration("1.5h") == 5400);
    CHECK(tidb_parse_duration("500ms") == 0.5);
    CHECK(tidb_parse_duration("0") == 0);
    CHECK(tidb_parse_duration("") < 0);
    CHECK(tidb_parse_duration("10") < 0);
    CHECK(tidb_parse_duration("ten minutes") < 0);
    CHECK(tidb_parse_duration("-5m") < 0);
    CHECK(tidb_parse_duration("5x") < 0);
    CHECK(tidb_parse_duration(NULL) < 0);

    /* 2026-01-24 10:00:00.123 at +0800 is 02:00:00.123 UTC. */
    CHECK(tidb_parse_safe_point("20260124-10:00:00.123 +0800") == 1769220000123LL);
    CHECK(tidb_parse_safe_point("20260124-02:00:00 +0000") == 1769220000000LL);
    CHECK(tidb_parse_safe_point("20260123-21:00:00.5 -0500") == 1769220000500LL);
    CHECK(tidb_parse_safe_point("20260124-02:00:00") == 1769220000000LL);
    CHECK(tidb_parse_safe_point("yesterday") < 0);
    CHECK(tidb_parse_safe_point("2026-01-24 02:00:00") < 0);
    CHECK(tidb_parse_safe_point(NULL) < 0);

    /* TSO = physical ms << 18 | logical. */
    uint64_t tso = (1769220000123ULL << 18) | 7;
    CHECK(tidb_tso_ms(tso) == 1769220000123ULL);
    char buf[32];
    tidb_tso_time(tso, buf);
    CHECK_STR(buf, "2026-01-24T02:00:00.123Z");
}

/* ---- SQL text ---- */

static char *lit(enum tis_vtype vt, const char *v, size_t len)
{
    struct tbuf b = {0};
    tidb_add_literal(&b, vt, v, len);
    return tbuf_take(&b);
}

#define CHECK_LIT(vt, v, want)                          \
    do {                                                \
        char *l_ = lit((vt), (v), sizeof(v) - 1);       \
        CHECK_STR(l_, want);                            \
        free(l_);                                       \
    } while (0)

static void test_literals(void)
{
    CHECK_LIT(VT_INT, "42", "42");
    CHECK_LIT(VT_INT, "-9223372036854775808", "-9223372036854775808");
    CHECK_LIT(VT_UINT, "18446744073709551615", "18446744073709551615");
    CHECK_LIT(VT_DECIMAL, "-12.50", "-12.50");
    CHECK_LIT(VT_FLOAT, "1.5e-300", "1.5e-300");
    /* Not a number, and all text: a hex literal, never raw SQL, in any
     * sql_mode (NO_BACKSLASH_ESCAPES made backslash escaping injectable). */
    CHECK_LIT(VT_INT, "1 OR 1=1", "_utf8mb4 X'31204F5220313D31'");
    CHECK_LIT(VT_INT, "", "_utf8mb4 X''");
    CHECK_LIT(VT_STRING, "abc", "_utf8mb4 X'616263'");
    CHECK_LIT(VT_STRING, "m') UNION SELECT User, Password FROM mysql.user -- ",
              "_utf8mb4 X'6D272920554E494F4E2053454C45435420557365722C2050617373776F72642046524F4D"
              "206D7973716C2E75736572202D2D20'");
    CHECK_LIT(VT_STRING, "a\\b", "_utf8mb4 X'615C62'");
    CHECK_LIT(VT_STRING, "nul\0x", "_utf8mb4 X'6E756C0078'");
    CHECK_LIT(VT_STRING, "中文", "_utf8mb4 X'E4B8ADE69687'");
    CHECK_LIT(VT_DATETIME, "2026-01-24 10:00:00", "_utf8mb4 X'323032362D30312D32342031303A30303A3030'");
    CHECK_LIT(VT_BINARY, "\x00\xff" "a", "X'00FF61'");
    CHECK_LIT(VT_BINARY, "", "X''");

    struct tbuf b = {0};
    tidb_add_ident(&b, "we`ird");
    CHECK_STR(b.data, "`we``ird`");
    tbuf_free(&b);

    const char *names[] = {"id", "na`me"};
    enum tis_vtype vts[] = {VT_INT, VT_STRING};
    struct tis_schema *sc = schema(1, 2, names, vts);
    tidb_select_sql(&b, "db", "t", sc, NULL);
    CHECK_STR(b.data, "SELECT `id`, `na``me` FROM `db`.`t`");
    tbuf_reset(&b);
    tidb_select_sql(&b, "db", "t", sc, "(`id` < 5)");
    CHECK_STR(b.data, "SELECT `id`, `na``me` FROM `db`.`t` WHERE (`id` < 5)");
    tbuf_free(&b);
    schema_free(sc);
}

/* ---- chunk boundaries and WHERE clauses ---- */

static void add_bound(struct tidb_bounds *b, const char *v0, const char *v1, const char *v2)
{
    const char *v[3] = {v0, v1, v2};
    size_t l[3] = {v0 ? strlen(v0) : 0, v1 ? strlen(v1) : 0, v2 ? strlen(v2) : 0};
    tidb_bounds_add(b, v, l);
}

#define CHECK_WHERE(sc, b, i, want)                     \
    do {                                                \
        char *w_ = tidb_chunk_where((sc), (b), (i));    \
        CHECK_STR(w_, want);                            \
        free(w_);                                       \
    } while (0)

static void test_where(void)
{
    /* Integer key. */
    const char *n1[] = {"id", "v"};
    enum tis_vtype t1[] = {VT_INT, VT_STRING};
    struct tis_schema *sc = schema(1, 2, n1, t1);
    struct tidb_bounds b = {.npk = 1};
    CHECK(tidb_chunk_where(sc, &b, 0) == NULL); /* no boundaries: the whole table */
    add_bound(&b, "10", NULL, NULL);
    add_bound(&b, "20", NULL, NULL);
    CHECK_WHERE(sc, &b, 0, "(`id` < 10)");
    CHECK_WHERE(sc, &b, 1, "(`id` >= 10) AND (`id` < 20)");
    CHECK_WHERE(sc, &b, 2, "(`id` >= 20)");
    CHECK(tidb_chunk_where(sc, &b, 3) == NULL);
    tidb_bounds_free(&b);
    schema_free(sc);

    /* String key: quoted and escaped. */
    const char *n2[] = {"name"};
    enum tis_vtype t2[] = {VT_STRING};
    sc = schema(1, 1, n2, t2);
    b = (struct tidb_bounds){.npk = 1};
    add_bound(&b, "b'c", NULL, NULL);
    CHECK_WHERE(sc, &b, 0, "(`name` < _utf8mb4 X'622763')");
    CHECK_WHERE(sc, &b, 1, "(`name` >= _utf8mb4 X'622763')");
    tidb_bounds_free(&b);
    schema_free(sc);

    /* Composite key (a int, b string): lexicographic, expanded. */
    const char *n3[] = {"a", "b", "v"};
    enum tis_vtype t3[] = {VT_INT, VT_STRING, VT_STRING};
    sc = schema(2, 3, n3, t3);
    b = (struct tidb_bounds){.npk = 2};
    add_bound(&b, "1", "x", NULL);
    add_bound(&b, "2", "y", NULL);
    CHECK_WHERE(sc, &b, 0, "(`a` < 1 OR (`a` = 1 AND `b` < _utf8mb4 X'78'))");
    CHECK_WHERE(sc, &b, 1,
                "(`a` > 1 OR (`a` = 1 AND `b` >= _utf8mb4 X'78')) AND (`a` < 2 OR (`a` = 2 AND `b` < _utf8mb4 X'79'))");
    CHECK_WHERE(sc, &b, 2, "(`a` > 2 OR (`a` = 2 AND `b` >= _utf8mb4 X'79'))");
    tidb_bounds_free(&b);
    schema_free(sc);

    /* Three columns, binary last. */
    const char *n4[] = {"a", "b", "c"};
    enum tis_vtype t4[] = {VT_INT, VT_STRING, VT_BINARY};
    sc = schema(3, 3, n4, t4);
    b = (struct tidb_bounds){.npk = 3};
    add_bound(&b, "-1", "", "\x01");
    CHECK_WHERE(sc, &b, 1,
                "(`a` > -1 OR (`a` = -1 AND `b` > _utf8mb4 X'') OR (`a` = -1 AND `b` = _utf8mb4 X'' AND `c` >= "
                "X'01'))");
    CHECK_WHERE(sc, &b, 0,
                "(`a` < -1 OR (`a` = -1 AND `b` < _utf8mb4 X'') OR (`a` = -1 AND `b` = _utf8mb4 X'' AND `c` < "
                "X'01'))");
    tidb_bounds_free(&b);
    schema_free(sc);
}

static char *bound_text(const struct tidb_bounds *b)
{
    struct tbuf t = {0};
    for (size_t i = 0; i < b->n; i++)
        tbuf_printf(&t, "%s%s", i ? " " : "", b->vals[i]);
    return t.data ? tbuf_take(&t) : xstrdup("");
}

#define CHECK_BOUNDS(b, want)                   \
    do {                                        \
        char *t_ = bound_text(b);               \
        CHECK_STR(t_, want);                    \
        free(t_);                               \
    } while (0)

static void test_int_bounds(void)
{
    struct tidb_bounds b = {0};
    tidb_int_bounds(false, "-100", "100", 4, &b);
    CHECK_BOUNDS(&b, "-50 0 50");
    tidb_bounds_free(&b);
    tidb_int_bounds(false, "1", "1000", 1, &b);
    CHECK(b.n == 0);
    tidb_int_bounds(false, "7", "7", 8, &b);
    CHECK(b.n == 0);
    tidb_int_bounds(false, "1", "3", 8, &b); /* narrower than n: one per value */
    CHECK_BOUNDS(&b, "2 3");
    tidb_bounds_free(&b);
    tidb_int_bounds(false, "-9223372036854775808", "9223372036854775807", 2, &b);
    CHECK_BOUNDS(&b, "-1");
    tidb_bounds_free(&b);
    tidb_int_bounds(true, "0", "18446744073709551615", 4, &b);
    CHECK_BOUNDS(&b, "4611686018427387903 9223372036854775806 13835058055282163709");
    tidb_bounds_free(&b);
    tidb_int_bounds(false, "x", "5", 4, &b);
    CHECK(b.n == 0);

    /* Thinning keeps evenly spread, sorted boundaries and frees the rest. */
    b = (struct tidb_bounds){.npk = 1};
    for (int i = 0; i < 100; i++) {
        char v[16];
        snprintf(v, sizeof v, "%03d", i);
        add_bound(&b, v, NULL, NULL);
    }
    tidb_bounds_thin(&b, 4);
    CHECK_BOUNDS(&b, "020 040 060 080");
    tidb_bounds_thin(&b, 10);
    CHECK(b.n == 4);
    tidb_bounds_free(&b);
}

/* ---- a fake TiDB ---- */

/* The server's state, shared by every fake connection. */
struct model {
    char gc[64];         /* tidb_gc_life_time */
    bool gc_var_unknown; /* before TiDB 5.0: only the mysql.tidb row */
    bool gc_set_denied;  /* no SUPER */
    const char *tso;     /* SHOW MASTER STATUS Position; NULL: an error */
    const char *current_ts;
    const char *safe_point; /* NULL: an error */
    bool sample_ok;
    const char *samples[8];
    size_t nsamples;
    int64_t min, max; /* the table's integer keys: every value in [min, max] */
    const char *fail_in;   /* a stream whose SQL contains this fails */
    bool block;            /* streams block until aborted */
    bool one_column;       /* rows of one column where two were asked */
    atomic_bool *cancel_when_blocked;
    atomic_uint_fast64_t produced;
    bool main_dead; /* connection 0 fails every statement */
    bool open_fails;
    int next_id;
    pthread_mutex_t mu;
    struct tbuf stmts; /* "c<id>: <sql>\n" */
};

struct fake {
    struct sqlx x;
    struct model *m;
    int id;
    atomic_bool aborted;
};

static void record(struct fake *f, const char *sql)
{
    pthread_mutex_lock(&f->m->mu);
    tbuf_printf(&f->m->stmts, "c%d: %s\n", f->id, sql);
    pthread_mutex_unlock(&f->m->mu);
}

static void one(struct sql_result *res, const char *name, const char *v)
{
    if (!res)
        return;
    res->nrows = 1;
    res->ncols = 1;
    res->names = xcalloc(1, sizeof *res->names);
    res->cells = xcalloc(1, sizeof *res->cells);
    res->names[0] = xstrdup(name);
    res->cells[0] = v ? xstrdup(v) : NULL;
}

static bool quoted_arg(const char *sql, char *out, size_t n)
{
    const char *p = strstr(sql, "= '");
    if (!p)
        return false;
    p += 3;
    const char *q = strchr(p, '\'');
    if (!q || (size_t)(q - p) >= n)
        return false;
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = 0;
    return true;
}

static int fake_exec(struct sqlx *x, const char *sql, struct sql_result *res, char *err,
                     size_t errlen)
{
    struct fake *f = (struct fake *)x;
    struct model *m = f->m;
    record(f, sql);
    if (res)
        memset(res, 0, sizeof *res);
    char arg[64];
#define ERR(...) return snprintf(err, errlen, __VA_ARGS__), -1
    if (f->id == 0 && m->main_dead)
        ERR("Lost connection to server during query (MySQL error 2013)");
    if (strcmp(sql, TIDB_SQL_VERSION) == 0) {
        one(res, "VERSION()", "8.0.11-TiDB-v7.5.0");
    } else if (strcmp(sql, TIDB_SQL_GC_LIFE_TIME_GET) == 0) {
        if (m->gc_var_unknown)
            ERR("Unknown system variable 'tidb_gc_life_time' (MySQL error 1193)");
        one(res, "@@GLOBAL.tidb_gc_life_time", m->gc);
    } else if (strcmp(sql, TIDB_SQL_GC_LIFE_TIME_GET_TABLE) == 0) {
        one(res, "VARIABLE_VALUE", m->gc);
    } else if (strncmp(sql, "SET GLOBAL tidb_gc_life_time", 28) == 0 ||
               strncmp(sql, "UPDATE mysql.tidb SET VARIABLE_VALUE", 36) == 0) {
        if (sql[0] == 'S' && m->gc_var_unknown)
            ERR("Unknown system variable 'tidb_gc_life_time' (MySQL error 1193)");
        if (m->gc_set_denied)
            ERR("Access denied; you need (at least one of) the SUPER or "
                "SYSTEM_VARIABLES_ADMIN privilege(s) for this operation (MySQL error 1227)");
        if (!quoted_arg(sql, arg, sizeof arg))
            ERR("bad fake SET");
        snprintf(m->gc, sizeof m->gc, "%s", arg);
    } else if (strcmp(sql, TIDB_SQL_TSO) == 0) {
        if (!m->tso)
            ERR("Access denied; you need (at least one of) the SUPER, REPLICATION CLIENT "
                "privilege(s) (MySQL error 1227)");
        if (res) {
            static const char *const cols[] = {"File", "Position", "Binlog_Do_DB",
                                               "Binlog_Ignore_DB", "Executed_Gtid_Set"};
            res->nrows = 1;
            res->ncols = 5;
            res->names = xcalloc(5, sizeof *res->names);
            res->cells = xcalloc(5, sizeof *res->cells);
            for (int i = 0; i < 5; i++)
                res->names[i] = xstrdup(cols[i]);
            res->cells[0] = xstrdup("tidb-binlog");
            res->cells[1] = xstrdup(m->tso);
            res->cells[2] = xstrdup("");
            res->cells[3] = xstrdup("");
            res->cells[4] = xstrdup("");
        }
    } else if (strcmp(sql, TIDB_SQL_TSO_TXN_BEGIN) == 0 || strcmp(sql, TIDB_SQL_TSO_TXN_END) == 0) {
        /* fine */
    } else if (strcmp(sql, TIDB_SQL_TSO_TXN_READ) == 0) {
        if (!m->current_ts)
            ERR("Unknown system variable 'tidb_current_ts' (MySQL error 1193)");
        one(res, "@@tidb_current_ts", m->current_ts);
    } else if (strcmp(sql, TIDB_SQL_GC_SAFE_POINT) == 0) {
        if (!m->safe_point)
            ERR("SELECT command denied to user 'u'@'%%' for table 'tidb' (MySQL error 1142)");
        one(res, "VARIABLE_VALUE", m->safe_point);
    } else if (strncmp(sql, "SET SESSION tidb_snapshot = '", 29) == 0) {
        /* fine */
    } else if (strstr(sql, "TABLESAMPLE REGIONS()")) {
        if (!m->sample_ok)
            ERR("You have an error in your SQL syntax near 'REGIONS()' (MySQL error 1064)");
        if (res) {
            res->ncols = 1;
            res->nrows = m->nsamples;
            res->names = xcalloc(1, sizeof *res->names);
            res->names[0] = xstrdup("id");
            res->cells = xcalloc(m->nsamples, sizeof *res->cells);
            for (size_t i = 0; i < m->nsamples; i++)
                res->cells[i] = xstrdup(m->samples[i]);
        }
    } else if (strncmp(sql, "SELECT MIN(", 11) == 0) {
        if (res) {
            res->ncols = 2;
            res->nrows = 1;
            res->names = xcalloc(2, sizeof *res->names);
            res->cells = xcalloc(2, sizeof *res->cells);
            res->names[0] = xstrdup("MIN");
            res->names[1] = xstrdup("MAX");
            char v[32];
            snprintf(v, sizeof v, "%" PRId64, m->min);
            res->cells[0] = xstrdup(v);
            snprintf(v, sizeof v, "%" PRId64, m->max);
            res->cells[1] = xstrdup(v);
        }
    } else {
        ERR("fake TiDB does not know: %s", sql);
    }
    return 0;
#undef ERR
}

/* Rows of a chunk query over `id`: the keys in [min, max] that its
 * "`id` >= X" and "`id` < Y" allow, or "rows A B" for [A, B). */
static int fake_stream(struct sqlx *x, const char *sql, sqlx_row_fn fn, void *arg, char *err,
                       size_t errlen)
{
    struct fake *f = (struct fake *)x;
    struct model *m = f->m;
    record(f, sql);
    if (m->fail_in && strstr(sql, m->fail_in)) {
        snprintf(err, errlen, "GC life time is shorter than transaction duration (MySQL error 9006)");
        return -1;
    }
    if (m->block) {
        if (m->cancel_when_blocked)
            atomic_store(m->cancel_when_blocked, true);
        for (int i = 0; i < 10000 && !atomic_load(&f->aborted); i++)
            usleep(1000);
        snprintf(err, errlen, "Lost connection to server during query (MySQL error 2013)");
        return -1;
    }
    int64_t lo = m->min, hi = m->max + 1;
    const char *p;
    long long a, b;
    if (sscanf(sql, "rows %lld %lld", &a, &b) == 2) {
        lo = a;
        hi = b;
    } else {
        if ((p = strstr(sql, "`id` >= ")))
            lo = strtoll(p + 8, NULL, 10) > lo ? strtoll(p + 8, NULL, 10) : lo;
        if ((p = strstr(sql, "`id` < ")))
            hi = strtoll(p + 7, NULL, 10) < hi ? strtoll(p + 7, NULL, 10) : hi;
    }
    for (int64_t id = lo; id < hi; id++) {
        char v[32], w[40];
        snprintf(v, sizeof v, "%" PRId64, id);
        snprintf(w, sizeof w, "value %" PRId64, id);
        struct tis_value vals[2] = {{v, strlen(v), false}, {w, strlen(w), id % 7 == 0}};
        atomic_fetch_add(&m->produced, 1);
        if (fn(arg, vals, m->one_column ? 1 : 2))
            return 1;
    }
    return 0;
}

static void fake_abort(struct sqlx *x)
{
    atomic_store(&((struct fake *)x)->aborted, true);
}

static void fake_close(struct sqlx *x)
{
    struct fake *f = (struct fake *)x;
    record(f, "(close)");
    free(f);
}

static struct sqlx *fake_new(struct model *m)
{
    struct fake *f = xcalloc(1, sizeof *f);
    f->x = (struct sqlx){fake_exec, fake_stream, fake_abort, fake_close};
    f->m = m;
    pthread_mutex_lock(&m->mu);
    f->id = m->next_id++;
    pthread_mutex_unlock(&m->mu);
    atomic_init(&f->aborted, false);
    return &f->x;
}

static struct sqlx *fake_open(void *arg, size_t i, char *desc, size_t desclen, char *err,
                              size_t errlen)
{
    struct model *m = arg;
    if (m->open_fails) {
        snprintf(err, errlen, "Can't connect to server on '127.0.0.1' (111)");
        return NULL;
    }
    snprintf(desc, desclen, "TiDB fake-%zu", i % 2);
    return fake_new(m);
}

#define TSO_TEXT "463817349693014017" /* physical 2026-01-24T... see below */

static void model_init(struct model *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->gc, sizeof m->gc, "10m0s");
    m->tso = TSO_TEXT;
    m->current_ts = TSO_TEXT;
    m->safe_point = "20000101-00:00:00 +0000";
    m->min = 1;
    m->max = 1000;
    pthread_mutex_init(&m->mu, NULL);
    atomic_init(&m->produced, 0);
}

static void model_free(struct model *m)
{
    tbuf_free(&m->stmts);
    pthread_mutex_destroy(&m->mu);
}

/* The statements of connection c, one per line, without the prefix. */
static char *stmts_of(struct model *m, int c)
{
    struct tbuf out = {0};
    char pre[16];
    int pl = snprintf(pre, sizeof pre, "c%d: ", c);
    const char *p = m->stmts.data ? m->stmts.data : "";
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len >= (size_t)pl && memcmp(p, pre, (size_t)pl) == 0) {
            tbuf_add(&out, p + pl, len - (size_t)pl);
            tbuf_adds(&out, "\n");
        }
        p += len + (nl ? 1 : 0);
    }
    return out.data ? tbuf_take(&out) : xstrdup("");
}

#define CHECK_STMTS(m, c, want)                 \
    do {                                        \
        char *s_ = stmts_of((m), (c));          \
        CHECK_STR(s_, want);                    \
        free(s_);                               \
    } while (0)

#define GET "SELECT @@GLOBAL.tidb_gc_life_time\n"
#define SET_24H "SET GLOBAL tidb_gc_life_time = '24h'\n"
#define SET_10M "SET GLOBAL tidb_gc_life_time = '10m0s'\n"
#define MASTER "SHOW MASTER STATUS\n"
#define SAFEPT "SELECT VARIABLE_VALUE FROM mysql.tidb WHERE VARIABLE_NAME = 'tikv_gc_safe_point'\n"

/* A fresh model and connection 0 on it. */
static struct sqlx *fake_start(struct model *m)
{
    model_init(m);
    return fake_new(m);
}

/* Ends a case: the snapshot (NULL: none to clear), the connection, then the
 * model (closing records on it). */
static void fake_end(struct model *m, struct sqlx *x, struct tidb_snapshot *snap)
{
    if (snap)
        tidb_snapshot_clear(snap);
    x->close(x);
    model_free(m);
}

/* tidb_snapshot_begin, with the log emptied first. Each call is another
 * cluster (a fresh model): extensions of the GC life time are shared per
 * cluster, and one case must not find the last one's. */
static int snapshot_begin(struct sqlx *x, struct tidb_snapshot *snap, char *err, size_t errlen)
{
    static int seq;
    tbuf_reset(&logs);
    memset(snap, 0, sizeof *snap);
    snprintf(snap->cluster, sizeof snap->cluster, "fake-%d", ++seq);
    return tidb_snapshot_begin(x, snap, collect_log, NULL, err, errlen);
}

static int gc_restore(struct sqlx *x, struct tidb_snapshot *snap, char *err, size_t errlen)
{
    return tidb_gc_restore(x, snap, collect_log, NULL, err, errlen);
}

static void test_snapshot_sequences(void)
{
    struct model m;
    struct tidb_snapshot snap;
    char err[1024];

    /* The usual case: extend, TSO, check; restore afterwards. */
    struct sqlx *x = fake_start(&m);
    CHECK(snapshot_begin(x, &snap, err, sizeof err) == 0);
    CHECK(snap.tso == 463817349693014017ULL);
    CHECK(snap.gc_changed && !snap.gc_via_table);
    CHECK_STR(snap.gc_was, "10m0s");
    CHECK_STR(m.gc, "24h");
    CHECK_STMTS(&m, 0, GET SET_24H MASTER SAFEPT);
    CHECK_HAS(logs.data, "extended tidb_gc_life_time from 10m0s to 24h");
    CHECK_HAS(logs.data, "snapshot TSO 463817349693014017 (");
    CHECK(gc_restore(x, &snap, err, sizeof err) == 0);
    CHECK_STR(m.gc, "10m0s");
    CHECK_STMTS(&m, 0, GET SET_24H MASTER SAFEPT GET SET_10M);
    CHECK_HAS(logs.data, "restored tidb_gc_life_time to 10m0s");
    /* Idempotent. */
    CHECK(gc_restore(x, &snap, err, sizeof err) == 0);
    CHECK_STMTS(&m, 0, GET SET_24H MASTER SAFEPT GET SET_10M);
    fake_end(&m, x, &snap);

    /* The TSO is not above the safe point: fails, and restores at once. */
    x = fake_start(&m);
    m.safe_point = "29990101-00:00:00.000 +0000";
    CHECK(snapshot_begin(x, &snap, err, sizeof err) == -1);
    CHECK_HAS(err, "snapshot TSO 463817349693014017 (");
    CHECK_HAS(err, "is not above the GC safe point 29990101-00:00:00.000 +0000");
    CHECK_STR(m.gc, "10m0s");
    CHECK_STMTS(&m, 0, GET SET_24H MASTER SAFEPT GET SET_10M);
    CHECK(!snap.gc_changed && !snap.gc_was);
    fake_end(&m, x, NULL);

    /* No TSO at all: fails, restored. */
    x = fake_start(&m);
    m.tso = NULL;
    m.current_ts = NULL;
    CHECK(snapshot_begin(x, &snap, err, sizeof err) == -1);
    CHECK_HAS(err, "cannot read the snapshot TSO: ");
    CHECK_HAS(err, "REPLICATION CLIENT");
    CHECK_HAS(err, "tidb_current_ts");
    CHECK_STR(m.gc, "10m0s");
    CHECK_STMTS(&m, 0,
                GET SET_24H MASTER "START TRANSACTION\nSELECT @@tidb_current_ts\nROLLBACK\n" GET
                    SET_10M);
    fake_end(&m, x, NULL);

    /* SHOW MASTER STATUS refused: the TSO of a transaction instead. */
    x = fake_start(&m);
    m.tso = NULL;
    CHECK(snapshot_begin(x, &snap, err, sizeof err) == 0);
    CHECK(snap.tso == 463817349693014017ULL);
    CHECK_STMTS(&m, 0,
                GET SET_24H MASTER "START TRANSACTION\nSELECT @@tidb_current_ts\nROLLBACK\n" SAFEPT);
    fake_end(&m, x, &snap);

    /* Long enough already: nothing to extend, nothing to restore. */
    x = fake_start(&m);
    snprintf(m.gc, sizeof m.gc, "720h0m0s");
    CHECK(snapshot_begin(x, &snap, err, sizeof err) == 0);
    CHECK(!snap.gc_changed);
    CHECK(gc_restore(x, &snap, err, sizeof err) == 0);
    CHECK_STMTS(&m, 0, GET MASTER SAFEPT);
    fake_end(&m, x, &snap);

    /* Before TiDB 5.0: the mysql.tidb row, both ways. */
    x = fake_start(&m);
    m.gc_var_unknown = true;
    CHECK(snapshot_begin(x, &snap, err, sizeof err) == 0);
    CHECK(snap.gc_changed && snap.gc_via_table);
    CHECK(gc_restore(x, &snap, err, sizeof err) == 0);
    CHECK_STR(m.gc, "10m0s");
    CHECK_STMTS(&m, 0,
                GET "SELECT VARIABLE_VALUE FROM mysql.tidb WHERE VARIABLE_NAME = "
                    "'tikv_gc_life_time'\n"
                    "UPDATE mysql.tidb SET VARIABLE_VALUE = '24h' WHERE VARIABLE_NAME = "
                    "'tikv_gc_life_time'\n" MASTER SAFEPT GET
                    "SELECT VARIABLE_VALUE FROM mysql.tidb WHERE VARIABLE_NAME = "
                    "'tikv_gc_life_time'\n"
                    "UPDATE mysql.tidb SET VARIABLE_VALUE = '10m0s' WHERE VARIABLE_NAME = "
                    "'tikv_gc_life_time'\n");
    fake_end(&m, x, &snap);

    /* Not allowed to extend: a warning, the dump goes on, nothing to restore. */
    x = fake_start(&m);
    m.gc_set_denied = true;
    CHECK(snapshot_begin(x, &snap, err, sizeof err) == 0);
    CHECK(!snap.gc_changed);
    CHECK_HAS(logs.data, "WARNING: cannot extend tidb_gc_life_time from 10m0s to 24h");
    CHECK(gc_restore(x, &snap, err, sizeof err) == 0);
    CHECK_STMTS(&m, 0, GET SET_24H MASTER SAFEPT);
    fake_end(&m, x, &snap);

    /* Someone changed it during the dump: theirs is kept. */
    x = fake_start(&m);
    CHECK(snapshot_begin(x, &snap, err, sizeof err) == 0);
    snprintf(m.gc, sizeof m.gc, "48h0m0s");
    CHECK(gc_restore(x, &snap, err, sizeof err) == 0);
    CHECK_STR(m.gc, "48h0m0s");
    CHECK_STMTS(&m, 0, GET SET_24H MASTER SAFEPT GET);
    CHECK_HAS(logs.data, "someone changed it meanwhile, left as is");
    /* TiDB may show what was set as "24h0m0s": still ours. */
    model_free(&m);
    model_init(&m);
    ((struct fake *)x)->m = &m;
    tidb_snapshot_clear(&snap);
    CHECK(snapshot_begin(x, &snap, err, sizeof err) == 0);
    snprintf(m.gc, sizeof m.gc, "24h0m0s");
    CHECK(gc_restore(x, &snap, err, sizeof err) == 0);
    CHECK_STR(m.gc, "10m0s");
    fake_end(&m, x, &snap);

    /* The safe point cannot be read: a warning, not a failure. */
    x = fake_start(&m);
    m.safe_point = NULL;
    CHECK(snapshot_begin(x, &snap, err, sizeof err) == 0);
    CHECK_HAS(logs.data, "WARNING: cannot read the GC safe point");
    fake_end(&m, x, &snap);
}

/* ---- the whole read against the fake ---- */

struct sink {
    uint8_t *seen; /* per id in [min, max] */
    int64_t min, max;
    uint64_t rows, dups, nulls;
    size_t stop_after; /* 0: never */
    struct model *m;
    uint64_t max_backlog;
};

static int sink_row(void *arg, const struct tis_value *vals)
{
    struct sink *s = arg;
    char id[32];
    snprintf(id, sizeof id, "%.*s", (int)vals[0].len, vals[0].p);
    int64_t v = strtoll(id, NULL, 10);
    if (v >= s->min && v <= s->max) {
        if (s->seen[v - s->min]++)
            s->dups++;
    }
    char want[40];
    snprintf(want, sizeof want, "value %" PRId64, v);
    if (vals[1].null)
        s->nulls++;
    else if (vals[1].len != strlen(want) || memcmp(vals[1].p, want, vals[1].len))
        s->dups += 1000000; /* a value out of place */
    s->rows++;
    uint64_t backlog = atomic_load(&s->m->produced) - s->rows;
    if (backlog > s->max_backlog)
        s->max_backlog = backlog;
    return s->stop_after && s->rows >= s->stop_after;
}

static void sink_init(struct sink *s, struct model *m)
{
    memset(s, 0, sizeof *s);
    s->m = m;
    s->min = m->min;
    s->max = m->max;
    s->seen = xcalloc((size_t)(m->max - m->min + 1), 1);
}

static uint64_t sink_missing(const struct sink *s)
{
    uint64_t n = 0;
    for (int64_t i = 0; i <= s->max - s->min; i++)
        n += s->seen[i] == 0;
    return n;
}

static size_t count_lines(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = s; p && (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* tidb_read_snapshot of db.t (schema sc, about est rows) at snap, over fake
 * readers on m, into s: a fresh sink over m's keys. */
static int read_snapshot(struct sqlx *x, struct model *m, const struct tis_schema *sc,
                         uint64_t est, struct tidb_snapshot *snap, struct sink *s,
                         atomic_bool *cancel, char *err, size_t errlen)
{
    sink_init(s, m);
    return tidb_read_snapshot(x, fake_open, m, "db", "t", sc, est, snap, sink_row, s, cancel,
                              collect_log, NULL, err, errlen);
}

/* Two dumps of one cluster at once: the first extends the GC life time,
 * the second shares the extension, and only the last to end restores it
 * (each restoring what it found would restore it under the other's feet). */
static void test_gc_shared_by_two_dumps(void)
{
    struct model m;
    struct tidb_snapshot a, b, c;
    char err[1024];
    struct sqlx *x = fake_start(&m);
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    snprintf(a.cluster, sizeof a.cluster, "pd:2379");
    snprintf(b.cluster, sizeof b.cluster, "pd:2379");
    snprintf(c.cluster, sizeof c.cluster, "other:2379");
    CHECK(tidb_snapshot_begin(x, &a, collect_log, NULL, err, sizeof err) == 0);
    CHECK(a.gc_changed && !a.gc_joined);
    CHECK_STR(m.gc, "24h");
    tbuf_reset(&logs);
    CHECK(tidb_snapshot_begin(x, &b, collect_log, NULL, err, sizeof err) == 0);
    CHECK(b.gc_joined && !b.gc_changed);
    CHECK_HAS(logs.data, "sharing it (the last dump restores 10m0s)");
    /* Another cluster (here the same fake, so the value found is 24h):
     * its own business, not shared. */
    CHECK(tidb_snapshot_begin(x, &c, collect_log, NULL, err, sizeof err) == 0);
    CHECK(!c.gc_joined && !c.gc_changed);
    /* The first ends: still extended for the second. */
    tbuf_reset(&logs);
    CHECK(gc_restore(x, &a, err, sizeof err) == 0);
    CHECK_STR(m.gc, "24h");
    CHECK_HAS(logs.data, "left extended: 1 other dump of this daemon still relies on it");
    /* The second ends: restored to what the first found. */
    CHECK(gc_restore(x, &b, err, sizeof err) == 0);
    CHECK_STR(m.gc, "10m0s");
    CHECK(gc_restore(x, &b, err, sizeof err) == 0); /* idempotent */
    CHECK_STR(m.gc, "10m0s");
    tidb_snapshot_clear(&a);
    tidb_snapshot_clear(&b);
    fake_end(&m, x, &c);
}

static char persisted[1024];

static void capture_leases(void *arg, const char *json)
{
    (void)arg;
    snprintf(persisted, sizeof persisted, "%s", json);
}

/* A daemon killed mid-dump: the extended GC life time it owed is in what
 * the persist hook got; after the restart, the next dump of that cluster
 * takes the debt on and restores the value the killed one found (not the
 * extended one it now reads). */
static void test_gc_owed_across_a_restart(void)
{
    struct model m;
    struct tidb_snapshot a, b;
    char err[1024];
    struct sqlx *x = fake_start(&m);
    tidb_gc_set_persist(capture_leases, NULL);
    memset(&a, 0, sizeof a);
    snprintf(a.cluster, sizeof a.cluster, "pd-restart:2379");
    CHECK(tidb_snapshot_begin(x, &a, collect_log, NULL, err, sizeof err) == 0);
    CHECK_HAS(persisted, "\"cluster\": \"pd-restart:2379\"");
    CHECK_HAS(persisted, "\"was\": \"10m0s\"");
    /* kill -9: the process's leases are gone, the persisted ones load. */
    tidb_gc_leases_reset();
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", persisted);
    CHECK(tidb_gc_leases_load(saved) == 1);
    CHECK_STR(m.gc, "24h");
    memset(&b, 0, sizeof b);
    snprintf(b.cluster, sizeof b.cluster, "pd-restart:2379");
    tbuf_reset(&logs);
    CHECK(tidb_snapshot_begin(x, &b, collect_log, NULL, err, sizeof err) == 0);
    CHECK(b.gc_joined);
    CHECK_HAS(logs.data, "extended by an interrupted dump of this daemon");
    CHECK(gc_restore(x, &b, err, sizeof err) == 0);
    CHECK_STR(m.gc, "10m0s");
    CHECK_STR(persisted, "[ ]");
    tidb_gc_set_persist(NULL, NULL);
    a.gc_changed = false; /* the killed dump's: nothing of it runs any more */
    tidb_snapshot_clear(&a);
    tidb_snapshot_clear(&b);
    fake_end(&m, x, NULL);
}

static void test_read_snapshot(void)
{
    const char *names[] = {"id", "v"};
    enum tis_vtype vts[] = {VT_INT, VT_STRING};
    struct tis_schema *sc = schema(1, 2, names, vts);
    struct model m;
    struct tidb_snapshot snap;
    struct sink s;
    char err[1024] = "";
    atomic_bool cancel;
    atomic_init(&cancel, false);

    /* Success: TABLESAMPLE boundaries; each reader sets the snapshot first;
     * every row once; GC restored. */
    struct sqlx *x = fake_start(&m);
    m.sample_ok = true;
    m.samples[0] = "1"; /* the first row: no boundary */
    m.samples[1] = "250";
    m.samples[2] = "500";
    m.samples[3] = "750";
    m.nsamples = 4;
    CHECK(snapshot_begin(x, &snap, err, sizeof err) == 0);
    int rc = read_snapshot(x, &m, sc, 1000, &snap, &s, &cancel, err, sizeof err);
    CHECK(rc == 0);
    CHECK(s.rows == 1000 && s.dups == 0 && sink_missing(&s) == 0);
    CHECK(s.nulls == 1000 / 7);
    CHECK_STR(m.gc, "10m0s");
    CHECK_STMTS(&m, 0,
                GET SET_24H MASTER SAFEPT
                "SELECT `id` FROM `db`.`t` TABLESAMPLE REGIONS() ORDER BY `id`\n" GET SET_10M);
    /* Four chunks over four readers, each set to the snapshot before it
     * reads anything (a fast reader may take more than one chunk). */
    CHECK(count_lines(m.stmts.data, "SELECT `id`, `v` FROM `db`.`t` WHERE ") == 4);
    for (int c = 1; c <= 4; c++) {
        char *st = stmts_of(&m, c);
        const char *want = "SET SESSION tidb_snapshot = '463817349693014017'\n";
        CHECK(strncmp(st, want, strlen(want)) == 0);
        CHECK_HAS(st, "(close)\n");
        free(st);
    }
    CHECK_HAS(m.stmts.data, "SELECT `id`, `v` FROM `db`.`t` WHERE (`id` < 250)\n");
    CHECK_HAS(m.stmts.data,
              "SELECT `id`, `v` FROM `db`.`t` WHERE (`id` >= 250) AND (`id` < 500)\n");
    CHECK_HAS(m.stmts.data, "SELECT `id`, `v` FROM `db`.`t` WHERE (`id` >= 750)\n");
    CHECK_HAS(logs.data, "TABLESAMPLE REGIONS(): 4 regions, 4 chunks");
    CHECK_HAS(logs.data, "reading at TSO 463817349693014017: 4 chunks");
    CHECK(count_lines(logs.data, " done: ") == 4);
    CHECK_HAS(logs.data, "chunk 4/4 done: 251 rows in ");
    CHECK_HAS(logs.data, "restored tidb_gc_life_time to 10m0s");
    free(s.seen);
    fake_end(&m, x, &snap);

    /* No TABLESAMPLE: integer key ranges from MIN/MAX; a chunk fails; GC is
     * restored all the same. */
    x = fake_start(&m);
    m.max = 1000000;
    m.fail_in = "`id` >= 399999)"; /* chunk 3 of 5 */
    CHECK(snapshot_begin(x, &snap, err, sizeof err) == 0);
    rc = read_snapshot(x, &m, sc, 1000000, &snap, &s, &cancel, err, sizeof err);
    CHECK(rc == -1);
    CHECK_HAS(err, "chunk 3/5 on TiDB fake-");
    CHECK_HAS(err, "GC life time is shorter than transaction duration");
    CHECK_HAS(logs.data, "TABLESAMPLE REGIONS() unavailable (You have an error");
    CHECK_HAS(logs.data, "5 chunks from ranges of the integer key id (1..1000000)");
    CHECK_HAS(m.stmts.data, "c0: SELECT MIN(`id`), MAX(`id`) FROM `db`.`t`\n");
    CHECK_STR(m.gc, "10m0s");
    CHECK_HAS(logs.data, "restored tidb_gc_life_time to 10m0s");
    free(s.seen);
    fake_end(&m, x, &snap);

    /* The same without the failure: all rows, each once, and the backlog of
     * rows produced but not yet consumed stays within the queue's bound. */
    x = fake_start(&m);
    m.max = 400000;
    CHECK(snapshot_begin(x, &snap, err, sizeof err) == 0);
    rc = read_snapshot(x, &m, sc, 400000, &snap, &s, &cancel, err, sizeof err);
    CHECK(rc == 0);
    CHECK(s.rows == 400000 && s.dups == 0 && sink_missing(&s) == 0);
    uint64_t bound = (2 * TIDB_DUMP_CONNECTIONS + TIDB_DUMP_CONNECTIONS + 1) * TIDB_BATCH_ROWS +
                     TIDB_DUMP_CONNECTIONS;
    CHECK(s.max_backlog <= bound);
    if (s.max_backlog > bound)
        printf("    backlog %" PRIu64 " > %" PRIu64 "\n", s.max_backlog, bound);
    free(s.seen);
    fake_end(&m, x, &snap);

    /* The main connection is gone by the end: restored on a fresh one. */
    x = fake_start(&m);
    CHECK(snapshot_begin(x, &snap, err, sizeof err) == 0);
    m.main_dead = true;
    tbuf_reset(&logs);
    tidb_gc_restore_any(x, fake_open, &m, &snap, collect_log, NULL);
    CHECK_STR(m.gc, "10m0s");
    CHECK_STMTS(&m, 1, GET SET_10M "(close)\n");
    /* And when no connection can be had, the log says how to do it by hand. */
    tidb_snapshot_clear(&snap);
    CHECK(snapshot_begin(x, &snap, err, sizeof err) == -1);
    m.main_dead = false;
    tidb_snapshot_clear(&snap);
    CHECK(snapshot_begin(x, &snap, err, sizeof err) == 0);
    m.main_dead = true;
    m.open_fails = true;
    tbuf_reset(&logs);
    tidb_gc_restore_any(x, fake_open, &m, &snap, collect_log, NULL);
    CHECK_HAS(logs.data, "WARNING: cannot restore tidb_gc_life_time to 10m0s");
    CHECK_HAS(logs.data, "set it by hand: SET GLOBAL tidb_gc_life_time = '10m0s'");
    CHECK(!snap.gc_changed);
    fake_end(&m, x, &snap);
    schema_free(sc);
}

/* ---- the parallel reader alone ---- */

/* A fresh model holding the keys 0..9999 that the chunks of test_parallel
 * cover; r reads from it into s, a fresh sink over them. */
static void parallel_start(struct model *m, struct tidb_read *r, struct sink *s)
{
    model_init(m);
    m->min = 0;
    m->max = 9999;
    r->open_arg = m;
    sink_init(s, m);
}

static void parallel_end(struct model *m, struct sink *s)
{
    free(s->seen);
    model_free(m);
}

static void test_parallel(void)
{
    struct model m;
    struct sink s;
    char err[1024];
    atomic_bool cancel;
    atomic_init(&cancel, false);
    char *sqls[10];
    for (int i = 0; i < 10; i++) {
        char q[64];
        snprintf(q, sizeof q, "rows %d %d", i * 1000, (i + 1) * 1000);
        sqls[i] = xstrdup(q);
    }
    const char *const setup[] = {"SET SESSION tidb_snapshot = '1'"};
    struct tidb_read r = {.open = fake_open, .nworkers = 3, .setup = setup, .nsetup = 1,
                          .sqls = sqls, .nchunks = 10, .nfields = 2, .log = collect_log};

    /* Everything once, setup on each of the 3 connections. */
    parallel_start(&m, &r, &s);
    tbuf_reset(&logs);
    CHECK(tidb_parallel_read(&r, sink_row, &s, &cancel, err, sizeof err) == 0);
    CHECK(s.rows == 10000 && s.dups == 0 && sink_missing(&s) == 0);
    CHECK(count_lines(m.stmts.data, "SET SESSION tidb_snapshot") == 3);
    CHECK(count_lines(m.stmts.data, "(close)") == 3);
    CHECK(count_lines(logs.data, " done: 1000 rows in ") == 10);
    CHECK_HAS(logs.data, "reading 10 chunks over 3 connections");
    parallel_end(&m, &s);

    /* The callback stops: -1, err untouched, every reader gone. */
    parallel_start(&m, &r, &s);
    s.stop_after = 1500;
    snprintf(err, sizeof err, "untouched");
    CHECK(tidb_parallel_read(&r, sink_row, &s, &cancel, err, sizeof err) == -1);
    CHECK_STR(err, "untouched");
    CHECK(s.rows == 1500);
    CHECK(count_lines(m.stmts.data, "(close)") == 3);
    parallel_end(&m, &s);

    /* Cancel while every reader is blocked in the server: the readers are
     * cut off and the call returns "cancelled" promptly. */
    parallel_start(&m, &r, &s);
    m.block = true;
    m.cancel_when_blocked = &cancel;
    double t0 = mono_now();
    CHECK(tidb_parallel_read(&r, sink_row, &s, &cancel, err, sizeof err) == -1);
    CHECK(mono_now() - t0 < 5);
    CHECK_STR(err, "cancelled");
    CHECK(count_lines(m.stmts.data, "(close)") == 3);
    atomic_store(&cancel, false);
    parallel_end(&m, &s);

    /* No connection: the error names it. */
    parallel_start(&m, &r, &s);
    m.open_fails = true;
    CHECK(tidb_parallel_read(&r, sink_row, &s, &cancel, err, sizeof err) == -1);
    CHECK_HAS(err, "connection ");
    CHECK_HAS(err, "Can't connect to server");
    parallel_end(&m, &s);

    /* A server that answers fewer columns than asked (an impostor): an
     * error that says so, not rows whose missing cells read as NULL. */
    parallel_start(&m, &r, &s);
    m.one_column = true;
    CHECK(tidb_parallel_read(&r, sink_row, &s, &cancel, err, sizeof err) == -1);
    CHECK_HAS(err, "the server answered 1 columns for the 2 asked");
    CHECK(s.rows == 0);
    parallel_end(&m, &s);

    /* A setup statement fails. */
    parallel_start(&m, &r, &s);
    const char *const bad_setup[] = {"SET SESSION bogus = 1"};
    struct tidb_read r2 = r;
    r2.setup = bad_setup;
    CHECK(tidb_parallel_read(&r2, sink_row, &s, &cancel, err, sizeof err) == -1);
    CHECK_HAS(err, "SET SESSION bogus = 1: fake TiDB does not know");
    parallel_end(&m, &s);

    for (int i = 0; i < 10; i++)
        free(sqls[i]);
}

/* ---- against a real MariaDB (--mysql) ---- */

struct conninfo {
    const char *host, *user, *pw, *db;
    int port;
};

static struct sqlx *my_open(void *arg, size_t i, char *desc, size_t desclen, char *err,
                            size_t errlen)
{
    struct conninfo *c = arg;
    snprintf(desc, desclen, "MariaDB %s:%d #%zu", c->host, c->port, i);
    return sqlx_mysql_open(c->host, c->port, c->user, c->pw, c->db, err, errlen);
}

static bool run(struct sqlx *x, const char *sql)
{
    char err[1024];
    if (x->exec(x, sql, NULL, err, sizeof err)) {
        printf("    %s: %s\n", sql, err);
        return false;
    }
    return true;
}

/* Keys seen, as "k1\x1fk2..." strings, to count each once. */
struct keyset {
    char **keys;
    size_t n, cap;
    size_t npk;
    pthread_mutex_t mu;
};

static int keyset_row(void *arg, const struct tis_value *vals)
{
    struct keyset *k = arg;
    struct tbuf t = {0};
    for (size_t i = 0; i < k->npk; i++) {
        tbuf_add(&t, vals[i].p, vals[i].len);
        tbuf_add(&t, "\x1f", 1);
    }
    if (k->n == k->cap) {
        k->cap = k->cap ? 2 * k->cap : 256;
        k->keys = xrealloc(k->keys, k->cap * sizeof *k->keys);
    }
    /* Keep lengths: keys may hold NUL bytes. */
    char *s = xmalloc(t.len + sizeof(size_t));
    memcpy(s, &t.len, sizeof(size_t));
    memcpy(s + sizeof(size_t), t.data, t.len);
    k->keys[k->n++] = s;
    tbuf_free(&t);
    return 0;
}

static int keycmp(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    size_t lx, ly;
    memcpy(&lx, x, sizeof lx);
    memcpy(&ly, y, sizeof ly);
    int c = memcmp(x + sizeof lx, y + sizeof ly, lx < ly ? lx : ly);
    return c ? c : (lx > ly) - (lx < ly);
}

static void keyset_free(struct keyset *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->keys[i]);
    free(k->keys);
    memset(k, 0, sizeof *k);
}

/* Reads db.table in the chunks of b (or planned by tidb_plan_chunks when b
 * is NULL) over 3 connections, and checks that it yields exactly the rows of
 * one plain SELECT. */
static void check_partition(struct conninfo *ci, struct sqlx *x, const char *table,
                            const struct tis_schema *sc, const struct tidb_bounds *b,
                            uint64_t est_rows, size_t want_chunks)
{
    char err[2048] = "";
    char **sqls = NULL;
    size_t n = 0;
    if (b) {
        n = b->n + 1;
        sqls = xcalloc(n, sizeof *sqls);
        for (size_t i = 0; i < n; i++) {
            char *w = tidb_chunk_where(sc, b, i);
            struct tbuf q = {0};
            tidb_select_sql(&q, ci->db, table, sc, w);
            sqls[i] = tbuf_take(&q);
            free(w);
        }
    } else {
        CHECK(tidb_plan_chunks(x, ci->db, table, sc, est_rows, &sqls, &n, collect_log, NULL, err,
                               sizeof err) == 0);
    }
    CHECK(n == want_chunks);
    if (n != want_chunks)
        printf("    %s: %zu chunks, want %zu\n", table, n, want_chunks);
    const char *const setup[] = {"SET SESSION TRANSACTION READ ONLY"};
    struct tidb_read r = {.open = my_open, .open_arg = ci, .nworkers = 3, .setup = setup,
                          .nsetup = 1, .sqls = sqls, .nchunks = n, .nfields = sc->nfields,
                          .log = collect_log};
    struct keyset got = {.npk = sc->npk}, want = {.npk = sc->npk};
    atomic_bool cancel;
    atomic_init(&cancel, false);
    int rc = tidb_parallel_read(&r, keyset_row, &got, &cancel, err, sizeof err);
    CHECK(rc == 0);
    if (rc)
        printf("    %s: %s\n", table, err);
    /* The reference: one plain SELECT of the whole table. */
    r.sqls = (char *const[]){NULL};
    struct tbuf q = {0};
    tidb_select_sql(&q, ci->db, table, sc, NULL);
    char *whole[1] = {q.data};
    r.sqls = whole;
    r.nchunks = 1;
    CHECK(tidb_parallel_read(&r, keyset_row, &want, &cancel, err, sizeof err) == 0);
    tbuf_free(&q);
    qsort(got.keys, got.n, sizeof *got.keys, keycmp);
    qsort(want.keys, want.n, sizeof *want.keys, keycmp);
    bool same = got.n == want.n && want.n > 0;
    for (size_t i = 0; same && i < got.n; i++)
        same = keycmp(&got.keys[i], &want.keys[i]) == 0;
    CHECK(same);
    if (!same)
        printf("    %s: chunks gave %zu rows, the table has %zu\n", table, got.n, want.n);
    keyset_free(&got);
    keyset_free(&want);
    for (size_t i = 0; i < n; i++)
        free(sqls[i]);
    free(sqls);
}

/* Boundaries: every step-th key of the table in key order. */
static void bounds_from_table(struct sqlx *x, const char *db, const char *table,
                              const struct tis_schema *sc, size_t step, struct tidb_bounds *b)
{
    struct tbuf q = {0}, cols = {0};
    for (size_t k = 0; k < sc->npk; k++) {
        if (k)
            tbuf_adds(&cols, ", ");
        tidb_add_ident(&cols, sc->fields[sc->pk[k]].name);
    }
    tbuf_printf(&q, "SELECT %s FROM ", cols.data);
    tidb_add_ident(&q, db);
    tbuf_adds(&q, ".");
    tidb_add_ident(&q, table);
    tbuf_printf(&q, " ORDER BY %s", cols.data);
    struct sql_result r = {0};
    char err[1024];
    CHECK(x->exec(x, q.data, &r, err, sizeof err) == 0);
    *b = (struct tidb_bounds){.npk = sc->npk};
    for (size_t row = step; row < r.nrows; row += step) {
        const char *v[3];
        size_t l[3];
        for (size_t k = 0; k < sc->npk; k++) {
            v[k] = sql_cell(&r, row, k);
            l[k] = strlen(v[k]);
        }
        tidb_bounds_add(b, v, l);
    }
    sql_result_free(&r);
    tbuf_free(&q);
    tbuf_free(&cols);
}

static void insert_values(struct sqlx *x, const char *table, const struct tis_schema *sc,
                          const char *const *vals, const size_t *lens, size_t nrows)
{
    struct tbuf q = {0};
    tbuf_printf(&q, "INSERT INTO %s VALUES ", table);
    for (size_t r = 0; r < nrows; r++) {
        tbuf_adds(&q, r ? ", (" : "(");
        for (size_t i = 0; i < sc->nfields; i++) {
            if (i)
                tbuf_adds(&q, ", ");
            const char *v = vals[r * sc->nfields + i];
            tidb_add_literal(&q, sc->fields[i].vt, v, lens ? lens[r * sc->nfields + i] : strlen(v));
        }
        tbuf_adds(&q, ")");
    }
    CHECK(run(x, q.data));
    tbuf_free(&q);
}

static int mysql_main(char **argv)
{
    struct conninfo ci = {argv[0], argv[2], argv[3], argv[4], atoi(argv[1])};
    char err[1024];
    struct sqlx *x = my_open(&ci, 0, (char[64]){0}, 64, err, sizeof err);
    if (!x) {
        printf("cannot connect: %s\n0 passed, 1 failed\n", err);
        return 1;
    }

    /* Signed integer key, from MIN/MAX (MariaDB has no TABLESAMPLE REGIONS). */
    CHECK(run(x, "DROP TABLE IF EXISTS ints"));
    CHECK(run(x, "CREATE TABLE ints (id BIGINT PRIMARY KEY, v VARCHAR(20))"));
    CHECK(run(x, "INSERT INTO ints SELECT CAST(seq AS SIGNED) - 1000, 'v' FROM seq_1_to_5000"));
    CHECK(run(x, "INSERT INTO ints VALUES (-9223372036854775808, 'min'), "
                 "(9223372036854775807, 'max')"));
    const char *ni[] = {"id", "v"};
    enum tis_vtype ti[] = {VT_INT, VT_STRING};
    struct tis_schema *sc = schema(1, 2, ni, ti);
    tbuf_reset(&logs);
    check_partition(&ci, x, "ints", sc, NULL, 8 * TIDB_CHUNK_ROWS, 8);
    CHECK_HAS(logs.data, "TABLESAMPLE REGIONS() unavailable (");
    CHECK_HAS(logs.data, "8 chunks from ranges of the integer key id "
                         "(-9223372036854775808..9223372036854775807)");
    /* Dense keys: boundaries in the middle of the data. */
    struct tidb_bounds b;
    tidb_int_bounds(false, "-1000", "3999", 7, &b);
    check_partition(&ci, x, "ints", sc, &b, 0, 7);
    tidb_bounds_free(&b);
    schema_free(sc);

    /* Unsigned, up to 2^64-1. */
    CHECK(run(x, "DROP TABLE IF EXISTS uints"));
    CHECK(run(x, "CREATE TABLE uints (id BIGINT UNSIGNED PRIMARY KEY)"));
    CHECK(run(x, "INSERT INTO uints SELECT seq FROM seq_0_to_999"));
    CHECK(run(x, "INSERT INTO uints VALUES (18446744073709551615), (9223372036854775808)"));
    const char *nu[] = {"id"};
    enum tis_vtype tu[] = {VT_UINT};
    sc = schema(1, 1, nu, tu);
    check_partition(&ci, x, "uints", sc, NULL, 5 * TIDB_CHUNK_ROWS, 5);
    schema_free(sc);

    /* String key with quotes, backslashes, NUL, Unicode, spaces. */
    CHECK(run(x, "DROP TABLE IF EXISTS strs"));
    CHECK(run(x, "CREATE TABLE strs (name VARCHAR(40) PRIMARY KEY, v INT) "
                 "DEFAULT CHARSET=utf8mb4"));
    const char *special[] = {"", " lead", "b'c", "b\\c", "x\"y", "line\nbreak", "tab\there",
                             "中文", "😀", "ÄÖÜ", "zzz", "a b", "'", "\\", "\\'", "%_"};
    size_t nsp = sizeof special / sizeof special[0];
    const char **rows = xcalloc((nsp + 1 + 600) * 2, sizeof *rows);
    size_t *lens = xcalloc((nsp + 1 + 600) * 2, sizeof *lens);
    char (*gen)[16] = xcalloc(600, sizeof *gen);
    size_t nr = 0;
    for (size_t i = 0; i < nsp; i++, nr++) {
        rows[2 * nr] = special[i];
        lens[2 * nr] = strlen(special[i]);
        rows[2 * nr + 1] = "1";
        lens[2 * nr + 1] = 1;
    }
    rows[2 * nr] = "nul\0byte";
    lens[2 * nr] = 8;
    rows[2 * nr + 1] = "2";
    lens[2 * nr + 1] = 1;
    nr++;
    for (int i = 0; i < 600; i++, nr++) {
        snprintf(gen[i], sizeof gen[i], "k%04d", i * 7 % 600);
        rows[2 * nr] = gen[i];
        lens[2 * nr] = strlen(gen[i]);
        rows[2 * nr + 1] = "3";
        lens[2 * nr + 1] = 1;
    }
    const char *ns[] = {"name", "v"};
    enum tis_vtype ts[] = {VT_STRING, VT_INT};
    sc = schema(1, 2, ns, ts);
    insert_values(x, "strs", sc, rows, lens, nr);
    bounds_from_table(x, ci.db, "strs", sc, 7, &b);
    /* The boundaries include the special strings themselves. */
    CHECK(b.n > 80);
    tidb_bounds_thin(&b, 1000);
    check_partition(&ci, x, "strs", sc, &b, 0, b.n + 1);
    /* Every special string as a boundary of its own. */
    struct tidb_bounds sb = {.npk = 1};
    struct sql_result sr = {0};
    CHECK(x->exec(x, "SELECT name FROM strs WHERE v < 3 ORDER BY name", &sr, err, sizeof err) ==
          0);
    for (size_t i = 0; i < sr.nrows; i++) {
        const char *v[1] = {sql_cell(&sr, i, 0)};
        size_t l[1] = {strlen(v[0])};
        tidb_bounds_add(&sb, v, l);
    }
    CHECK(sb.n == nsp + 1);
    sql_result_free(&sr);
    check_partition(&ci, x, "strs", sc, &sb, 0, sb.n + 1);
    tidb_bounds_free(&sb);
    tidb_bounds_free(&b);
    schema_free(sc);
    free(rows);
    free(lens);
    free(gen);

    /* Composite key: int, string, binary. */
    CHECK(run(x, "DROP TABLE IF EXISTS comp"));
    CHECK(run(x, "CREATE TABLE comp (a INT, b VARCHAR(20), c VARBINARY(8), v INT, "
                 "PRIMARY KEY (a, b, c)) DEFAULT CHARSET=utf8mb4"));
    const char *na[] = {"a", "b", "c", "v"};
    enum tis_vtype ta[] = {VT_INT, VT_STRING, VT_BINARY, VT_INT};
    sc = schema(3, 4, na, ta);
    const char *as[] = {"-1", "0", "1", "2", "10"};
    const char *bs[] = {"", "x", "y'z", "é", "b\\"};
    const char *cs[] = {"", "\x00", "\xff\x00", "a", "\x7f"};
    size_t csl[] = {0, 1, 2, 1, 1};
    size_t ncomb = 5 * 5 * 5;
    const char **crow = xcalloc(ncomb * 4, sizeof *crow);
    size_t *clen = xcalloc(ncomb * 4, sizeof *clen);
    size_t k = 0;
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++)
            for (int l = 0; l < 5; l++, k++) {
                crow[4 * k] = as[i];
                clen[4 * k] = strlen(as[i]);
                crow[4 * k + 1] = bs[j];
                clen[4 * k + 1] = strlen(bs[j]);
                crow[4 * k + 2] = cs[l];
                clen[4 * k + 2] = csl[l];
                crow[4 * k + 3] = "0";
                clen[4 * k + 3] = 1;
            }
    insert_values(x, "comp", sc, crow, clen, k);
    /* Boundaries from the table, binary cells with NUL cut by strlen: use
     * hand-made ones as well, which fall between and on real keys. */
    b = (struct tidb_bounds){.npk = 3};
    const char *bv[][3] = {{"-1", "x", "a"}, {"0", "", ""}, {"0", "y'z", "\x7f"},
                           {"1", "é", "\xff"}, {"2", "b\\", ""}, {"5", "", ""},
                           {"10", "x", "\x00"}};
    size_t bl[][3] = {{2, 1, 1}, {1, 0, 0}, {1, 4, 1}, {1, 2, 1}, {1, 2, 0}, {1, 0, 0},
                      {2, 1, 1}};
    for (size_t i = 0; i < sizeof bv / sizeof bv[0]; i++)
        tidb_bounds_add(&b, bv[i], bl[i]);
    check_partition(&ci, x, "comp", sc, &b, 0, b.n + 1);
    tidb_bounds_free(&b);
    /* Without TABLESAMPLE and without one integer key: one chunk. */
    tbuf_reset(&logs);
    check_partition(&ci, x, "comp", sc, NULL, 1000000, 1);
    CHECK_HAS(logs.data, "the primary key is not one integer column: one chunk");
    free(crow);
    free(clen);
    schema_free(sc);

    x->close(x);
    return 0;
}

int main(int argc, char **argv)
{
    test_gc_shared_by_two_dumps();
    test_gc_owed_across_a_restart();
    if (argc == 7 && strcmp(argv[1], "--mysql") == 0) {
        mysql_main(argv + 2);
    } else {
        test_parsing();
        test_literals();
        test_where();
        test_int_bounds();
        test_snapshot_sequences();
        test_read_snapshot();
        test_parallel();
    }
    tbuf_free(&logs);
    return check_summary();
}
