/* incr_status — the incremental channel's incr_status JSON, of a running
 * channel or from the state a generation stores, and the per-second counts
 * behind its last_60_sec (see incr.h). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "incr_internal.h"
#include "tisfs/cdc.h"
#include "tisfs/util.h"

/* last_60_sec: a slot a second, reset when its second comes round again. */

void incr_count_applied_locked(struct incr *c, uint32_t n)
{
    int64_t now = (int64_t)time(NULL);
    int slot = (int)(now % 60);
    if (c->sec_of[slot] != now) {
        c->sec_of[slot] = now;
        c->per_sec[slot] = 0;
    }
    c->per_sec[slot] += n;
}

static uint64_t last_60_locked(const struct incr *c)
{
    int64_t now = (int64_t)time(NULL);
    uint64_t n = 0;
    for (int i = 0; i < 60; i++)
        if (now - c->sec_of[i] < 60)
            n += c->per_sec[i];
    return n;
}

static const char *guarantee(struct version snap, uint8_t events)
{
    if (events == VER_NONE)
        return "exactly-once (positions and changes commit together); no event has been seen yet";
    if (events == VER_MS)
        return "at-least-once: canal-json without _tidb.commitTs orders events by milliseconds "
               "only; enable TiCDC's enable-tidb-extension for exact versions";
    if (snap.domain != events)
        return "exactly-once from the channel's stored positions; at-least-once at the snapshot "
               "handover (the snapshot's version and the events' do not compare)";
    return "exactly-once";
}

static struct json_object *cursor_json(const char *topic, const struct part *p, int n)
{
    struct json_object *a = json_object_new_array();
    for (int i = 0; i < n; i++) {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "mqName", json_object_new_string(topic));
        json_object_object_add(o, "partition", json_object_new_int(p[i].id));
        json_object_object_add(o, "cursor", json_object_new_int64(p[i].pos));
        bool hw = p[i].hw >= 0;
        json_object_object_add(o, "high_watermark", hw ? json_object_new_int64(p[i].hw) : NULL);
        json_object_object_add(o, "lag", hw ? json_object_new_int64(p[i].hw > p[i].pos
                                                                        ? p[i].hw - p[i].pos
                                                                        : 0)
                                            : NULL);
        json_object_array_add(a, o);
    }
    return a;
}

/* The commit ts every partition has applied or been told of (resolved
 * events), 0 (null) until each has one: a partition with none yet could
 * still hold anything, and verify waits on this. */
static uint64_t applied_ts(const struct part *p, int n)
{
    uint64_t ts = 0;
    for (int i = 0; i < n; i++) {
        if (!p[i].ts)
            return 0;
        if (!ts || p[i].ts < ts)
            ts = p[i].ts;
    }
    return ts;
}

static char *render(struct json_object *o)
{
    char *s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    size_t n = strlen(s);
    s = xrealloc(s, n + 2);
    memcpy(s + n, "\n", 2);
    return s;
}

static struct json_object *status_head(const char *collection, const char *state,
                                       enum cdc_protocol proto)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "indexName", json_object_new_string(collection));
    json_object_object_add(o, "state", json_object_new_string(state));
    json_object_object_add(o, "protocol", proto ? json_object_new_string(cdc_protocol_name(proto))
                                                : NULL);
    return o;
}

char *incr_status_json(struct incr *c, const char *collection)
{
    pthread_mutex_lock(&c->mu);
    struct json_object *o = status_head(collection, c->state, c->proto);
    json_object_object_add(o, "current_cursor", cursor_json(c->spec.topic, c->parts, c->nparts));
    json_object_object_add(o, "last_60_sec", json_object_new_int64((int64_t)last_60_locked(c)));
    uint64_t ts = applied_ts(c->parts, c->nparts);
    json_object_object_add(o, "applied_commit_ts", ts ? json_object_new_int64((int64_t)ts) : NULL);
    json_object_object_add(o, "applied", json_object_new_int64((int64_t)c->applied));
    json_object_object_add(o, "stale", json_object_new_int64((int64_t)c->stale));
    json_object_object_add(o, "skipped", json_object_new_int64((int64_t)c->skipped));
    json_object_object_add(o, "unmerged", json_object_new_int64((int64_t)c->unmerged));
    json_object_object_add(o, "guarantee",
                           json_object_new_string(guarantee(gen_snapshot_version(c->g),
                                                            c->event_domain)));
    json_object_object_add(o, "errs", json_object_new_string(c->errs));
    pthread_mutex_unlock(&c->mu);
    return render(o);
}

char *incr_status_stopped(const char *collection, const struct tis_incr_spec *spec,
                          struct gen *g, const char *state, const char *why)
{
    struct incr tmp = {0};
    tmp.spec.topic = spec ? spec->topic : "";
    tmp.g = g;
    pthread_mutex_init(&tmp.mu, NULL);
    if (g && spec) {
        tmp.name = (char *)collection;
        incr_state_load(&tmp);
    }
    pthread_mutex_destroy(&tmp.mu);
    struct json_object *o = status_head(collection, state, tmp.proto);
    json_object_object_add(o, "current_cursor", cursor_json(tmp.spec.topic, tmp.parts, tmp.nparts));
    json_object_object_add(o, "last_60_sec", json_object_new_int(0));
    uint64_t ts = applied_ts(tmp.parts, tmp.nparts);
    json_object_object_add(o, "applied_commit_ts", ts ? json_object_new_int64((int64_t)ts) : NULL);
    json_object_object_add(o, "applied", json_object_new_int64((int64_t)tmp.applied));
    json_object_object_add(o, "stale", json_object_new_int64((int64_t)tmp.stale));
    json_object_object_add(o, "skipped", json_object_new_int64((int64_t)tmp.skipped));
    json_object_object_add(o, "errs", json_object_new_string(why ? why : ""));
    free(tmp.parts);
    return render(o);
}
