/* task — the build runner: stages, progress, logs, cancellation, recovery. */
#define _GNU_SOURCE
#include "tisfs/task.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tisfs/gen.h"
#include "tisfs/index.h"
#include "tisfs/source.h"
#include "tisfs/util.h"

static const char *const stage_names[] = {"dump", "join", "indexBuild", "indexBackflow"};

enum stage_state { ST_PENDING, ST_RUNNING, ST_DONE, ST_FAILED };
static const char *const state_names[] = {"pending", "running", "done", "failed"};

/* How often a running task writes its status to the catalog and a progress
 * line to its log. */
#define PERSIST_EVERY_SEC 1.0
#define LOG_PROGRESS_EVERY_SEC 5.0

struct task {
    uint64_t id;
    char *kind;
    char *collection;
    struct tis_spec *spec;
    struct task_env env;
    char *gen_dir; /* where the new generation is written */
    pthread_t thread;

    pthread_mutex_t mu; /* guards everything below */
    enum task_stage stage;
    enum stage_state st[STAGE_COUNT];
    double st_start[STAGE_COUNT], st_secs[STAGE_COUNT];
    uint64_t st_rows[STAGE_COUNT];
    uint64_t total;
    double t0;
    char started[32], finished[32];
    bool complete, failed, running;
    char errs[1024];
    char cancel_reason[128];
    struct json_object *snapshot;
    struct json_object *channel; /* the channel's start, from start_positions */
    struct source *src;          /* while dumping: task_cancel cuts its connection */
    uint64_t generation;

    atomic_uint_fast64_t rows;
    /* Nanoseconds the dump spent handing rows to the index (storing them
     * and waiting for the analyzers); the rest of the dump waits on the
     * source. Which one bounds the stage is what a user needs to know. */
    atomic_uint_fast64_t index_ns;
    atomic_bool cancel;
    double last_persist, last_progress_log;
};

/* ---- status JSON ---- */

static double rate_locked(struct task *t)
{
    double secs = t->st[STAGE_DUMP] == ST_RUNNING ? mono_now() - t->st_start[STAGE_DUMP]
                                                  : t->st_secs[STAGE_DUMP];
    uint64_t rows = atomic_load(&t->rows);
    return secs > 0 ? (double)rows / secs : 0;
}

/* Seconds rounded to milliseconds, printed as such (not 0.010999999...). */
static struct json_object *json_seconds(double secs)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.3f", secs);
    return json_object_new_double_s(secs, buf);
}

static struct json_object *progress_json(struct task *t)
{
    struct json_object *p = json_object_new_object();
    uint64_t rows = atomic_load(&t->rows);
    uint64_t total = t->complete ? rows : (t->total > rows ? t->total : rows);
    double rate = rate_locked(t);
    json_object_object_add(p, "rows", json_object_new_int64((int64_t)rows));
    json_object_object_add(p, "total", json_object_new_int64((int64_t)total));
    json_object_object_add(p, "rows_per_sec", json_object_new_int64((int64_t)rate));
    struct json_object *eta = NULL;
    if (t->complete || t->stage > STAGE_DUMP)
        eta = json_seconds(0);
    else if (rate > 0)
        eta = json_seconds((double)(total - rows) / rate);
    json_object_object_add(p, "eta_sec", eta);
    return p;
}

static struct json_object *stages_json(struct task *t)
{
    struct json_object *a = json_object_new_array();
    for (int i = 0; i < STAGE_COUNT; i++) {
        struct json_object *s = json_object_new_object();
        double secs = t->st[i] == ST_RUNNING ? mono_now() - t->st_start[i] : t->st_secs[i];
        json_object_object_add(s, "name", json_object_new_string(stage_names[i]));
        json_object_object_add(s, "state", json_object_new_string(state_names[t->st[i]]));
        json_object_object_add(s, "rows", json_object_new_int64((int64_t)t->st_rows[i]));
        json_object_object_add(s, "seconds", json_seconds(secs));
        if (i == STAGE_DUMP) {
            double index = (double)atomic_load(&t->index_ns) / 1e9;
            json_object_object_add(s, "source_seconds", json_seconds(secs > index ? secs - index : 0));
            json_object_object_add(s, "index_seconds", json_seconds(index));
        }
        json_object_array_add(a, s);
    }
    return a;
}

static char *status_locked(struct task *t)
{
    struct json_object *o = json_object_new_object();
    t->st_rows[STAGE_DUMP] = atomic_load(&t->rows);
    json_object_object_add(o, "taskid", json_object_new_int64((int64_t)t->id));
    json_object_object_add(o, "indexName", json_object_new_string(t->collection));
    json_object_object_add(o, "kind", json_object_new_string(t->kind));
    json_object_object_add(o, "complete", json_object_new_boolean(t->complete));
    json_object_object_add(o, "faild", json_object_new_boolean(t->failed));
    json_object_object_add(o, "failed", json_object_new_boolean(t->failed));
    json_object_object_add(o, "stage", json_object_new_string(stage_names[t->stage]));
    json_object_object_add(o, "stages", stages_json(t));
    json_object_object_add(o, "progress", progress_json(t));
    json_object_object_add(o, "errs", json_object_new_string(t->errs));
    json_object_object_add(o, "started", json_object_new_string(t->started));
    json_object_object_add(o, "finished", t->finished[0] ? json_object_new_string(t->finished) : NULL);
    json_object_object_add(o, "generation",
                           t->generation ? json_object_new_int64((int64_t)t->generation) : NULL);
    json_object_object_add(o, "snapshot", json_object_get(t->snapshot));
    char *r = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return r;
}

char *task_status_json(struct task *t)
{
    pthread_mutex_lock(&t->mu);
    char *r = status_locked(t);
    pthread_mutex_unlock(&t->mu);
    return r;
}

static void persist(struct task *t)
{
    char *s = task_status_json(t);
    cat_task_put(t->env.cat, t->id, s);
    free(s);
    t->last_persist = mono_now();
}

/* ---- logs ---- */

static void log_line(struct catalog *cat, uint64_t id, const char *stage, const char *fmt,
                     va_list ap)
{
    char when[32];
    struct tbuf b = {0};
    iso_now(when, true);
    tbuf_printf(&b, "%s [%s] ", when, stage);
    tbuf_vprintf(&b, fmt, ap);
    /* One event, one line: a cause with newlines (a server message) is folded. */
    for (size_t i = 0; i < b.len; i++)
        if (b.data[i] == '\n' || b.data[i] == '\r')
            b.data[i] = ' ';
    cat_log_append(cat, id, b.data);
    tbuf_free(&b);
}

void task_log(struct task *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line(t->env.cat, t->id, stage_names[t->stage], fmt, ap);
    va_end(ap);
}

static void log_to(struct catalog *cat, uint64_t id, const char *stage, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void task_log_to(struct catalog *cat, uint64_t id, const char *stage, const char *line)
{
    log_to(cat, id, stage, "%s", line);
}

static void log_to(struct catalog *cat, uint64_t id, const char *stage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line(cat, id, stage, fmt, ap);
    va_end(ap);
}

/* ---- stages ---- */

static void stage_enter(struct task *t, enum task_stage s)
{
    pthread_mutex_lock(&t->mu);
    t->stage = s;
    t->st[s] = ST_RUNNING;
    t->st_start[s] = mono_now();
    pthread_mutex_unlock(&t->mu);
    persist(t);
}

static bool stage_leave(struct task *t, bool ok)
{
    pthread_mutex_lock(&t->mu);
    enum task_stage s = t->stage;
    t->st[s] = ok ? ST_DONE : ST_FAILED;
    t->st_secs[s] = mono_now() - t->st_start[s];
    pthread_mutex_unlock(&t->mu);
    if (ok)
        task_log(t, "%s done in %.3f s", stage_names[s], t->st_secs[s]);
    if (ok && s == STAGE_DUMP) {
        double index = (double)atomic_load(&t->index_ns) / 1e9, src = t->st_secs[s] - index;
        task_log(t, "dump: %.3f s waiting for the source, %.3f s storing and analysing rows: %s",
                 src > 0 ? src : 0, index,
                 index > src ? "the analyzers bound this stage, not the database"
                             : "the source bounds this stage");
    }
    return ok;
}

/* Records the cause of a failure (the first one wins). */
static bool stage_fail(struct task *t, const char *cause)
{
    pthread_mutex_lock(&t->mu);
    if (!t->errs[0]) {
        if (atomic_load(&t->cancel))
            cause = t->cancel_reason;
        snprintf(t->errs, sizeof t->errs, "%s: %s", stage_names[t->stage], cause);
    }
    pthread_mutex_unlock(&t->mu);
    task_log(t, "FAILED: %s", cause);
    return stage_leave(t, false);
}

struct dump_ctx {
    struct task *t;
    struct gen_builder *b;
    char err[512];
};

static void dump_tick(struct task *t)
{
    double now = mono_now();
    if (now - t->last_persist >= PERSIST_EVERY_SEC)
        persist(t);
    if (now - t->last_progress_log >= LOG_PROGRESS_EVERY_SEC) {
        t->last_progress_log = now;
        pthread_mutex_lock(&t->mu);
        double rate = rate_locked(t);
        pthread_mutex_unlock(&t->mu);
        task_log(t, "%llu of ~%llu rows, %.0f rows/s",
                 (unsigned long long)atomic_load(&t->rows), (unsigned long long)t->total, rate);
    }
}

static int dump_row(void *arg, const struct tis_value *vals)
{
    struct dump_ctx *c = arg;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = gen_builder_add(c->b, vals, c->err, sizeof c->err);
    clock_gettime(CLOCK_MONOTONIC, &b);
    atomic_fetch_add(&c->t->index_ns, (uint64_t)((b.tv_sec - a.tv_sec) * 1000000000LL +
                                                  (b.tv_nsec - a.tv_nsec)));
    if (rc)
        return 1;
    if ((atomic_fetch_add(&c->t->rows, 1) & 1023) == 1023)
        dump_tick(c->t);
    return 0;
}

static void source_log(void *arg, const char *line)
{
    task_log(arg, "%s", line);
}

static struct source *dump_open_source(struct task *t, char *err, size_t errlen)
{
    const struct tis_datasource *ds = &t->spec->ds;
    if (ds->plugin == PLUGIN_TIKV)
        task_log(t, "TiKV plugin: connecting as %s to database %s on a TiDB %s", ds->user, ds->db,
                 ds->tidb_addr && *ds->tidb_addr ? "given by tidbAddr" : "found through PD");
    else
        task_log(t, "connecting to %s@%s:%d, database %s", ds->user, ds->host, ds->port, ds->db);
    struct source *src = source_connect(ds, source_log, t, err, errlen);
    if (src)
        task_log(t, "connected: server %s", source_server_version(src));
    return src;
}

static void log_schema(struct task *t, const struct tis_schema *sc)
{
    struct tbuf b = {0};
    for (size_t i = 0; i < sc->nfields; i++)
        tbuf_printf(&b, "%s%s %s%s", i ? ", " : "", sc->fields[i].name, sc->fields[i].source_type,
                    sc->fields[i].pk ? " (pk)" : "");
    task_log(t, "table %s.%s: %zu fields: %s", t->spec->ds.db, t->spec->table, sc->nfields, b.data);
    tbuf_free(&b);
}

static bool dump_stream(struct task *t, struct source *src, const struct tis_schema *sc,
                        struct gen_builder **bp, const char *dir, char *err, size_t errlen)
{
    struct json_object *snap = NULL;
    /* The channel's start is read before the snapshot: whatever arrives in
     * between is then replayed, never lost. */
    if (t->env.start_positions)
        t->channel = t->env.start_positions(t->env.backflow_arg, t, t->collection);
    if (t->channel)
        task_log(t, "the incremental channel of this generation starts at %s",
                 json_object_to_json_string(t->channel));
    if (source_begin_snapshot(src, &snap, err, errlen))
        return false;
    pthread_mutex_lock(&t->mu);
    t->snapshot = snap;
    pthread_mutex_unlock(&t->mu);
    task_log(t, "snapshot: %s", json_object_to_json_string(snap));
    struct dump_ctx c = {t, NULL, ""};
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", dir);
    *strrchr(parent, '/') = 0; /* the collection's directory; the builder makes dir */
    int rc = mkdir_p(parent, 0700);
    if (rc) {
        snprintf(err, errlen, "cannot create the collection directory: %s", strerror(-rc));
        return false;
    }
    struct analysis_opts opts = {t->spec->min_gram, t->spec->max_gram};
    if (!(c.b = gen_builder_open(dir, sc, &opts, err, errlen)))
        return false;
    gen_builder_set_cancel(c.b, &t->cancel);
    *bp = c.b;
    rc = source_stream(src, t->spec, sc, dump_row, &c, &t->cancel, err, errlen);
    if (rc && c.err[0])
        snprintf(err, errlen, "%s", c.err);
    return rc == 0;
}

static bool stage_dump(struct task *t, struct gen_builder **bp, const char *dir)
{
    char err[1024] = "";
    stage_enter(t, STAGE_DUMP);
    struct tis_schema *sc = NULL;
    struct source *src = dump_open_source(t, err, sizeof err);
    pthread_mutex_lock(&t->mu);
    t->src = src;
    bool cancelled = atomic_load(&t->cancel);
    pthread_mutex_unlock(&t->mu);
    if (cancelled && src) /* cancelled while connecting */
        source_abort(src);
    if (src && (sc = source_describe(src, t->spec, err, sizeof err)) && sc->nfields > 256) {
        /* Field ids are one byte: field 257 would alias field 1. */
        snprintf(err, sizeof err, "%zu fields (the listed columns and the primary key): a "
                                  "collection has at most 256", sc->nfields);
        schema_free(sc);
        sc = NULL;
    }
    if (sc) {
        log_schema(t, sc);
        t->total = source_estimate_rows(src, t->spec);
        task_log(t, "server estimates %llu rows", (unsigned long long)t->total);
    }
    bool ok = sc && dump_stream(t, src, sc, bp, dir, err, sizeof err);
    pthread_mutex_lock(&t->mu);
    t->src = NULL;
    pthread_mutex_unlock(&t->mu);
    source_close(src);
    schema_free(sc);
    if (!ok)
        return stage_fail(t, err[0] ? err : "unknown error");
    task_log(t, "dumped %llu rows", (unsigned long long)atomic_load(&t->rows));
    return stage_leave(t, true);
}

static bool stage_join(struct task *t)
{
    stage_enter(t, STAGE_JOIN);
    task_log(t, "single-table collection: nothing to join");
    return stage_leave(t, true);
}

static bool stage_index_build(struct task *t, struct gen_builder *b)
{
    char err[512];
    stage_enter(t, STAGE_INDEX_BUILD);
    if (atomic_load(&t->cancel))
        return stage_fail(t, "cancelled");
    if (gen_builder_finish(b, t->snapshot, err, sizeof err))
        return stage_fail(t, err);
    uint64_t rows = gen_builder_rows(b);
    pthread_mutex_lock(&t->mu); /* status readers read it */
    t->st_rows[STAGE_INDEX_BUILD] = rows;
    pthread_mutex_unlock(&t->mu);
    uint64_t cut = gen_builder_truncated(b);
    if (cut)
        task_log(t, "%llu value%s indexed only up to %zu MiB or %u tokens: the text beyond is "
                    "stored and shown but not searchable", (unsigned long long)cut,
                 cut == 1 ? " was" : "s were", INDEX_MAX_BYTES_PER_VALUE >> 20,
                 INDEX_MAX_TOKENS_PER_VALUE);
    return stage_leave(t, true);
}

static bool stage_backflow(struct task *t, const char *dir)
{
    char err[512] = "";
    stage_enter(t, STAGE_INDEX_BACKFLOW);
    if (atomic_load(&t->cancel))
        return stage_fail(t, "cancelled");
    if (t->env.backflow(t->env.backflow_arg, t, t->collection, dir, t->id, t->channel, err,
                        sizeof err))
        return stage_fail(t, err);
    pthread_mutex_lock(&t->mu);
    t->generation = t->id;
    t->st_rows[STAGE_INDEX_BACKFLOW] = atomic_load(&t->rows);
    pthread_mutex_unlock(&t->mu);
    task_log(t, "collection %s now serves generation %llu (%llu documents)", t->collection,
             (unsigned long long)t->id, (unsigned long long)atomic_load(&t->rows));
    return stage_leave(t, true);
}

static void finish(struct task *t, bool ok)
{
    pthread_mutex_lock(&t->mu);
    t->complete = ok;
    t->failed = !ok;
    t->running = false;
    iso_now(t->finished, false);
    pthread_mutex_unlock(&t->mu);
    task_log(t, ok ? "task %llu complete in %.1f s" : "task %llu failed after %.1f s",
             (unsigned long long)t->id, mono_now() - t->t0);
    persist(t);
    cat_sync(t->env.cat);
}

static void *run(void *arg)
{
    struct task *t = arg;
    struct gen_builder *b = NULL;
    const char *dir = t->gen_dir;
    task_log(t, "task %llu (%s) started for collection %s", (unsigned long long)t->id, t->kind,
             t->collection);
    bool ok = stage_dump(t, &b, dir) && stage_join(t) && stage_index_build(t, b);
    gen_builder_free(b);
    ok = ok && stage_backflow(t, dir);
    if (!ok)
        rm_rf(dir);
    finish(t, ok);
    return NULL;
}

struct task *task_start(uint64_t id, const char *kind, struct tis_spec *spec,
                        const struct task_env *env)
{
    struct task *t = xcalloc(1, sizeof *t);
    t->id = id;
    t->kind = xstrdup(kind);
    t->collection = xstrdup(spec->index_name);
    t->spec = spec_ref(spec);
    t->env = *env;
    t->gen_dir = xstrdup(env->gen_dir);
    t->env.gen_dir = t->gen_dir;
    pthread_mutex_init(&t->mu, NULL);
    t->t0 = mono_now();
    t->running = true;
    iso_now(t->started, false);
    atomic_init(&t->rows, 0);
    atomic_init(&t->cancel, false);
    persist(t);
    if (pthread_create(&t->thread, NULL, run, t) != 0)
        abort();
    return t;
}

void task_record_failure(struct catalog *cat, uint64_t id, const char *kind,
                         const char *collection, const char *why)
{
    struct task t = {.id = id, .kind = (char *)kind, .collection = (char *)collection};
    t.env.cat = cat;
    pthread_mutex_init(&t.mu, NULL);
    iso_now(t.started, false);
    memcpy(t.finished, t.started, sizeof t.finished);
    t.failed = true;
    t.st[STAGE_DUMP] = ST_FAILED;
    snprintf(t.errs, sizeof t.errs, "%s", why);
    log_to(cat, id, "spec", "task %llu (%s) for collection %s refused: %s",
           (unsigned long long)id, kind, collection, why);
    persist(&t);
    pthread_mutex_destroy(&t.mu);
}

uint64_t task_id(const struct task *t)
{
    return t->id;
}

bool task_running(struct task *t)
{
    pthread_mutex_lock(&t->mu);
    bool r = t->running;
    pthread_mutex_unlock(&t->mu);
    return r;
}

void task_cancel(struct task *t, const char *reason)
{
    pthread_mutex_lock(&t->mu);
    snprintf(t->cancel_reason, sizeof t->cancel_reason, "%s", reason);
    atomic_store(&t->cancel, true);
    /* A dump blocked on a stalled server would notice only at its next row
     * (an hour's read timeout): cut its connection now. */
    if (t->src)
        source_abort(t->src);
    pthread_mutex_unlock(&t->mu);
}

bool task_cancelled(struct task *t)
{
    return atomic_load(&t->cancel);
}

void task_join_free(struct task *t)
{
    if (!t)
        return;
    pthread_join(t->thread, NULL);
    spec_free(t->spec);
    json_object_put(t->snapshot);
    json_object_put(t->channel);
    pthread_mutex_destroy(&t->mu);
    free(t->kind);
    free(t->collection);
    free(t->gen_dir);
    free(t);
}

/* ---- recovery ---- */

/* Whether the catalog already names task id's generation as its
 * collection's: the switch was recorded, and only the task's own status
 * missed it (a kill between the two writes). */
static bool switched(struct catalog *cat, struct json_object *task, uint64_t id)
{
    struct json_object *name, *rec, *gen;
    if (!json_object_object_get_ex(task, "indexName", &name))
        return false;
    char *s = cat_coll_get(cat, json_object_get_string(name));
    rec = s ? json_tokener_parse(s) : NULL;
    free(s);
    bool r = rec && json_object_object_get_ex(rec, "generation", &gen) &&
             (uint64_t)json_object_get_int64(gen) == id;
    json_object_put(rec);
    return r;
}

/* A task whose switch was recorded is complete, whatever its status said. */
static void recover_complete(struct catalog *cat, uint64_t id, struct json_object *o)
{
    char when[32];
    struct json_object *stages;
    iso_now(when, false);
    json_object_object_add(o, "complete", json_object_new_boolean(true));
    json_object_object_add(o, "stage", json_object_new_string(stage_names[STAGE_INDEX_BACKFLOW]));
    json_object_object_add(o, "finished", json_object_new_string(when));
    if (json_object_object_get_ex(o, "stages", &stages))
        for (size_t i = 0; i < json_object_array_length(stages); i++)
            json_object_object_add(json_object_array_get_idx(stages, i), "state",
                                   json_object_new_string("done"));
    cat_task_put(cat, id, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE));
    log_to(cat, id, "indexBackflow", "the daemon stopped after the switch to this generation was "
                                     "recorded: the task is complete");
}

static void recover_one(uint64_t id, const char *json, void *arg)
{
    struct catalog *cat = arg;
    struct json_object *o = json_tokener_parse(json), *v;
    if (!o)
        return;
    bool done = (json_object_object_get_ex(o, "complete", &v) && json_object_get_boolean(v)) ||
                (json_object_object_get_ex(o, "failed", &v) && json_object_get_boolean(v));
    if (!done && switched(cat, o, id)) {
        recover_complete(cat, id, o);
        done = true;
    }
    if (!done) {
        char when[32], errs[256];
        const char *stage = json_object_object_get_ex(o, "stage", &v) ? json_object_get_string(v)
                                                                       : "dump";
        iso_now(when, false);
        snprintf(errs, sizeof errs,
                 "%s: interrupted: the daemon stopped while this task was running", stage);
        json_object_object_add(o, "faild", json_object_new_boolean(true));
        json_object_object_add(o, "failed", json_object_new_boolean(true));
        json_object_object_add(o, "errs", json_object_new_string(errs));
        json_object_object_add(o, "finished", json_object_new_string(when));
        struct json_object *stages;
        if (json_object_object_get_ex(o, "stages", &stages))
            for (size_t i = 0; i < json_object_array_length(stages); i++) {
                struct json_object *s = json_object_array_get_idx(stages, i), *st;
                if (json_object_object_get_ex(s, "state", &st) &&
                    strcmp(json_object_get_string(st), "running") == 0)
                    json_object_object_add(s, "state", json_object_new_string("failed"));
            }
        cat_task_put(cat, id, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                                    JSON_C_TO_STRING_NOSLASHESCAPE));
        log_to(cat, id, stage, "FAILED: %s", errs);
    }
    json_object_put(o);
}

void task_recover_interrupted(struct catalog *cat)
{
    cat_task_each(cat, recover_one, cat);
    cat_sync(cat);
}
