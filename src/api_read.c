/* api_read — the handlers that read: a collection's documents (spec,
 * status, logs, schema, channel, progress, verification), select, ping,
 * the cores' status and the tasks (see api.h). api.c holds those that
 * change something. */
#define _GNU_SOURCE
#include "tisfs/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tisfs/catalog.h"
#include "tisfs/collection.h"
#include "tisfs/gen.h"
#include "tisfs/incr.h"
#include "tisfs/metrics.h"
#include "tisfs/progress.h"
#include "tisfs/solr.h"
#include "tisfs/spec.h"
#include "tisfs/task.h"
#include "tisfs/verify.h"

/* One task's log as the collection's log shows it: each line says which
 * task wrote it ("TIME [task 7 dump] text"). */
static void add_task_lines(uint64_t id, struct tbuf *out)
{
    struct tbuf b = {0};
    cat_log_read(coll_catalog(), id, &b);
    for (const char *p = b.data ? b.data : ""; *p;) {
        size_t n = strcspn(p, "\n");
        const char *br = memchr(p, '[', n);
        if (br) {
            tbuf_add(out, p, (size_t)(br - p) + 1);
            tbuf_printf(out, "task %llu ", (unsigned long long)id);
            tbuf_add(out, br + 1, n - (size_t)(br - p) - 1);
        } else {
            tbuf_printf(out, "[task %llu] ", (unsigned long long)id);
            tbuf_add(out, p, n);
        }
        tbuf_add(out, "\n", 1);
        p += n + (p[n] == '\n');
    }
    tbuf_free(&b);
}

/* The collection's log: every task's lines, oldest task first. Only the
 * latest task's log ever grows (channel lines go to it too), so this only
 * grows: a `tail -f` reader follows it across rebuilds. */
static void collection_log(const uint64_t *ids, size_t n, struct tbuf *out)
{
    for (size_t i = 0; i < n; i++)
        add_task_lines(ids[i], out);
}

/* Status of task id: live from memory while this process runs it, else the
 * catalog's copy. Locked. */
static enum api_status status_locked(uint64_t id, struct tbuf *out)
{
    struct coll *c = coll_of_task(id);
    struct task *t = c && c->task && task_id(c->task) == id ? c->task : NULL;
    struct verify *v = c && c->verify && verify_id(c->verify) == id ? c->verify : NULL;
    char *s = t ? task_status_json(t) : v ? verify_status_json(v) : cat_task_get(coll_catalog(), id);
    if (!s)
        return API_NOT_FOUND;
    tbuf_adds(out, s);
    tbuf_adds(out, "\n");
    free(s);
    return API_OK;
}

static void reserved_status(const struct coll *c, struct tbuf *out)
{
    tbuf_printf(out,
                "{\n  \"taskid\":null,\n  \"indexName\":\"%s\",\n  \"state\":\"reserved\",\n"
                "  \"complete\":false,\n  \"faild\":false,\n  \"failed\":false,\n"
                "  \"stage\":null,\n  \"stages\":[],\n  \"progress\":null,\n  \"errs\":\"\",\n"
                "  \"started\":null,\n  \"finished\":null\n}\n",
                c->name);
}

static void emit(struct json_object *o, struct tbuf *out)
{
    tbuf_adds(out, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                        JSON_C_TO_STRING_NOSLASHESCAPE));
    tbuf_adds(out, "\n");
    json_object_put(o);
}

static void render_schema(uint64_t gen_id, struct gen *g, struct tbuf *out)
{
    struct json_object *o;
    if (g) {
        o = schema_to_json(gen_schema(g));
        json_object_object_add(o, "generation", json_object_new_int64((int64_t)gen_id));
        json_object_object_add(o, "docs", json_object_new_int64((int64_t)gen_doc_count(g)));
        /* A copy, not a reference: json-c's reference count is not atomic,
         * and concurrent readers of the shared snapshot must not write it. */
        struct json_object *snap = NULL;
        json_object_deep_copy(gen_snapshot(g), &snap, NULL);
        json_object_object_add(o, "snapshot", snap);
        json_object_object_add(o, "disk_bytes",
                               json_object_new_int64((int64_t)disk_usage(gen_dir(g))));
    } else {
        o = json_object_new_object();
        json_object_object_add(o, "fields", json_object_new_array());
        json_object_object_add(o, "primaryKey", json_object_new_array());
        json_object_object_add(o, "generation", NULL);
        json_object_object_add(o, "docs", json_object_new_int(0));
    }
    emit(o, out);
}

/* A channel that is not running says why: none was created, the first
 * build has not completed, or it stopped (its stored state tells where).
 * Locked. */
static void incr_status_locked(struct coll *c, struct tbuf *out)
{
    char *s;
    bool has = c->spec && c->spec->incr.present;
    if (c->incr)
        s = incr_status_json(c->incr, c->name);
    else if (!has)
        s = incr_status_stopped(c->name, NULL, NULL, "stopped",
                                "no incremental channel: write a channel spec to incr");
    else if (!c->gen)
        s = incr_status_stopped(c->name, &c->spec->incr, NULL, "stopped",
                                "waiting for the first build to complete");
    else
        s = incr_status_stopped(c->name, &c->spec->incr, c->gen, "stopped", "");
    tbuf_adds(out, s);
    free(s);
}

enum api_status api_read_object(const char *name, enum api_doc doc, struct json_object **out)
{
    struct tbuf b = {0};
    enum api_status st = api_read(name, doc, &b);
    struct json_object *o = st == API_OK && b.len ? json_tokener_parse(b.data) : NULL;
    tbuf_free(&b);
    if (o && !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
    *out = o;
    return st;
}

/* The progress line, from the two documents it summarises. */
static enum api_status read_progress(const char *name, struct tbuf *out)
{
    struct json_object *s = NULL, *i = NULL;
    enum api_status rc = api_read_object(name, DOC_STATUS, &s);
    coll_lock();
    struct coll *c = coll_find(name);
    bool channel = c && c->spec && c->spec->incr.present;
    coll_unlock();
    if (rc == API_OK && channel)
        rc = api_read_object(name, DOC_INCR_STATUS, &i);
    if (rc == API_OK)
        progress_line(s, i, out);
    json_object_put(s);
    json_object_put(i);
    return rc;
}

enum api_status api_read(const char *name, enum api_doc doc, struct tbuf *out)
{
    if (doc == DOC_PROGRESS)
        return read_progress(name, out);
    coll_lock();
    struct coll *c = coll_find(name);
    if (!c) {
        coll_unlock();
        return API_NOT_FOUND;
    }
    uint64_t last = coll_last_task(c), gen_id = c->gen_id, *tasks = NULL;
    size_t ntasks = doc == DOC_LOGS ? c->ntasks : 0;
    if (ntasks) {
        tasks = xmalloc(ntasks * sizeof *tasks);
        memcpy(tasks, c->tasks, ntasks * sizeof *tasks);
    }
    struct gen *g = c->gen;
    struct tis_spec *spec = c->spec && (doc == DOC_CREATE || doc == DOC_INCR)
                                ? spec_ref(c->spec) : NULL; /* rendered outside the lock */
    if (doc == DOC_STATUS && last)
        status_locked(last, out);
    else if (doc == DOC_STATUS)
        reserved_status(c, out);
    else if (doc == DOC_SCHEMA && g)
        gen_ref(g); /* rendered below, outside the lock: it reads the disk */
    else if (doc == DOC_INCR_STATUS)
        incr_status_locked(c, out);
    else if (doc == DOC_VERIFY && c->last_verify)
        status_locked(c->last_verify, out);
    else if (doc == DOC_VERIFY)
        tbuf_adds(out, "{\"state\":\"none\",\"indexName\":\"\"}\n");
    coll_unlock();
    if (doc == DOC_CREATE && spec)
        emit(spec_to_object(spec, true), out);
    else if (doc == DOC_INCR && spec && spec->incr.present) {
        char *s = spec_incr_to_json(&spec->incr);
        tbuf_adds(out, s);
        tbuf_adds(out, "\n");
        free(s);
    } else if (doc == DOC_LOGS)
        collection_log(tasks, ntasks, out);
    else if (doc == DOC_SCHEMA) {
        render_schema(gen_id, g, out);
        gen_unref(g);
    }
    spec_free(spec);
    free(tasks);
    return API_OK;
}

/* The serving generation of name (a reference: a rebuild may switch
 * generations meanwhile, this one stays), NULL when there is none. */
static enum api_status serving(const char *name, struct gen **g)
{
    coll_lock();
    struct coll *c = coll_find(name);
    *g = c ? c->gen : NULL;
    if (*g)
        gen_ref(*g);
    coll_unlock();
    return !c ? API_NOT_FOUND : !*g ? API_NOT_READY : API_OK;
}

static int solr_code(enum api_status st)
{
    return st == API_NOT_FOUND ? 404 : st == API_NOT_READY ? 503 : st == API_INVALID ? 400 : 500;
}

static enum api_status solr_refusal(enum api_status st, const char *name,
                                    struct json_object *params, struct tbuf *out)
{
    char msg[300];
    if (st == API_NOT_FOUND)
        snprintf(msg, sizeof msg, "no collection %s", name);
    else
        snprintf(msg, sizeof msg, "collection %s has no index yet: its first build has not "
                                  "completed", name);
    solr_error(solr_code(st), msg, params, out);
    return st;
}

enum api_status api_select(const char *name, const char *query, struct tbuf *out)
{
    double t0 = mono_now();
    struct search_request r;
    struct search_result res;
    char err[600];
    struct gen *g = NULL;
    enum api_status st = API_OK;
    if (solr_request_parse(query, &r, err, sizeof err)) {
        st = API_INVALID;
        solr_error(400, err, r.params, out);
    } else if ((st = serving(name, &g)) != API_OK)
        solr_refusal(st, name, r.params, out);
    else if (search_run(g, &r, &res, err, sizeof err)) {
        st = API_INVALID;
        solr_error(400, err, r.params, out);
    } else {
        solr_answer(&r, &res, (mono_now() - t0) * 1000, out);
        search_result_free(&res);
    }
    solr_request_free(&r);
    gen_unref(g);
    metrics_query(mono_now() - t0, st);
    return st;
}

enum api_status api_ping(const char *name, struct tbuf *out)
{
    struct gen *g;
    struct json_object *params = json_object_new_object();
    enum api_status st = serving(name, &g);
    if (st)
        solr_refusal(st, name, params, out);
    else
        solr_ping(params, out);
    json_object_put(params);
    gen_unref(g);
    return st;
}

void api_cores_status(const char *core, struct tbuf *out)
{
    struct solr_core *cores = NULL;
    struct gen **gens = NULL;
    size_t n = 0;
    coll_lock();
    for (struct coll *c = coll_first(); c; c = c->next) {
        if (c->deleting || (core && strcmp(core, c->name)))
            continue;
        cores = xrealloc(cores, (n + 1) * sizeof *cores);
        gens = xrealloc(gens, (n + 1) * sizeof *gens);
        cores[n] = (struct solr_core){xstrdup(c->name), 0, "", 0};
        if ((gens[n] = c->gen))
            gen_ref(c->gen);
        n++;
    }
    coll_unlock();
    for (size_t i = 0; i < n; i++)
        if (gens[i]) {
            cores[i].docs = gen_doc_count(gens[i]);
            cores[i].data_dir = gen_dir(gens[i]);
            cores[i].size_bytes = disk_usage(gen_dir(gens[i]));
        }
    solr_cores(cores, n, out);
    for (size_t i = 0; i < n; i++) {
        free((char *)cores[i].name);
        gen_unref(gens[i]);
    }
    free(cores);
    free(gens);
}

static void collect_id(uint64_t id, const char *json, void *arg)
{
    (void)json;
    struct tbuf *b = arg;
    tbuf_add(b, &id, sizeof id);
}

void api_tasks(uint64_t **ids, size_t *count)
{
    struct tbuf b = {0};
    cat_task_each(coll_catalog(), collect_id, &b);
    *count = b.len / sizeof **ids;
    *ids = (uint64_t *)tbuf_take(&b);
}

bool api_task_exists(uint64_t id)
{
    struct tbuf tmp = {0};
    bool r = api_task_read(id, DOC_STATUS, &tmp) == API_OK;
    tbuf_free(&tmp);
    return r;
}

enum api_status api_task_read(uint64_t id, enum api_doc doc, struct tbuf *out)
{
    struct tbuf status = {0};
    coll_lock();
    enum api_status st = status_locked(id, &status); /* also tells whether it exists */
    coll_unlock();
    if (st == API_OK && doc == DOC_STATUS)
        tbuf_add(out, status.data, status.len);
    tbuf_free(&status);
    if (st == API_OK && doc == DOC_LOGS)
        cat_log_read(coll_catalog(), id, out);
    return st;
}
