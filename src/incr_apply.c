/* incr_apply — the incremental channel's applying: the events of a batch
 * of messages, filtered to the table, converted to the values a dump has,
 * written in one transaction with the positions after them, and published
 * once committed (see incr.h, incr_internal.h). */
#define _GNU_SOURCE
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incr_internal.h"
#include "tisfs/cdc.h"
#include "tisfs/util.h"

/* Another table's partition swapped with this one: its rows changed too. */
static bool exchanged_with_ours(const struct incr *c, const struct cdc_event *e)
{
    char db[256], table[256];
    return cdc_ddl_exchange_table(e->sql, db, sizeof db, table, sizeof table) &&
           name_eq(db[0] ? db : e->db, c->db) && name_eq(table, c->table);
}

bool incr_ours(const struct incr *c, const struct cdc_event *e)
{
    if (e->kind == CDC_DDL && e->ddl == DDL_PARTITION_ROWS && exchanged_with_ours(c, e))
        return true;
    if (!name_eq(e->db, c->db))
        return false;
    return name_eq(e->table, c->table) || (e->kind == CDC_DDL && !e->table[0]);
}

static bool same_pk(struct incr *c, const struct cdc_event *e)
{
    const struct tis_schema *sc = gen_schema(c->g);
    for (size_t i = 0; i < sc->npk; i++) {
        const char *name = sc->fields[sc->pk[i]].name;
        const struct tis_value *a = NULL, *b = NULL;
        for (size_t j = 0; j < e->after.n; j++)
            if (name_eq(e->after.cols[j].name, name))
                a = &e->after.cols[j].v;
        for (size_t j = 0; j < e->before.n; j++)
            if (name_eq(e->before.cols[j].name, name))
                b = &e->before.cols[j].v;
        if (a && b && (a->len != b->len || memcmp(a->p, b->p, a->len) != 0))
            return false;
    }
    return true;
}

/* One batch's work: it touches a copy of the positions and its own
 * counters, published only when its transaction has committed. */
struct batch {
    struct gen_writer *w;
    uint32_t applied, stale, skipped;
    uint8_t event_domain;
    struct part *parts;
    /* A DROP TABLE: the batch ends at it, and once it has committed the
     * channel enters the error state with why and stops. */
    bool dropped;
    char why[480];
    /* What the batch did, to log once it has committed: an aborted batch
     * did nothing, and one applied again after its map grew did it once. */
    struct tbuf said; /* lines, each ending in a NUL */
    /* A statement that changed rows without row events: the repair the
     * channel wants once the batch has committed (incr_repair_wanted). */
    char repair_why[480];
};

static void batch_say(struct batch *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void batch_say(struct batch *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tbuf_vprintf(&b->said, fmt, ap);
    va_end(ap);
    tbuf_add(&b->said, "", 1);
}

static void batch_log(struct incr *c, const struct batch *b)
{
    for (size_t at = 0; at < b->said.len; at += strlen(b->said.data + at) + 1)
        incr_say(c, "%s", b->said.data + at);
}

static struct part *batch_part(struct incr *c, struct batch *b, int32_t id)
{
    for (int i = 0; i < c->nparts; i++)
        if (b->parts[i].id == id)
            return &b->parts[i];
    return NULL;
}

static void tally(struct batch *b, enum gen_outcome o)
{
    if (o == GEN_STALE)
        b->stale++;
    else
        b->applied++;
}

/* Returns 0, 1 (this event is bad: skip it) or -1 (the batch failed). pre:
 * the after image's analysis, done by the decoder, or NULL. */
static int apply_row(struct incr *c, struct batch *b, const struct cdc_event *e,
                     const void *pre, char *err, size_t errlen)
{
    enum gen_outcome o;
    bool del = e->op == CDC_DELETE;
    struct rowbuf *rb = &c->row;
    /* A primary-key change: the old row goes, the new one comes. */
    if (e->op == CDC_UPDATE && e->before.n && !same_pk(c, e)) {
        if (incr_row_values(c, rb, &e->before, true, err, errlen))
            return 1;
        if (gen_write_delete(b->w, rb->vals, e->ver, &o, err, errlen))
            return -1;
        if (o == GEN_REFUSED)
            return 1;
        tally(b, o);
    }
    const struct cdc_row *r = del && e->before.n ? &e->before : &e->after;
    if (incr_row_values(c, rb, r, true, err, errlen))
        return 1;
    int rc = del             ? gen_write_delete(b->w, rb->vals, e->ver, &o, err, errlen)
             : pre && rb->all ? gen_write_upsert_analyzed(b->w, rb->vals, pre, e->ver, &o, err,
                                                         errlen)
                             : gen_write_upsert(b->w, rb->vals, rb->present, e->ver, &o, err,
                                                errlen);
    if (rc)
        return -1;
    if (o == GEN_REFUSED)
        return 1;
    tally(b, o);
    return 0;
}

static int apply_ddl(struct batch *b, const struct cdc_event *e, char *err, size_t errlen)
{
    const char *sql = e->sql ? e->sql : "";
    /* Replayed from before the snapshot (a channel started at earliest),
     * a TRUNCATE would take rows the snapshot has, a DROP of a table since
     * created again would stop the channel for good, and a partition's
     * change would ask for a repair of what the snapshot already shows. */
    static const char *const names[] = {[DDL_TRUNCATE] = "TRUNCATE", [DDL_DROP] = "DROP TABLE",
                                        [DDL_PARTITION_ROWS] = "a partition's change"};
    if ((e->ddl == DDL_TRUNCATE || e->ddl == DDL_DROP || e->ddl == DDL_PARTITION_ROWS) &&
        gen_write_older(b->w, e->ver)) {
        batch_say(b, "%s older than the collection's snapshot or last TRUNCATE: ignored (%s)",
                  names[e->ddl], sql);
        return 0;
    }
    switch (e->ddl) {
    case DDL_TRUNCATE:
        batch_say(b, "TRUNCATE: the collection is emptied (%s)", sql);
        return gen_write_truncate(b->w, e->ver, err, errlen) ? -1 : 0;
    case DDL_DROP:
        /* Logged and shown by incr_set_error once the batch (its position
         * and the dropped flag) has committed, like any other error. */
        b->dropped = true;
        snprintf(b->why, sizeof b->why, "the table was dropped (%.400s): the channel stopped", sql);
        return 0;
    case DDL_PARTITION_ROWS:
        snprintf(b->repair_why, sizeof b->repair_why,
                 "%.400s changed rows without row events", sql);
        batch_say(b, "%s: the collection is repaired against the table", b->repair_why);
        return 0;
    case DDL_ADD_COLUMN:
        batch_say(b, "a column was added (%s): not in the spec, ignored", sql);
        return 0;
    case DDL_DROP_COLUMN:
        batch_say(b, "a column was dropped (%s): documents keep the values they have; a rebuild "
                     "drops them", sql);
        return 0;
    default:
        batch_say(b, "DDL ignored: %s", sql);
        return 0;
    }
}

static void note_version(struct batch *b, struct part *p, struct version v)
{
    if (v.domain == VER_TSO && v.v > p->ts)
        p->ts = v.v;
    if (v.domain != VER_NONE)
        b->event_domain = v.domain;
}

/* Applies the events of message i of the batch. Returns 0, or -1 when the
 * batch must be abandoned (a storage error). Bad events are reported and
 * skipped. */
static int apply_message(struct incr *c, struct batch *b, const struct decoded *d, int i,
                         struct part *p)
{
    int32_t part = d->part[i];
    long long offset = (long long)d->offset[i];
    const struct cdc_events *ev = &d->ev[i];
    char err[512] = "";
    int rc;
    if (d->rc[i]) {
        batch_say(b, "skipped message %s/%d@%lld: %s", c->spec.topic, part, offset,
                  decoded_err(d, i));
        b->skipped++;
        return 0;
    }
    for (size_t k = 0; k < ev->n && !b->dropped; k++) {
        const struct cdc_event *e = &ev->ev[k];
        if (e->kind == CDC_RESOLVED) {
            note_version(b, p, e->ver);
            continue;
        }
        if (!incr_ours(c, e))
            continue;
        rc = e->kind == CDC_DDL ? apply_ddl(b, e, err, sizeof err)
                                : apply_row(c, b, e, decoded_pre(d, i, k), err, sizeof err);
        if (rc < 0) {
            incr_say(c, "cannot apply message %s/%d@%lld: %s", c->spec.topic, part, offset, err);
            return -1;
        }
        if (rc > 0) {
            batch_say(b, "skipped event %zu of message %s/%d@%lld: %s", k + 1, c->spec.topic,
                      part, offset, err);
            b->skipped++;
        } else
            note_version(b, p, e->ver);
    }
    return 0;
}

/* Publishes (or, undo, takes back) a batch's positions and counters. */
static void publish_locked(struct incr *c, struct batch *b, bool undo)
{
    int64_t sign = undo ? -1 : 1;
    struct part *other = c->parts;
    c->parts = b->parts;
    b->parts = other;
    c->applied += (uint64_t)(sign * b->applied);
    c->stale += (uint64_t)(sign * b->stale);
    c->skipped += (uint64_t)(sign * b->skipped);
    if (!undo && b->event_domain)
        c->event_domain = b->event_domain;
    if (b->dropped) /* the channel ran, so it was not dropped before */
        c->dropped = !undo;
}

/* One attempt at a batch: 0, -1 (the channel's error is set), or GEN_GREW
 * (undone because the generation's map was full; it has grown). */
static int apply_batch_once(struct incr *c, struct decoded *d)
{
    char err[512] = "a change could not be stored (see logs): retrying from the stored positions";
    struct batch b = {.w = gen_write_begin(c->g, c->an, err, sizeof err)};
    if (!b.w) {
        incr_set_error(c, err);
        return -1;
    }
    index_group_seal(d->group); /* unless the decoding thread had time to */
    gen_write_use_group(b.w, d->group);
    pthread_mutex_lock(&c->mu);
    b.parts = xmalloc((size_t)c->nparts * sizeof *b.parts);
    memcpy(b.parts, c->parts, (size_t)c->nparts * sizeof *b.parts);
    pthread_mutex_unlock(&c->mu);
    int rc = 0;
    for (int i = 0; i < d->n && !rc && !b.dropped; i++) {
        struct part *p = batch_part(c, &b, d->part[i]);
        if (!p || d->offset[i] < p->pos) /* a refetch of what is applied */
            continue;
        rc = apply_message(c, &b, d, i, p);
        p->pos = d->offset[i] + 1;
        c->rows_unreleased += d->ev[i].n;
        if (c->rows_unreleased >= incr_release_rows(c))
            incr_release_pages(c, mono_now());
    }
    /* The state to commit is what the status will show once it has
     * committed, not before: readers see positions only with their data. */
    pthread_mutex_lock(&c->mu);
    publish_locked(c, &b, false);
    struct json_object *st = incr_state_json_locked(c);
    if (b.repair_why[0])
        json_object_object_add(st, "repair", json_object_new_string(b.repair_why));
    publish_locked(c, &b, true);
    pthread_mutex_unlock(&c->mu);
    if (!rc)
        rc = gen_write_commit(b.w, st, err, sizeof err);
    else if (gen_write_abort(b.w) == GEN_GREW)
        rc = GEN_GREW;
    json_object_put(st);
    pthread_mutex_lock(&c->mu);
    if (!rc) {
        publish_locked(c, &b, false);
        incr_count_applied_locked(c, b.applied);
        if (b.repair_why[0])
            incr_want_repair_locked(c, b.repair_why);
    }
    incr_update_state_locked(c);
    pthread_mutex_unlock(&c->mu);
    free(b.parts);
    if (!rc)
        batch_log(c, &b);
    tbuf_free(&b.said);
    if (rc == GEN_GREW)
        return rc;
    if (rc) {
        incr_set_error(c, err);
        return -1;
    }
    c->dirty = true;
    c->untrimmed |= d->n >= INCR_TRIM_BATCH;
    incr_commit_offsets(c);
    if (b.dropped)
        incr_set_error(c, b.why);
    else
        incr_clear_apply_error(c);
    return 0;
}

/* A batch that found the generation's map full is undone, positions and
 * all; the map has grown, and the same batch goes in again. */
int incr_apply_batch(struct incr *c, struct decoded *d)
{
    int rc;
    while ((rc = apply_batch_once(c, d)) == GEN_GREW)
        incr_say(c, "the generation's map was full: it grew to %zu MiB, applying the batch again",
                 gen_map_size(c->g) >> 20);
    return rc;
}
