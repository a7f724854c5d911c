/* api — the handlers: collections, create, build, status, logs, delete. */
#define _GNU_SOURCE
#include "tisfs/api.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tisfs/catalog.h"
#include "tisfs/gen.h"
#include "tisfs/incr.h"
#include "tisfs/search.h"
#include "tisfs/spec.h"
#include "tisfs/task.h"

struct coll {
    char name[TIS_NAME_MAX + 1];
    char created[32];
    struct tis_spec *spec; /* NULL until a spec is accepted */
    struct gen *gen;       /* the serving generation, NULL before the first build */
    uint64_t gen_id;
    uint64_t last_task;
    struct task *task; /* the latest task started by this process */
    struct incr *incr; /* the running channel, NULL when none runs */
    bool deleting;
    struct coll *next;
};

static struct {
    pthread_mutex_t mu; /* guards colls and every struct coll */
    struct catalog *cat;
    char *data;
    struct coll *colls;
} A = {.mu = PTHREAD_MUTEX_INITIALIZER};

static struct coll *find(const char *name)
{
    for (struct coll *c = A.colls; c; c = c->next)
        if (strcmp(c->name, name) == 0 && !c->deleting)
            return c;
    return NULL;
}

static void coll_dir(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/collections/%s", A.data, name);
}

static void gen_path(const char *name, uint64_t id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/collections/%s/gen-%llu", A.data, name, (unsigned long long)id);
}

static void persist_coll(const struct coll *c)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(c->name));
    json_object_object_add(o, "created", json_object_new_string(c->created));
    if (c->spec) {
        char *s = spec_to_json(c->spec, false);
        json_object_object_add(o, "spec", json_tokener_parse(s));
        free(s);
    }
    json_object_object_add(o, "generation", json_object_new_int64((int64_t)c->gen_id));
    json_object_object_add(o, "last_task", json_object_new_int64((int64_t)c->last_task));
    cat_coll_put(A.cat, c->name, json_object_to_json_string(o));
    json_object_put(o);
}

/* ---- the incremental channel ---- */

/* Channel events go to the collection's log: the latest task's. */
static void channel_log(void *arg, const char *line)
{
    struct coll *c = arg;
    pthread_mutex_lock(&A.mu);
    uint64_t id = c->last_task;
    pthread_mutex_unlock(&A.mu);
    if (id)
        task_log_to(A.cat, id, "incr", line);
}

static struct incr *channel_start(struct coll *c, struct gen *g, enum incr_mode mode)
{
    return incr_start(c->name, &c->spec->incr, c->spec->ds.db, c->spec->table, g, mode,
                      channel_log, c);
}

/* Starts the channel of c when it has one and an index to apply it to.
 * Called with A.mu held (incr_start does not wait for anything). */
static void channel_start_locked(struct coll *c)
{
    if (c->spec && c->spec->incr.present && c->gen && !c->incr && !c->deleting)
        c->incr = channel_start(c, c->gen, INCR_FOLLOW);
}

/* Takes the channel away from c; the caller stops it outside A.mu (its
 * thread may be waiting for A.mu to log a line). */
static struct incr *channel_take_locked(struct coll *c)
{
    struct incr *ch = c->incr;
    c->incr = NULL;
    return ch;
}

/* ---- start-up ---- */

static int64_t jint(struct json_object *o, const char *k)
{
    struct json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

/* Removes generation directories that no collection serves: leftovers of
 * builds that were interrupted before their indexBackflow. */
static void remove_stale_generations(const struct coll *c)
{
    char dir[4096], keep[64], path[8192];
    coll_dir(c->name, dir, sizeof dir);
    snprintf(keep, sizeof keep, "gen-%llu", (unsigned long long)c->gen_id);
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (strncmp(e->d_name, "gen-", 4) == 0 && strcmp(e->d_name, keep) != 0) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            rm_rf(path);
        }
    if (d)
        closedir(d);
}

static void load_coll(const char *name, const char *json, void *arg)
{
    (void)arg;
    char err[512], dir[4096];
    struct json_object *o = json_tokener_parse(json), *v;
    struct coll *c = xcalloc(1, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    if (o && json_object_object_get_ex(o, "created", &v))
        snprintf(c->created, sizeof c->created, "%s", json_object_get_string(v));
    if (o && json_object_object_get_ex(o, "spec", &v) && json_object_is_type(v, json_type_object))
        c->spec = spec_from_json(name, v, err, sizeof err);
    c->gen_id = (uint64_t)jint(o, "generation");
    c->last_task = (uint64_t)jint(o, "last_task");
    if (c->gen_id) {
        gen_path(name, c->gen_id, dir, sizeof dir);
        if (!(c->gen = gen_open(dir, err, sizeof err)))
            fprintf(stderr, "tisfs: collection %s: cannot open its generation: %s\n", name, err);
    }
    remove_stale_generations(c);
    c->next = A.colls;
    A.colls = c;
    json_object_put(o);
}

int api_init(const char *data_dir, char *err, size_t errlen)
{
    char path[4096];
    A.data = xstrdup(data_dir);
    snprintf(path, sizeof path, "%s/collections", data_dir);
    int rc = mkdir_p(path, 0700);
    if (rc) {
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    snprintf(path, sizeof path, "%s/catalog", data_dir);
    if (!(A.cat = cat_open(path, err, errlen)))
        return -EIO;
    task_recover_interrupted(A.cat);
    cat_coll_each(A.cat, load_coll, NULL);
    pthread_mutex_lock(&A.mu);
    for (struct coll *c = A.colls; c; c = c->next)
        channel_start_locked(c);
    pthread_mutex_unlock(&A.mu);
    return 0;
}

void api_shutdown(void)
{
    pthread_mutex_lock(&A.mu);
    for (struct coll *c = A.colls; c; c = c->next)
        if (c->task)
            task_cancel(c->task, "interrupted: the daemon is shutting down");
    pthread_mutex_unlock(&A.mu);
    for (struct coll *c = A.colls; c; c = c->next) {
        pthread_mutex_lock(&A.mu);
        struct incr *ch = channel_take_locked(c);
        pthread_mutex_unlock(&A.mu);
        incr_stop(ch);
    }
    /* Tasks finish without taking A.mu except in backflow, which a cancelled
     * task skips; joining outside the lock keeps that path free anyway. */
    while (A.colls) {
        struct coll *c = A.colls;
        A.colls = c->next;
        task_join_free(c->task);
        /* A backflow that was cut short puts the old channel back: stop it. */
        incr_stop(c->incr);
        gen_unref(c->gen);
        spec_free(c->spec);
        free(c);
    }
    cat_close(A.cat);
    A.cat = NULL;
    free(A.data);
    A.data = NULL;
}

/* ---- collections ---- */

void api_collections(struct tbuf *names, size_t *count)
{
    *count = 0;
    pthread_mutex_lock(&A.mu);
    for (struct coll *c = A.colls; c; c = c->next)
        if (!c->deleting) {
            tbuf_add(names, c->name, strlen(c->name) + 1);
            (*count)++;
        }
    pthread_mutex_unlock(&A.mu);
}

bool api_collection_exists(const char *name)
{
    pthread_mutex_lock(&A.mu);
    bool r = find(name) != NULL;
    pthread_mutex_unlock(&A.mu);
    return r;
}

static int say(struct tbuf *msg, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int say(struct tbuf *msg, int rc, const char *fmt, ...)
{
    if (msg) {
        va_list ap;
        va_start(ap, fmt);
        tbuf_vprintf(msg, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int api_reserve(const char *name, struct tbuf *msg)
{
    if (strlen(name) > TIS_NAME_MAX)
        return say(msg, -ENAMETOOLONG, "collection name longer than %d characters", TIS_NAME_MAX);
    if (!name_is_valid(name))
        return say(msg, -EINVAL, "collection name \"%s\": use only A-Z a-z 0-9 _ -", name);
    pthread_mutex_lock(&A.mu);
    int rc = 0;
    bool busy = false;
    for (struct coll *c = A.colls; c; c = c->next)
        busy |= strcmp(c->name, name) == 0;
    if (busy)
        rc = say(msg, -EEXIST, "collection %s exists", name);
    else {
        struct coll *c = xcalloc(1, sizeof *c);
        snprintf(c->name, sizeof c->name, "%s", name);
        iso_now(c->created, false);
        c->next = A.colls;
        A.colls = c;
        persist_coll(c);
        cat_sync(A.cat);
    }
    pthread_mutex_unlock(&A.mu);
    return rc;
}

struct task_ids {
    const char *name;
    uint64_t *ids;
    size_t n;
};

static void collect_task(uint64_t id, const char *json, void *arg)
{
    struct task_ids *t = arg;
    struct json_object *o = json_tokener_parse(json), *v;
    if (!t->name || (o && json_object_object_get_ex(o, "indexName", &v) &&
                     strcmp(json_object_get_string(v), t->name) == 0)) {
        t->ids = xrealloc(t->ids, (t->n + 1) * sizeof *t->ids);
        t->ids[t->n++] = id;
    }
    json_object_put(o);
}

int api_delete(const char *name, struct tbuf *msg)
{
    pthread_mutex_lock(&A.mu);
    struct coll *c = find(name);
    if (!c) {
        pthread_mutex_unlock(&A.mu);
        return say(msg, -ENOENT, "no collection %s", name);
    }
    c->deleting = true;
    struct task *t = c->task;
    c->task = NULL;
    struct incr *ch = channel_take_locked(c);
    pthread_mutex_unlock(&A.mu);
    incr_stop(ch);

    if (t) {
        task_cancel(t, "interrupted: the collection was deleted");
        task_join_free(t);
    }
    struct task_ids ids = {name, NULL, 0};
    cat_task_each(A.cat, collect_task, &ids);
    for (size_t i = 0; i < ids.n; i++)
        cat_task_del(A.cat, ids.ids[i]);
    free(ids.ids);
    cat_coll_del(A.cat, name);
    cat_sync(A.cat);

    pthread_mutex_lock(&A.mu);
    for (struct coll **p = &A.colls; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    pthread_mutex_unlock(&A.mu);
    char dir[4096];
    coll_dir(name, dir, sizeof dir);
    if (c->gen) {
        gen_doom(c->gen);
        gen_unref(c->gen);
    }
    rm_rf(dir);
    spec_free(c->spec);
    free(c);
    return 0;
}

/* ---- tasks ---- */

/* Where the channel of a new generation starts: the serving generation's
 * committed positions (nothing after them is applied yet, so the new one
 * replays exactly that), else, for "latest", the topic's end now. */
static struct json_object *start_positions(void *arg, struct task *t, const char *name)
{
    (void)arg;
    pthread_mutex_lock(&A.mu);
    struct coll *c = find(name);
    struct gen *g = c && c->spec && c->spec->incr.present ? c->gen : NULL;
    struct tis_incr_spec *in = c && c->spec && c->spec->incr.present ? &c->spec->incr : NULL;
    struct tis_incr_spec copy = {0};
    if (in)
        spec_incr_copy(&copy, in); /* read outside the lock below */
    if (g)
        gen_ref(g);
    pthread_mutex_unlock(&A.mu);
    struct json_object *pos = g ? gen_channel_state(g) : NULL;
    char err[512] = "";
    if (!pos && in && !(pos = incr_positions_now(&copy, err, sizeof err)) && err[0])
        task_log(t, "cannot read the topic's end offsets (%s): the channel will start at the "
                    "%s offsets when it starts", err, copy.offset_reset);
    gen_unref(g);
    spec_incr_free(&copy);
    return pos;
}

/* Seconds a catch-up may spend unable to reach the broker before the
 * switch goes ahead without it: the new generation keeps its positions, and
 * its channel takes over from them once the broker answers. */
#define CATCH_UP_UNREACHABLE_SEC 30.0

enum catch_up { CAUGHT_UP, GAVE_UP, UNREACHABLE };

/* Runs a catch-up channel on g until it has applied what the topic held
 * when it started, the task is cancelled, the broker stays unreachable, or
 * timeout passes. */
static enum catch_up catch_up(struct coll *c, struct task *t, struct gen *g, double timeout)
{
    struct incr *ch = channel_start(c, g, INCR_CATCH_UP);
    double end = mono_now() + timeout, ok_at = mono_now();
    int r = 0;
    while (!r && !task_cancelled(t) && mono_now() < end) {
        r = incr_wait(ch, 0.2);
        if (!incr_failing(ch))
            ok_at = mono_now();
        else if (mono_now() - ok_at > CATCH_UP_UNREACHABLE_SEC) {
            task_log(t, "the broker has been unreachable for %.0f s: switching without the "
                        "catch-up; the channel resumes from the stored positions",
                     CATCH_UP_UNREACHABLE_SEC);
            incr_stop(ch);
            return UNREACHABLE;
        }
    }
    if (r < 0) {
        char *st = incr_status_json(ch, c->name);
        task_log(t, "the catch-up channel stopped: %s", st);
        free(st);
    }
    incr_stop(ch);
    return r > 0 ? CAUGHT_UP : GAVE_UP;
}

/* indexBackflow with a channel: the new generation catches up from its
 * start while the old one still serves and follows; then the old channel
 * stops, the new generation takes the last few events, and the switch
 * happens with nothing in between left out or applied twice. A first build
 * serves nothing yet: it switches at once and its channel catches up after. */
static int channel_handover(struct coll *c, struct task *t, struct gen *g,
                            struct json_object *channel, char *err, size_t errlen)
{
    if (channel && gen_set_channel_state(g, channel, err, errlen))
        return -1;
    pthread_mutex_lock(&A.mu);
    bool serving = c->gen != NULL;
    pthread_mutex_unlock(&A.mu);
    if (!serving)
        return 0;
    task_log(t, "catching up the new generation with the change stream");
    enum catch_up r = catch_up(c, t, g, 600);
    if (r == GAVE_UP)
        task_log(t, "the new generation did not catch up within 600 s: switching anyway after a "
                    "last catch-up");
    pthread_mutex_lock(&A.mu);
    struct incr *old = channel_take_locked(c);
    pthread_mutex_unlock(&A.mu);
    incr_stop(old);
    if (r != UNREACHABLE)
        catch_up(c, t, g, 60);
    if (task_cancelled(t)) {
        snprintf(err, errlen, "cancelled");
        return -1;
    }
    return 0;
}

static int backflow(void *arg, struct task *t, const char *name, const char *dir,
                    uint64_t gen_id, struct json_object *channel, char *err, size_t errlen)
{
    (void)arg;
    struct gen *g = gen_open(dir, err, errlen);
    if (!g)
        return -1;
    pthread_mutex_lock(&A.mu);
    struct coll *c = find(name);
    bool has_channel = c && c->spec && c->spec->incr.present;
    pthread_mutex_unlock(&A.mu);
    if (has_channel && channel_handover(c, t, g, channel, err, errlen)) {
        gen_doom(g);
        gen_unref(g);
        pthread_mutex_lock(&A.mu);
        if ((c = find(name)) != NULL)
            channel_start_locked(c); /* the old generation goes on following */
        pthread_mutex_unlock(&A.mu);
        return -1;
    }
    pthread_mutex_lock(&A.mu);
    struct gen *old = NULL;
    if ((c = find(name)) != NULL) {
        old = c->gen;
        c->gen = g;
        c->gen_id = gen_id;
        persist_coll(c);
        cat_sync(A.cat);
        channel_start_locked(c);
    }
    pthread_mutex_unlock(&A.mu);
    if (!c) {
        snprintf(err, errlen, "collection %s was deleted", name);
        old = g;
    }
    if (old) {
        gen_doom(old);
        gen_unref(old);
    }
    return c ? 0 : -1;
}

/* Checks that c can take a new task now; called with A.mu held. */
static int can_start(struct coll *c, const char *what, struct tbuf *msg)
{
    if (c->task && task_running(c->task)) {
        task_log(c->task, "refused a %s request: this task is still running", what);
        return say(msg, -EBUSY, "collection %s: task %llu is still running; try again when it "
                                "has finished", c->name, (unsigned long long)task_id(c->task));
    }
    return 0;
}

static uint64_t start_locked(struct coll *c, const char *kind)
{
    char dir[4096];
    coll_dir(c->name, dir, sizeof dir);
    struct task_env env = {A.cat, dir, backflow, start_positions, NULL};
    task_join_free(c->task); /* the previous one has finished */
    uint64_t id = cat_task_new_id(A.cat);
    c->task = task_start(id, kind, c->spec, &env);
    c->last_task = id;
    persist_coll(c);
    return id;
}

static int refuse_spec(const char *name, const char *why, uint64_t *taskid, struct tbuf *msg)
{
    uint64_t id = cat_task_new_id(A.cat);
    task_record_failure(A.cat, id, "create", name, why);
    pthread_mutex_lock(&A.mu);
    struct coll *c = find(name);
    if (c) {
        c->last_task = id;
        persist_coll(c);
    }
    pthread_mutex_unlock(&A.mu);
    cat_sync(A.cat);
    if (taskid)
        *taskid = id;
    return say(msg, -EINVAL, "%s", why);
}

static int check_create(const char *name, struct tbuf *msg)
{
    struct coll *c = find(name);
    if (!c)
        return say(msg, -ENOENT, "no collection %s (mkdir it first)", name);
    int rc = can_start(c, "create", msg);
    if (!rc && c->gen)
        rc = say(msg, -EEXIST, "collection %s is built already; write to its build file to "
                               "rebuild it", name);
    return rc;
}

int api_create(const char *name, const char *body, size_t len, uint64_t *taskid,
               struct tbuf *msg)
{
    pthread_mutex_lock(&A.mu);
    int rc = check_create(name, msg);
    pthread_mutex_unlock(&A.mu);
    if (rc)
        return rc;
    char err[1024];
    struct tis_spec *spec = spec_parse(name, body, len, err, sizeof err);
    if (!spec)
        return refuse_spec(name, err, taskid, msg);

    pthread_mutex_lock(&A.mu);
    rc = check_create(name, msg); /* again: the lock was let go while parsing */
    struct coll *c = find(name);
    if (!rc) {
        spec_free(c->spec);
        c->spec = spec;
        spec = NULL;
        uint64_t id = start_locked(c, "create");
        if (taskid)
            *taskid = id;
    }
    pthread_mutex_unlock(&A.mu);
    spec_free(spec);
    return rc;
}

int api_build(const char *name, uint64_t *taskid, struct tbuf *msg)
{
    pthread_mutex_lock(&A.mu);
    struct coll *c = find(name);
    int rc = 0;
    if (!c)
        rc = say(msg, -ENOENT, "no collection %s", name);
    else if (!c->spec)
        rc = say(msg, -EINVAL, "collection %s has no spec yet: write one to its create file first",
                 name);
    else if (!(rc = can_start(c, "build", msg))) {
        uint64_t id = start_locked(c, "build");
        if (taskid)
            *taskid = id;
    }
    pthread_mutex_unlock(&A.mu);
    return rc;
}

int api_create_incr_check(const char *name, struct tbuf *msg)
{
    struct tbuf why = {0};
    pthread_mutex_lock(&A.mu);
    struct coll *c = find(name);
    uint64_t task = c ? c->last_task : 0;
    int rc = !c ? -ENOENT : 0;
    if (c && c->spec && c->spec->incr.present)
        rc = say(&why, -EEXIST, "refused a second incremental channel: collection %s has one "
                                "already (topic %s); rm -r the collection to start over",
                 name, c->spec->incr.topic);
    pthread_mutex_unlock(&A.mu);
    if (rc == -EEXIST && task)
        task_log_to(A.cat, task, "incr", why.data);
    if (msg && why.len)
        tbuf_adds(msg, why.data);
    tbuf_free(&why);
    return rc;
}

int api_create_incr(const char *name, const char *body, size_t len, struct tbuf *msg)
{
    char err[1024];
    struct tis_incr_spec in;
    if (spec_parse_incr(name, body, len, &in, err, sizeof err)) {
        pthread_mutex_lock(&A.mu);
        struct coll *c = find(name);
        uint64_t task = c ? c->last_task : 0;
        pthread_mutex_unlock(&A.mu);
        if (!c)
            return say(msg, -ENOENT, "no collection %s", name);
        if (task)
            task_log_to(A.cat, task, "incr", err);
        return say(msg, -EINVAL, "%s", err);
    }
    pthread_mutex_lock(&A.mu);
    struct coll *c = find(name);
    int rc = 0;
    uint64_t task = c ? c->last_task : 0;
    if (!c)
        rc = say(msg, -ENOENT, "no collection %s", name);
    else if (!c->spec)
        rc = say(msg, -EINVAL, "collection %s has no spec yet: write one to its create file first "
                               "(it may hold the incr block)", name);
    else if (c->spec->incr.present)
        rc = say(msg, -EEXIST, "collection %s has an incremental channel already (topic %s); "
                               "rm -r the collection to start over", name, c->spec->incr.topic);
    else {
        c->spec->incr = in;
        memset(&in, 0, sizeof in);
        persist_coll(c);
        cat_sync(A.cat);
        channel_start_locked(c);
    }
    pthread_mutex_unlock(&A.mu);
    if (task && rc == -EEXIST)
        task_log_to(A.cat, task, "incr", msg ? msg->data : "refused a second channel");
    else if (task && rc == 0)
        task_log_to(A.cat, task, "incr", "[incr] channel created");
    spec_incr_free(&in);
    return rc;
}

/* ---- reading ---- */

static struct task *live_task(uint64_t id)
{
    for (struct coll *c = A.colls; c; c = c->next)
        if (c->task && task_id(c->task) == id)
            return c->task;
    return NULL;
}

/* Status of task id: live from memory while this process has it, else the
 * catalog's copy. Called with A.mu held. */
static int status_locked(uint64_t id, struct tbuf *out)
{
    struct task *t = live_task(id);
    char *s = t ? task_status_json(t) : cat_task_get(A.cat, id);
    if (!s)
        return -ENOENT;
    tbuf_adds(out, s);
    tbuf_adds(out, "\n");
    free(s);
    return 0;
}

static void reserved_status(const struct coll *c, struct tbuf *out)
{
    tbuf_printf(out,
                "{\n  \"taskid\":null,\n  \"indexName\":\"%s\",\n  \"state\":\"reserved\",\n"
                "  \"complete\":false,\n  \"faild\":false,\n  \"failed\":false,\n"
                "  \"stage\":null,\n  \"stages\":[],\n  \"errs\":\"\"\n}\n",
                c->name);
}

static void render_schema(uint64_t gen_id, struct gen *g, struct tbuf *out)
{
    struct json_object *o;
    if (g) {
        o = schema_to_json(gen_schema(g));
        json_object_object_add(o, "generation", json_object_new_int64((int64_t)gen_id));
        json_object_object_add(o, "docs", json_object_new_int64((int64_t)gen_doc_count(g)));
        json_object_object_add(o, "snapshot", json_object_get(gen_snapshot(g)));
        json_object_object_add(o, "disk_bytes",
                               json_object_new_int64((int64_t)disk_usage(gen_dir(g))));
    } else {
        o = json_object_new_object();
        json_object_object_add(o, "fields", json_object_new_array());
        json_object_object_add(o, "primaryKey", json_object_new_array());
        json_object_object_add(o, "generation", NULL);
        json_object_object_add(o, "docs", json_object_new_int(0));
    }
    tbuf_adds(out, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                        JSON_C_TO_STRING_NOSLASHESCAPE));
    tbuf_adds(out, "\n");
    json_object_put(o);
}

/* A channel that is not running says why: none was created, the first
 * build has not completed, or it stopped (its stored state tells where). */
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

int api_read(const char *name, enum api_doc doc, struct tbuf *out)
{
    pthread_mutex_lock(&A.mu);
    struct coll *c = find(name);
    if (!c) {
        pthread_mutex_unlock(&A.mu);
        return -ENOENT;
    }
    uint64_t last = c->last_task, gen_id = c->gen_id;
    struct gen *g = c->gen;
    if (doc == DOC_CREATE && c->spec) {
        char *s = spec_to_json(c->spec, true);
        tbuf_adds(out, s);
        tbuf_adds(out, "\n");
        free(s);
    } else if (doc == DOC_STATUS && last)
        status_locked(last, out);
    else if (doc == DOC_STATUS)
        reserved_status(c, out);
    else if (doc == DOC_SCHEMA && g)
        gen_ref(g); /* rendered below, outside the lock: it reads the disk */
    else if (doc == DOC_INCR && c->spec && c->spec->incr.present) {
        char *s = spec_incr_to_json(&c->spec->incr);
        tbuf_adds(out, s);
        tbuf_adds(out, "\n");
        free(s);
    } else if (doc == DOC_INCR_STATUS)
        incr_status_locked(c, out);
    pthread_mutex_unlock(&A.mu);
    if (doc == DOC_LOGS && last)
        cat_log_read(A.cat, last, out);
    if (doc == DOC_SCHEMA) {
        render_schema(gen_id, g, out);
        gen_unref(g);
    }
    return 0;
}

int api_select(const char *name, const char *query, struct tbuf *out, int *status)
{
    pthread_mutex_lock(&A.mu);
    struct coll *c = find(name);
    struct gen *g = c ? c->gen : NULL;
    if (g)
        gen_ref(g); /* a rebuild may switch generations meanwhile: this one stays */
    pthread_mutex_unlock(&A.mu);
    if (!c)
        return -ENOENT;
    struct search_request r;
    char err[300];
    if (search_request_parse(query, &r, err, sizeof err)) {
        *status = 400;
        search_error(400, err, r.params, out);
    } else if (!g) {
        *status = 503;
        snprintf(err, sizeof err, "collection %s has no index yet: its first build has not "
                                  "completed", name);
        search_error(503, err, r.params, out);
    } else
        *status = search_run(g, &r, out);
    search_request_free(&r);
    gen_unref(g);
    return 0;
}

void api_tasks(uint64_t **ids, size_t *count)
{
    struct task_ids t = {NULL, NULL, 0};
    cat_task_each(A.cat, collect_task, &t);
    *ids = t.ids;
    *count = t.n;
}

int api_task_read(uint64_t id, enum api_doc doc, struct tbuf *out)
{
    struct tbuf status = {0};
    pthread_mutex_lock(&A.mu);
    int rc = status_locked(id, &status); /* also tells whether the task exists */
    pthread_mutex_unlock(&A.mu);
    if (rc == 0 && doc == DOC_STATUS)
        tbuf_add(out, status.data, status.len);
    tbuf_free(&status);
    if (rc == 0 && doc == DOC_LOGS)
        cat_log_read(A.cat, id, out);
    return rc;
}
