/* channel — a collection's channel: start, stop, and the handover at a
 * rebuild's switch. */
#define _GNU_SOURCE
#include "tisfs/channel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tisfs/api.h"
#include "tisfs/gen.h"
#include "tisfs/incr.h"
#include "tisfs/util.h"
#include "tisfs/verify.h"

void channel_log(struct coll *c, const char *line)
{
    coll_lock();
    uint64_t id = coll_last_task(c);
    coll_unlock();
    if (id)
        task_log_to(coll_catalog(), id, "incr", line);
}

static void log_line(void *arg, const char *line)
{
    channel_log(arg, line);
}

/* The channel's repair: a verification with repair, as `verify` with
 * repair starts one (refused while a build or a verification runs; while
 * one with repair runs, quietly: it may be the one asked for before). */
static bool start_repair(void *arg, const char *why, char *msg, size_t msglen)
{
    struct coll *c = arg;
    struct tbuf m = {0};
    uint64_t id = 0;
    (void)why;
    coll_lock();
    bool repairing = c->verify && verify_running(c->verify) && verify_repairs(c->verify);
    coll_unlock();
    if (repairing) {
        msg[0] = 0;
        return false;
    }
    bool ok = api_verify(c->name, true, &id, &m) == API_OK;
    if (ok)
        snprintf(msg, msglen, "task %llu", (unsigned long long)id);
    else
        snprintf(msg, msglen, "%s", m.data ? m.data : "refused");
    tbuf_free(&m);
    return ok;
}

/* A channel of c over g that filters spec's table (a rebuild's new spec
 * may name another one than the serving spec). */
static struct incr *start(struct coll *c, const struct tis_spec *spec, struct gen *g,
                          enum incr_mode mode)
{
    struct incr_hooks hooks = {log_line, start_repair, c};
    return incr_start(c->name, &spec->incr, spec->ds.db, spec->table, g, mode, &hooks);
}

void channel_start_locked(struct coll *c)
{
    if (c->spec && c->spec->incr.present && c->gen && !c->incr && !c->deleting)
        c->incr = start(c, c->spec, c->gen, INCR_FOLLOW);
}

/* The spec the generation being built follows. Locked. */
static struct tis_spec *building_spec(struct coll *c)
{
    return c->next_spec ? c->next_spec : c->spec;
}

struct incr *channel_take_locked(struct coll *c)
{
    struct incr *ch = c->incr;
    c->incr = NULL;
    return ch;
}

/* Where the channel of a new generation starts: the serving generation's
 * committed positions (nothing after them is applied yet, so the new one
 * replays exactly that), else, for "latest", the topic's end now. */
struct json_object *channel_start_positions(void *arg, struct task *t, const char *name)
{
    (void)arg;
    coll_lock();
    struct coll *c = coll_find(name);
    bool has = c && c->spec && building_spec(c)->incr.present;
    struct gen *g = has && c->spec->incr.present ? c->gen : NULL;
    struct tis_spec *spec = has ? spec_ref(building_spec(c)) : NULL; /* read outside the lock */
    if (g)
        gen_ref(g);
    coll_unlock();
    struct json_object *pos = g ? gen_channel_state(g) : NULL;
    /* A repair the serving generation wants is for its documents: the new
     * one's snapshot is later than what it repairs (or its catch-up sees
     * the statement again, and wants its own). */
    if (pos)
        json_object_object_del(pos, "repair");
    char err[512] = "";
    if (!pos && spec && !(pos = incr_positions_now(&spec->incr, err, sizeof err)) && err[0])
        task_log(t, "cannot read the topic's end offsets (%s): the channel will start at the "
                    "%s offsets when it starts", err,
                 spec->incr.offset_reset ? spec->incr.offset_reset : "earliest");
    gen_unref(g);
    spec_free(spec);
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
    coll_lock();
    struct tis_spec *spec = spec_ref(building_spec(c));
    coll_unlock();
    struct incr *ch = start(c, spec, g, INCR_CATCH_UP);
    spec_free(spec); /* incr_start copied what it needs */
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
static int handover(struct coll *c, struct task *t, struct gen *g, struct json_object *channel,
                    char *err, size_t errlen)
{
    if (channel && gen_set_channel_state(g, channel, err, errlen))
        return -1;
    coll_lock();
    bool serving = c->gen != NULL;
    coll_unlock();
    if (!serving)
        return 0;
    task_log(t, "catching up the new generation with the change stream");
    enum catch_up r = catch_up(c, t, g, 600);
    if (r == GAVE_UP)
        task_log(t, "the new generation did not catch up within 600 s: switching anyway after a "
                    "last catch-up");
    coll_lock();
    struct incr *old = channel_take_locked(c);
    coll_unlock();
    incr_stop(old);
    if (r != UNREACHABLE)
        catch_up(c, t, g, 60);
    if (task_cancelled(t)) {
        snprintf(err, errlen, "cancelled");
        return -1;
    }
    return 0;
}

int channel_backflow(void *arg, struct task *t, const char *name, const char *dir,
                     uint64_t gen_id, struct json_object *channel, char *err, size_t errlen)
{
    (void)arg;
    struct gen *g = gen_open(dir, err, errlen);
    if (!g)
        return -1;
    coll_lock();
    struct coll *c = coll_find(name);
    bool has_channel = c && c->spec && building_spec(c)->incr.present;
    coll_unlock();
    if (has_channel && handover(c, t, g, channel, err, errlen)) {
        gen_doom(g);
        gen_unref(g);
        coll_lock();
        if ((c = coll_find(name)) != NULL)
            channel_start_locked(c); /* the old generation goes on following */
        coll_unlock();
        return -1;
    }
    /* The new generation's files are synced by its builder; its name in
     * the collection's directory must be too, before the catalog points at
     * it. */
    char cdir[4096];
    coll_dir(name, cdir, sizeof cdir);
    gen_sync(g);
    fsync_dir(cdir);
    coll_lock();
    struct gen *old = NULL;
    char unreadable[4096] = "";
    int rc = 0;
    if ((c = coll_find(name)) != NULL) {
        old = c->gen;
        uint64_t old_id = c->gen_id;
        struct tis_spec *old_spec = c->spec;
        c->gen = g;
        c->gen_id = gen_id;
        if (c->next_spec) /* the rebuild's new spec is the accepted one now */
            c->spec = c->next_spec;
        if ((rc = coll_persist(c)) != 0) {
            /* The switch is not on disk (a full disk): the old generation
             * keeps serving, and this one goes, rather than a catalog that
             * names a generation start-up would delete. */
            c->gen = old;
            c->gen_id = old_id;
            c->spec = old_spec;
            old = g;
            snprintf(err, errlen, "the catalog cannot record the switch: %s", mdb_strerror(rc));
        } else {
            if (c->gen_err && !old && old_id) /* unreadable (another format): it goes now */
                coll_gen_dir(name, old_id, unreadable, sizeof unreadable);
            free(c->gen_err);
            c->gen_err = NULL;
            if (c->next_spec) {
                c->next_spec = NULL;
                spec_free(old_spec);
            }
        }
        cat_sync(coll_catalog());
        channel_start_locked(c);
    }
    coll_unlock();
    if (!c) {
        snprintf(err, errlen, "collection %s was deleted", name);
        old = g;
    }
    if (old) {
        gen_doom(old);
        gen_unref(old);
    }
    if (unreadable[0])
        rm_rf(unreadable);
    return c && old != g ? 0 : -1;
}
