/* source_tidb — the TiDB snapshot sequence (TSO, GC life time, safe
 * point) and the whole read of a snapshot (see include/tisfs/source_tidb.h).
 * Chunk planning and SQL text are in tidb_chunks.c, the parallel reader in
 * tidb_read.c. TiDB-only statements come from tidb_sql.h. */
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
#include "tisfs/util.h"
#include <json-c/json.h>

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

/* ---- one extension of the GC life time per cluster ---- */

/* Dumps of this daemon that rely on one cluster's extended GC life time. A
 * second dump would otherwise find the value extended, leave it "as is",
 * and see the first one restore it under its feet. */
#define GC_LEASES 16

static struct {
    pthread_mutex_t mu; /* also held around the extension and the restore */
    struct gc_lease {
        char cluster[128];
        unsigned holders; /* dumps still relying on it */
        char *was;        /* the value to restore */
        bool via_table, used;
    } l[GC_LEASES];
} G = {.mu = PTHREAD_MUTEX_INITIALIZER};

static tidb_gc_persist_fn persist_fn;
static void *persist_arg;

void tidb_gc_set_persist(tidb_gc_persist_fn fn, void *arg)
{
    pthread_mutex_lock(&G.mu);
    persist_fn = fn;
    persist_arg = arg;
    pthread_mutex_unlock(&G.mu);
}

/* Hands every lease to the persist hook. Called with G.mu held. */
static void persist_leases(void)
{
    if (!persist_fn)
        return;
    struct json_object *a = json_object_new_array();
    for (int i = 0; i < GC_LEASES; i++)
        if (G.l[i].used) {
            struct json_object *o = json_object_new_object();
            json_object_object_add(o, "cluster", json_object_new_string(G.l[i].cluster));
            json_object_object_add(o, "was", json_object_new_string(G.l[i].was));
            json_object_object_add(o, "via_table", json_object_new_boolean(G.l[i].via_table));
            json_object_array_add(a, o);
        }
    persist_fn(persist_arg, json_object_to_json_string(a));
    json_object_put(a);
}

size_t tidb_gc_leases_load(const char *json)
{
    struct json_object *a = json ? json_tokener_parse(json) : NULL, *c, *w, *t;
    size_t n = 0;
    pthread_mutex_lock(&G.mu);
    for (size_t i = 0; a && json_object_is_type(a, json_type_array) &&
                       i < json_object_array_length(a) && n < GC_LEASES; i++) {
        struct json_object *o = json_object_array_get_idx(a, i);
        if (!json_object_object_get_ex(o, "cluster", &c) || !json_object_object_get_ex(o, "was", &w))
            continue;
        bool via = json_object_object_get_ex(o, "via_table", &t) && json_object_get_boolean(t);
        G.l[n] = (struct gc_lease){"", 0, xstrdup(json_object_get_string(w)), via, true};
        snprintf(G.l[n].cluster, sizeof G.l[n].cluster, "%s", json_object_get_string(c));
        n++; /* holders 0: owed, the next dump of the cluster takes it on */
    }
    pthread_mutex_unlock(&G.mu);
    json_object_put(a);
    return n;
}

void tidb_gc_leases_reset(void)
{
    pthread_mutex_lock(&G.mu);
    for (int i = 0; i < GC_LEASES; i++)
        if (G.l[i].used) {
            free(G.l[i].was);
            memset(&G.l[i], 0, sizeof G.l[i]);
        }
    pthread_mutex_unlock(&G.mu);
}

static struct gc_lease *lease_find(const char *cluster)
{
    for (int i = 0; i < GC_LEASES; i++)
        if (G.l[i].used && strcmp(G.l[i].cluster, cluster) == 0)
            return &G.l[i];
    return NULL;
}

static void lease_add(const char *cluster, const char *was, bool via_table)
{
    for (int i = 0; i < GC_LEASES; i++)
        if (!G.l[i].used) {
            G.l[i] = (struct gc_lease){"", 1, xstrdup(was), via_table, true};
            snprintf(G.l[i].cluster, sizeof G.l[i].cluster, "%s", cluster);
            persist_leases();
            return;
        }
}

static void lease_drop(struct gc_lease *l)
{
    free(l->was);
    memset(l, 0, sizeof *l);
    persist_leases();
}

static void extend_gc_locked(struct sqlx *x, struct tidb_snapshot *snap, source_log_fn log,
                             void *log_arg);

static void extend_gc(struct sqlx *x, struct tidb_snapshot *snap, source_log_fn log,
                      void *log_arg)
{
    pthread_mutex_lock(&G.mu);
    struct gc_lease *l = lease_find(snap->cluster);
    if (l) {
        l->holders++;
        snap->gc_joined = true;
        source_logf(log, log_arg, "tidb_gc_life_time is extended by %s dump of this daemon on "
                                  "this cluster: sharing it (the last dump restores %s)",
                    l->holders > 1 ? "another" : "an interrupted", l->was);
    } else
        extend_gc_locked(x, snap, log, log_arg);
    pthread_mutex_unlock(&G.mu);
}

static void extend_gc_locked(struct sqlx *x, struct tidb_snapshot *snap, source_log_fn log,
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
    lease_add(snap->cluster, was, via_table);
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
    char cluster[sizeof snap->cluster];
    memcpy(cluster, snap->cluster, sizeof cluster);
    memset(snap, 0, sizeof *snap);
    memcpy(snap->cluster, cluster, sizeof cluster);
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
                    snap->gc_was ? snap->gc_was : "its value before the dump", rerr,
                    snap->gc_was ? snap->gc_was : "...");
    tidb_snapshot_clear(snap);
    return -1;
}

/* Sets the GC life time back to was, unless someone changed it meanwhile. */
static int restore_to(struct sqlx *x, const char *was, bool via_table, source_log_fn log,
                      void *log_arg, char *err, size_t errlen)
{
    bool now_via_table;
    char *now = get_gc_life_time(x, &now_via_table, err, errlen);
    if (!now)
        return -1;
    if (tidb_parse_duration(now) != tidb_parse_duration(TIDB_DUMP_GC_LIFE_TIME)) {
        source_logf(log, log_arg,
                    "tidb_gc_life_time is %s now, not the %s set for the dump: someone changed it "
                    "meanwhile, left as is",
                    now, TIDB_DUMP_GC_LIFE_TIME);
        free(now);
        return 0;
    }
    free(now);
    if (set_gc_life_time(x, via_table, was, err, errlen))
        return -1;
    source_logf(log, log_arg, "restored tidb_gc_life_time to %s", was);
    return 0;
}

static bool owes(const struct tidb_snapshot *snap)
{
    return snap->gc_changed || snap->gc_joined;
}

int tidb_gc_restore(struct sqlx *x, struct tidb_snapshot *snap, source_log_fn log,
                    void *log_arg, char *err, size_t errlen)
{
    if (!owes(snap))
        return 0;
    pthread_mutex_lock(&G.mu);
    struct gc_lease *l = lease_find(snap->cluster);
    int rc = 0;
    if (l && !snap->gc_released) {
        l->holders--;
        snap->gc_released = true;
    }
    if (l && l->holders > 0) /* others still dump: the last of them restores */
        source_logf(log, log_arg, "tidb_gc_life_time left extended: %u other dump%s of this "
                                  "daemon still rel%s on it", l->holders,
                    l->holders == 1 ? "" : "s", l->holders == 1 ? "ies" : "y");
    else if (l && (rc = restore_to(x, l->was, l->via_table, log, log_arg, err, errlen)) == 0)
        lease_drop(l);
    else if (!l && snap->gc_changed)
        rc = restore_to(x, snap->gc_was, snap->gc_via_table, log, log_arg, err, errlen);
    if (rc == 0)
        snap->gc_changed = snap->gc_joined = false;
    pthread_mutex_unlock(&G.mu);
    return rc;
}

/* ---- the whole read ---- */

void tidb_gc_restore_any(struct sqlx *x, tidb_open_fn open, void *open_arg,
                         struct tidb_snapshot *snap, source_log_fn log, void *log_arg)
{
    if (!owes(snap))
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
                "WARNING: cannot restore tidb_gc_life_time to %s (%s; %s); the next dump of "
                "this cluster will, or set it by hand: " TIDB_SQL_GC_LIFE_TIME_SET,
                snap->gc_was ? snap->gc_was : "its value before the dump", err, err2,
                snap->gc_was ? snap->gc_was : "...");
    /* The lease stays (persisted): the next dump of the cluster takes it on. */
    snap->gc_changed = snap->gc_joined = false;
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
