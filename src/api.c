/* api — the handlers that change something: a thin facade over the
 * collection registry, tasks, channels and verifications, with the rules
 * every adapter shares (names, which refusal when). The handlers that read
 * are in api_read.c. */
#define _GNU_SOURCE
#include "tisfs/api.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "tisfs/catalog.h"
#include "tisfs/channel.h"
#include "tisfs/collection.h"
#include "tisfs/gen.h"
#include "tisfs/incr.h"
#include "tisfs/source_tidb.h"
#include "tisfs/spec.h"
#include "tisfs/task.h"
#include "tisfs/verify.h"

const char *api_status_name(enum api_status st)
{
    static const char *const names[] = {
        [API_OK] = "ok",           [API_INVALID] = "invalid",     [API_NAME_TOO_LONG] = "name too long",
        [API_NOT_FOUND] = "not found", [API_EXISTS] = "exists",   [API_BUSY] = "busy",
        [API_NOT_READY] = "not ready", [API_FAILED] = "failed",
    };
    return (unsigned)st < sizeof names / sizeof *names ? names[st] : "failed";
}

static enum api_status say(struct tbuf *msg, enum api_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum api_status say(struct tbuf *msg, enum api_status st, const char *fmt, ...)
{
    if (msg) {
        va_list ap;
        va_start(ap, fmt);
        tbuf_vprintf(msg, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* ---- the mount-wide log: the catalog's log 0 (task ids start at 1) ---- */

/* The mount-wide log keeps its last DAEMON_LOG_LINES lines: every
 * DAEMON_LOG_TRIM_EVERY notes, older ones go (a `tail -f` of it then sees
 * the file shrink once). */
#define DAEMON_LOG_LINES 20000
#define DAEMON_LOG_TRIM_EVERY 1000

void api_note(const char *fmt, ...)
{
    static unsigned notes;
    struct tbuf b = {0};
    va_list ap;
    va_start(ap, fmt);
    tbuf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (coll_catalog()) {
        task_log_to(coll_catalog(), 0, "tisfs", b.data);
        if (__atomic_add_fetch(&notes, 1, __ATOMIC_RELAXED) % DAEMON_LOG_TRIM_EVERY == 0)
            cat_log_trim(coll_catalog(), 0, DAEMON_LOG_LINES);
    }
    tbuf_free(&b);
}

void api_daemon_log(struct tbuf *out)
{
    cat_log_read(coll_catalog(), 0, out);
}

/* ---- lifecycle ---- */

/* The data directory's lock: one daemon per state (two would both accept
 * builds of one collection and disagree on which generation serves). The
 * descriptor survives the daemon's fork; the file names the holder. */
static int lock_fd = -1;
/* api_shutdown has begun: nothing new starts (a channel asking for a
 * repair between the verifications' end and its own stop, say). Locked. */
static bool stopping;

static enum api_status lock_data_dir(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX + 16], holder[32] = "";
    if (lock_fd >= 0)
        return API_OK;
    snprintf(path, sizeof path, "%s/lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return API_FAILED;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
        holder[n > 0 ? n : 0] = 0;
        holder[strcspn(holder, "\n")] = 0;
        snprintf(err, errlen, "data directory %s is in use by another tisfs (pid %s); one "
                              "daemon per --data", dir, holder[0] ? holder : "unknown");
        close(fd);
        return API_BUSY;
    }
    lock_fd = fd; /* a fork shares it: the detached daemon holds the lock */
    return API_OK;
}

/* Writes the holder's pid: the daemon's, once it has detached. */
static void lock_name_holder(void)
{
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (lock_fd >= 0 && ftruncate(lock_fd, 0) == 0 && pwrite(lock_fd, pid, (size_t)n, 0) < 0)
        return;
}

enum api_status api_check_data_dir(const char *data_dir, char **abs, char *err, size_t errlen)
{
    char cat[PATH_MAX + 16];
    int rc = mkdir_p(data_dir, 0700);
    if (rc || !(*abs = realpath(data_dir, NULL))) {
        snprintf(err, errlen, "--data %s: %s", data_dir, strerror(rc ? -rc : errno));
        return API_INVALID;
    }
    enum api_status st = lock_data_dir(*abs, err, errlen);
    if (st) {
        free(*abs);
        *abs = NULL;
        return st;
    }
    snprintf(cat, sizeof cat, "%s/catalog", *abs);
    struct catalog *c = cat_open(cat, err, errlen);
    if (!c) {
        free(*abs);
        *abs = NULL;
        return API_FAILED;
    }
    cat_close(c);
    return API_OK;
}

static uint64_t start_locked(struct coll *c, const char *kind);

/* The GC life times owed to TiDB clusters live in the catalog, so that a
 * dump killed with the daemon is restored by the next dump of its
 * cluster (source_tidb.h). */
static void persist_gc_leases(void *arg, const char *json)
{
    cat_meta_put(arg, "tidb_gc_leases", json);
    cat_sync(arg);
}

static void load_gc_leases(struct catalog *cat)
{
    char *json = cat_meta_get(cat, "tidb_gc_leases");
    tidb_gc_leases_reset();
    size_t n = tidb_gc_leases_load(json);
    if (n)
        api_note("a dump interrupted when the daemon stopped left tidb_gc_life_time extended on "
                 "%zu TiDB cluster%s (%s): the next dump of each restores it", n,
                 n == 1 ? "" : "s", json);
    free(json);
    tidb_gc_set_persist(persist_gc_leases, cat);
}

/* The kind ("create", "build") of task id when the daemon stopping
 * interrupted it (its status says so), else NULL. */
static const char *interrupted_kind(uint64_t id)
{
    char *s = id ? cat_task_get(coll_catalog(), id) : NULL;
    struct json_object *o = s ? json_tokener_parse(s) : NULL, *v;
    free(s);
    const char *kind = NULL;
    if (o && json_object_object_get_ex(o, "errs", &v) &&
        strstr(json_object_get_string(v), "interrupted: the daemon") &&
        json_object_object_get_ex(o, "kind", &v))
        kind = !strcmp(json_object_get_string(v), "create") ? "create"
               : !strcmp(json_object_get_string(v), "build") ? "build" : NULL;
    json_object_put(o);
    return kind;
}

/* A generation this version cannot read (written with another index
 * format, or damaged) is rebuilt from the accepted spec, as an interrupted
 * build is: the collection must not stay unusable until someone notices. */
static void rebuild_unreadable_locked(struct coll *c)
{
    uint64_t id = start_locked(c, "build");
    char line[1024];
    snprintf(line, sizeof line, "rebuilding: the serving generation cannot be read by this "
             "version of tisfs (%s)", c->gen_err);
    if (id)
        task_log_to(coll_catalog(), id, "dump", line);
    api_note("collection %s: its generation cannot be read (%s): task %llu rebuilds it", c->name,
             c->gen_err, (unsigned long long)id);
}

/* Builds that the daemon's stop interrupted (a crash, a kill, a power cut,
 * SIGTERM) start again by themselves: a first build that never finished
 * must not leave a collection unusable until someone notices. */
static void resume_interrupted(void)
{
    coll_lock();
    for (struct coll *c = coll_first(); c; c = c->next) {
        uint64_t last = coll_last_task(c);
        const char *kind = c->spec ? interrupted_kind(last) : NULL;
        if (!kind && c->spec && c->gen_err && !c->gen) {
            rebuild_unreadable_locked(c);
            continue;
        }
        if (!kind)
            continue;
        uint64_t id = start_locked(c, kind);
        if (id)
            task_log_to(coll_catalog(), id, "dump", "resuming: task interrupted when the daemon "
                                                    "stopped; this task builds it again");
        api_note("collection %s: task %llu was interrupted when the daemon stopped: task %llu "
                 "builds it again", c->name, (unsigned long long)last, (unsigned long long)id);
    }
    coll_unlock();
}

enum api_status api_init(const char *data_dir, char *err, size_t errlen)
{
    char path[4096];
    enum api_status locked = lock_data_dir(data_dir, err, errlen);
    if (locked)
        return locked;
    lock_name_holder();
    stopping = false; /* a process may start the API again (the unit tests) */
    snprintf(path, sizeof path, "%s/collections", data_dir);
    int rc = mkdir_p(path, 0700);
    if (rc) {
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        return API_FAILED;
    }
    snprintf(path, sizeof path, "%s/catalog", data_dir);
    struct catalog *cat = cat_open(path, err, errlen);
    if (!cat)
        return API_FAILED;
    task_recover_interrupted(cat);
    coll_registry_open(data_dir, cat);
    load_gc_leases(cat);
    size_t n = 0;
    coll_lock();
    for (struct coll *c = coll_first(); c; c = c->next, n++)
        channel_start_locked(c);
    coll_unlock();
    api_note("started: data %s, %zu collection%s", data_dir, n, n == 1 ? "" : "s");
    resume_interrupted();
    return API_OK;
}

void api_shutdown(void)
{
    api_note("stopping: running tasks are recorded as interrupted");
    coll_lock();
    stopping = true;
    for (struct coll *c = coll_first(); c; c = c->next) {
        if (c->task)
            task_cancel(c->task, "interrupted: the daemon is shutting down");
        verify_cancel(c->verify, "interrupted: the daemon is shutting down");
    }
    coll_unlock();
    /* Verifications wait on channels: they go before the channels do. */
    for (struct coll *c = coll_first(); c; c = c->next) {
        verify_join_free(c->verify);
        c->verify = NULL;
    }
    for (struct coll *c = coll_first(); c; c = c->next) {
        coll_lock();
        struct incr *ch = channel_take_locked(c);
        coll_unlock();
        incr_stop(ch);
    }
    /* Tasks finish without taking the lock except in backflow, which a
     * cancelled task skips; joining outside it keeps that path free anyway. */
    for (struct coll *c = coll_first(); c; c = c->next) {
        task_join_free(c->task);
        c->task = NULL;
        /* A backflow that was cut short puts the old channel back: stop it. */
        incr_stop(c->incr);
        c->incr = NULL;
    }
    struct catalog *cat = coll_catalog();
    tidb_gc_set_persist(NULL, NULL);
    coll_registry_close();
    cat_close(cat);
    if (lock_fd >= 0)
        close(lock_fd); /* the lock goes with it */
    lock_fd = -1;
}

/* ---- collections ---- */

void api_collections(struct tbuf *names, size_t *count)
{
    *count = 0;
    coll_lock();
    for (struct coll *c = coll_first(); c; c = c->next)
        if (!c->deleting) {
            tbuf_add(names, c->name, strlen(c->name) + 1);
            (*count)++;
        }
    coll_unlock();
}

bool api_collection_exists(const char *name)
{
    coll_lock();
    bool r = coll_find(name) != NULL;
    coll_unlock();
    return r;
}

enum api_status api_check_name(const char *name, struct tbuf *msg)
{
    if (strlen(name) > TIS_NAME_MAX)
        return say(msg, API_NAME_TOO_LONG, "collection name longer than %d characters",
                   TIS_NAME_MAX);
    if (!name_is_valid(name))
        return say(msg, API_INVALID, "collection name \"%s\": collection names are 1-%d of "
                                     "A-Z a-z 0-9 _ -", name, TIS_NAME_MAX);
    return API_OK;
}

enum api_status api_reserve(const char *name, struct tbuf *msg)
{
    enum api_status st = api_check_name(name, msg);
    if (st)
        return st;
    coll_lock();
    bool deleting = false;
    for (struct coll *c = coll_first(); c; c = c->next)
        deleting |= c->deleting && strcmp(c->name, name) == 0;
    if (deleting)
        st = say(msg, API_BUSY, "collection %s is being deleted; try again when it is gone", name);
    else if (!coll_add(name))
        st = say(msg, API_EXISTS, "collection %s exists", name);
    else
        cat_sync(coll_catalog());
    coll_unlock();
    return st;
}

/* Locked. A reservation that holds nothing yet. */
static bool holds_nothing(const struct coll *c)
{
    return !c->spec && !c->gen && !c->ntasks && !c->task;
}

bool api_collection_is_empty(const char *name)
{
    coll_lock();
    struct coll *c = coll_find(name);
    bool empty = c && holds_nothing(c);
    coll_unlock();
    return empty;
}

enum api_status api_unreserve(const char *name)
{
    coll_lock();
    struct coll *c = coll_find(name);
    bool empty = c && holds_nothing(c);
    coll_unlock();
    if (!c)
        return API_NOT_FOUND;
    return empty ? api_delete(name, NULL) : API_BUSY;
}

enum api_status api_delete(const char *name, struct tbuf *msg)
{
    coll_lock();
    struct coll *c = coll_find(name);
    if (!c) {
        coll_unlock();
        return say(msg, API_NOT_FOUND, "no collection %s", name);
    }
    c->deleting = true;
    struct task *t = c->task;
    c->task = NULL;
    struct verify *v = c->verify;
    c->verify = NULL;
    verify_cancel(v, "interrupted: the collection was deleted");
    struct incr *ch = channel_take_locked(c);
    coll_unlock();
    verify_join_free(v); /* before the channel it may be waiting on stops */
    incr_stop(ch);
    if (t) {
        task_cancel(t, "interrupted: the collection was deleted");
        task_join_free(t);
    }
    coll_destroy(c);
    return API_OK;
}

/* ---- tasks ---- */

/* Checks that c can take a new task now. Locked. */
static enum api_status can_start(struct coll *c, const char *what, struct tbuf *msg)
{
    if (c->verify && verify_running(c->verify))
        return say(msg, API_BUSY, "collection %s: verification %llu is running; try again when "
                                  "it has finished", c->name,
                   (unsigned long long)verify_id(c->verify));
    if (c->task && task_running(c->task)) {
        task_log(c->task, "refused a %s request: this task is still running", what);
        return say(msg, API_BUSY, "collection %s: task %llu is still running; try again when "
                                  "it has finished", c->name,
                   (unsigned long long)task_id(c->task));
    }
    return API_OK;
}

/* Starts a build of c with its spec, or the rebuild's new spec when one
 * waits for its switch. Returns the task id, 0 when the catalog cannot be
 * written (a full disk): nothing starts then. Locked. */
static uint64_t start_locked(struct coll *c, const char *kind)
{
    char dir[4096];
    uint64_t id = cat_task_new_id(coll_catalog());
    if (!id)
        return 0;
    coll_gen_dir(c->name, id, dir, sizeof dir); /* generations are named after their task */
    struct task_env env = {coll_catalog(), dir, channel_backflow, channel_start_positions, NULL};
    task_join_free(c->task); /* the previous one has finished */
    c->task = task_start(id, kind, c->next_spec ? c->next_spec : c->spec, &env);
    coll_add_task(c, id);
    cat_sync(coll_catalog()); /* an accepted spec is on disk before it is reported */
    return id;
}

static enum api_status logged(const char *name, enum api_status st, struct tbuf *why,
                              struct tbuf *msg);
static enum api_status fit_channel(struct coll *c, struct tis_spec *next, struct tbuf *msg);

static enum api_status refuse_spec(const char *name, const char *why, uint64_t *taskid,
                                   struct tbuf *msg)
{
    uint64_t id = cat_task_new_id(coll_catalog());
    task_record_failure(coll_catalog(), id, "create", name, why);
    coll_lock();
    struct coll *c = coll_find(name);
    if (c)
        coll_add_task(c, id);
    coll_unlock();
    cat_sync(coll_catalog());
    if (taskid)
        *taskid = id;
    return say(msg, API_INVALID, "%s", why);
}

/* Locked. */
static enum api_status check_create(const char *name, struct tbuf *msg)
{
    struct coll *c = coll_find(name);
    if (!c)
        return say(msg, API_NOT_FOUND, "no collection %s (mkdir it first)", name);
    enum api_status st = can_start(c, "create", msg);
    if (!st && c->gen)
        st = say(msg, API_EXISTS, "collection %s is built already; rebuild it with build (the "
                                  "build file, or the fullbuild method)", name);
    return st;
}

/* Whether body holds a spec rather than a bare request such as "1". */
static bool is_spec(const char *body, size_t len)
{
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r'))
        i++;
    return i < len && (body[i] == '{' || body[i] == '#' || body[i] == '/');
}

enum api_status api_spec_valid(const char *name, const char *body, size_t len, struct tbuf *msg)
{
    char err[1024];
    struct tis_spec *spec = spec_parse(name, body, len, err, sizeof err);
    spec_free(spec);
    return spec ? API_OK : say(msg, API_INVALID, "%s", err);
}

enum api_status api_check_spec(const char *name, enum api_spec_file which, const char *body,
                               size_t len, struct tbuf *msg)
{
    char err[1024];
    if (which == SPEC_BUILD && !is_spec(body, len))
        return API_OK; /* the build file takes anything; only a spec is judged */
    if (which == SPEC_CREATE || which == SPEC_BUILD) {
        struct tis_spec *spec = spec_parse(name, body, len, err, sizeof err);
        if (!spec)
            return refuse_spec(name, err, NULL, msg);
        enum api_status st = API_OK;
        if (which == SPEC_BUILD) { /* a rebuild's spec may not change the channel */
            coll_lock();
            struct coll *c = coll_find(name);
            if (c && c->spec)
                st = fit_channel(c, spec, msg);
            coll_unlock();
        }
        spec_free(spec);
        return st;
    }
    struct tis_incr_spec in;
    struct tbuf why = {0};
    if (!spec_parse_incr(name, body, len, &in, err, sizeof err)) {
        spec_incr_free(&in);
        return API_OK;
    }
    return logged(name, say(&why, API_INVALID, "%s", err), &why, msg);
}

enum api_status api_create_check(const char *name, struct tbuf *msg)
{
    coll_lock();
    enum api_status st = check_create(name, msg);
    coll_unlock();
    return st;
}

enum api_status api_create(const char *name, const char *body, size_t len, uint64_t *taskid,
                           struct tbuf *msg)
{
    enum api_status st = api_create_check(name, msg);
    if (st)
        return st;
    char err[1024];
    struct tis_spec *spec = spec_parse(name, body, len, err, sizeof err);
    if (!spec)
        return refuse_spec(name, err, taskid, msg);
    coll_lock();
    st = check_create(name, msg); /* again: the lock was let go while parsing */
    if (!st) {
        struct coll *c = coll_find(name);
        spec_free(c->spec);
        c->spec = spec;
        spec = NULL;
        spec_free(c->next_spec);
        c->next_spec = NULL;
        uint64_t id = start_locked(c, "create");
        if (!id)
            st = say(msg, API_FAILED, "the catalog cannot be written (is the disk full?)");
        if (taskid)
            *taskid = id;
    }
    coll_unlock();
    spec_free(spec);
    return st;
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* A rebuild's new spec against the collection's: the channel carries over
 * (a spec without incr keeps it); a different channel is refused. Locked. */
static enum api_status fit_channel(struct coll *c, struct tis_spec *next, struct tbuf *msg)
{
    const struct tis_incr_spec *old = &c->spec->incr, *in = &next->incr;
    if (!old->present)
        return API_OK;
    if (!in->present) {
        spec_incr_copy(&next->incr, old);
        return API_OK;
    }
    if (!same(old->mq_address, in->mq_address) || !same(old->topic, in->topic) ||
        !same(old->group_id, in->group_id))
        return say(msg, API_INVALID, "collection %s: the new spec names another channel (topic "
                                     "%s, not %s); a rebuild keeps the channel: leave incr out, "
                                     "or rm -r the collection to start over", c->name,
                   in->topic, old->topic);
    return API_OK;
}

/* Locked. Whether c can be rebuilt now (with any spec). */
static enum api_status check_build(struct coll *c, const char *name, struct tbuf *msg)
{
    if (!c)
        return say(msg, API_NOT_FOUND, "no collection %s", name);
    if (!c->spec)
        return say(msg, API_INVALID, "collection %s has no spec yet: write one to its create file "
                                     "first", name);
    return can_start(c, "build", msg);
}

enum api_status api_build_check(const char *name, struct tbuf *msg)
{
    coll_lock();
    enum api_status st = check_build(coll_find(name), name, msg);
    coll_unlock();
    return st;
}

enum api_status api_build(const char *name, const char *body, size_t len, uint64_t *taskid,
                          struct tbuf *msg)
{
    char err[1024];
    struct tis_spec *next = NULL;
    if (body && is_spec(body, len) && !(next = spec_parse(name, body, len, err, sizeof err))) {
        if (!api_collection_exists(name))
            return say(msg, API_NOT_FOUND, "no collection %s", name);
        return refuse_spec(name, err, taskid, msg);
    }
    coll_lock();
    struct coll *c = coll_find(name);
    enum api_status st = check_build(c, name, msg);
    if (!st && (!next || !(st = fit_channel(c, next, msg)))) {
        spec_free(c->next_spec);
        c->next_spec = next;
        next = NULL;
        uint64_t id = start_locked(c, "build");
        if (!id)
            st = say(msg, API_FAILED, "the catalog cannot be written (is the disk full?)");
        if (taskid)
            *taskid = id;
    }
    coll_unlock();
    spec_free(next);
    return st;
}

/* ---- verification ---- */

/* Locked. */
static enum api_status check_verify(struct coll *c, const char *name, struct tbuf *msg)
{
    if (!c)
        return say(msg, API_NOT_FOUND, "no collection %s", name);
    if (stopping)
        return say(msg, API_BUSY, "the daemon is stopping");
    if (!c->gen || !c->spec)
        return say(msg, API_NOT_READY, "collection %s has no index yet: nothing to verify", name);
    if (c->task && task_running(c->task))
        return say(msg, API_BUSY, "collection %s: task %llu (a build) is running; verify when it "
                                  "has finished", name, (unsigned long long)task_id(c->task));
    if (c->verify && verify_running(c->verify))
        return say(msg, API_BUSY, "collection %s: verification %llu is still running", name,
                   (unsigned long long)verify_id(c->verify));
    return API_OK;
}

enum api_status api_verify_check(const char *name, struct tbuf *msg)
{
    coll_lock();
    enum api_status st = check_verify(coll_find(name), name, msg);
    coll_unlock();
    return st;
}

enum api_status api_verify(const char *name, bool repair, uint64_t *taskid, struct tbuf *msg)
{
    coll_lock();
    struct coll *c = coll_find(name);
    enum api_status st = check_verify(c, name, msg);
    uint64_t id = st ? 0 : cat_task_new_id(coll_catalog());
    if (!st && !id)
        st = say(msg, API_FAILED, "the catalog cannot be written (is the disk full?)");
    if (!st) {
        verify_join_free(c->verify); /* the previous one has finished */
        coll_add_task(c, id);        /* first: the verification logs to it */
        c->last_verify = id;
        coll_persist(c);
        c->verify = verify_start(id, name, c->spec, c->gen, c->incr, repair, coll_catalog());
        if (taskid)
            *taskid = id;
    }
    coll_unlock();
    return st;
}

/* ---- the incremental channel ---- */

/* Locked. */
static enum api_status check_incr(struct coll *c, const char *name, struct tbuf *msg)
{
    if (!c)
        return say(msg, API_NOT_FOUND, "no collection %s", name);
    if (c->spec && c->spec->incr.present)
        return say(msg, API_EXISTS, "refused a second incremental channel: collection %s has "
                                    "one already (topic %s); rm -r the collection to start "
                                    "over", name, c->spec->incr.topic);
    if (!c->spec)
        return say(msg, API_INVALID, "collection %s has no spec yet: write one to its create "
                                     "file first (it may hold the incr block)", name);
    return API_OK;
}

/* Puts why (a refusal, or news) in the collection's log too, where it will
 * be looked for, and in msg. */
static enum api_status logged(const char *name, enum api_status st, struct tbuf *why,
                              struct tbuf *msg)
{
    coll_lock();
    struct coll *c = coll_find(name);
    uint64_t task = c ? coll_last_task(c) : 0;
    coll_unlock();
    if (task && why->len)
        task_log_to(coll_catalog(), task, "incr", why->data);
    if (msg && why->len)
        tbuf_adds(msg, why->data);
    tbuf_free(why);
    return st;
}

enum api_status api_create_incr_check(const char *name, struct tbuf *msg)
{
    struct tbuf why = {0};
    coll_lock();
    enum api_status st = check_incr(coll_find(name), name, &why);
    coll_unlock();
    return logged(name, st, &why, msg);
}

enum api_status api_create_incr(const char *name, const char *body, size_t len, struct tbuf *msg)
{
    char err[1024];
    struct tbuf why = {0};
    struct tis_incr_spec in;
    enum api_status st = API_OK;
    if (spec_parse_incr(name, body, len, &in, err, sizeof err)) {
        if (!api_collection_exists(name))
            return say(msg, API_NOT_FOUND, "no collection %s", name);
        return logged(name, say(&why, API_INVALID, "%s", err), &why, msg);
    }
    coll_lock();
    struct coll *c = coll_find(name);
    if (!(st = check_incr(c, name, &why))) {
        /* The spec may be shared with a running task: change a copy. */
        struct tis_spec *next = spec_copy(c->spec);
        next->incr = in;
        memset(&in, 0, sizeof in);
        spec_free(c->spec);
        c->spec = next;
        coll_persist(c);
        cat_sync(coll_catalog());
        channel_start_locked(c);
    }
    coll_unlock();
    spec_incr_free(&in);
    if (!st)
        tbuf_adds(&why, "[incr] channel created");
    return logged(name, st, &why, st ? msg : NULL);
}
