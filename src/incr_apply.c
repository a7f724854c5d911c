/* incr_apply — the incremental channel's applying: the events of a batch
 * of messages, filtered to the table, converted to the values a dump has,
 * written in one transaction with the positions after them, and published
 * once committed (see incr.h, incr_internal.h). */
#define _GNU_SOURCE
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incr_internal.h"
#include "tisfs/cdc.h"
#include "tisfs/util.h"

bool incr_ours(const struct incr *c, const struct cdc_event *e)
{
    if (!name_eq(e->db, c->db))
        return false;
    return name_eq(e->table, c->table) || (e->kind == CDC_DDL && !e->table[0]);
}

/* BIT(n) comes as a number; a dump gives its big-endian bytes. */
static struct tis_value bit_bytes(struct tbuf *conv, const struct tis_field *f, struct tis_value v)
{
    int bits = 64;
    const char *paren = strchr(f->source_type, '(');
    if (paren)
        bits = atoi(paren + 1);
    size_t n = (size_t)(bits + 7) / 8;
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%.*s", (int)(v.len < 31 ? v.len : 31), v.p);
    unsigned long long x = strtoull(tmp, NULL, 10);
    size_t at = conv->len;
    for (size_t i = 0; i < n && i < 8; i++) {
        char b = (char)(x >> (8 * (n - 1 - i)));
        tbuf_add(conv, &b, 1);
    }
    return (struct tis_value){(const char *)(uintptr_t)at, n, false}; /* offset: fixed later */
}

/* ENUM and SET come from open-protocol and canal-json as the index (from
 * 1) or the bit set; a dump gives the names, comma-separated for a SET. The
 * names are read from the column's type, e.g. enum('a','it''s'). */
static struct tis_value enum_names(struct tbuf *conv, const struct tis_field *f, struct tis_value v)
{
    bool set = strncasecmp(f->source_type, "set(", 4) == 0;
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%.*s", (int)(v.len < 31 ? v.len : 31), v.p);
    unsigned long long x = strtoull(tmp, NULL, 10);
    size_t at = conv->len;
    int k = 0;
    bool first = true;
    for (const char *p = strchr(f->source_type, '('); p && *p; k++) {
        const char *q = strchr(p, '\'');
        if (!q)
            break;
        bool take = set ? k < 64 && (x >> k & 1) : (unsigned long long)k + 1 == x;
        if (take && set && !first)
            tbuf_add(conv, ",", 1);
        for (q++; *q && !(q[0] == '\'' && q[1] != '\''); q++) {
            if (q[0] == '\'' && q[1] == '\'')
                q++;
            if (take)
                tbuf_add(conv, q, 1);
        }
        first &= !take;
        p = *q ? q + 1 : q;
    }
    return (struct tis_value){(const char *)(uintptr_t)at, conv->len - at, false};
}

static bool all_digits(struct tis_value v)
{
    for (size_t i = 0; i < v.len; i++)
        if (v.p[i] < '0' || v.p[i] > '9')
            return false;
    return v.len > 0;
}

/* A simple-protocol binary value the decoder could not type (untyped
 * rows): its base64, decoded; as it came when it is not base64. */
static struct tis_value unbase64(struct tbuf *conv, struct tis_value v, bool *moved)
{
    char *s = xstrndup(v.p, v.len);
    size_t n;
    char *bytes = base64_decode(s, &n);
    free(s);
    if (!bytes)
        return v;
    size_t at = conv->len;
    tbuf_add(conv, bytes, n);
    free(bytes);
    *moved = true;
    return (struct tis_value){(const char *)(uintptr_t)at, n, false}; /* offset: fixed later */
}

/* The value of field f as a dump has it (offsets into rb->conv when
 * converted; *moved says so). untyped: the row's (cdc_row.untyped). */
static struct tis_value dump_form(enum cdc_protocol proto, bool untyped, struct rowbuf *rb,
                                  const struct tis_field *f, struct tis_value v, bool *moved)
{
    *moved = false;
    if (v.null)
        return v;
    if (f->vt == VT_BIT)
        return *moved = true, bit_bytes(&rb->conv, f, v);
    if (untyped && f->vt == VT_BINARY)
        return unbase64(&rb->conv, v, moved);
    if ((proto == CDC_OPEN || proto == CDC_CANAL || untyped) && all_digits(v) &&
        (strncasecmp(f->source_type, "enum(", 5) == 0 ||
         strncasecmp(f->source_type, "set(", 4) == 0))
        return *moved = true, enum_names(&rb->conv, f, v);
    return v;
}

void rowbuf_init(struct rowbuf *rb, size_t nfields)
{
    memset(rb, 0, sizeof *rb);
    rb->vals = xcalloc(nfields, sizeof *rb->vals);
    rb->present = xcalloc(nfields, sizeof *rb->present);
    rb->moved = xcalloc(nfields, sizeof *rb->moved);
}

void rowbuf_free(struct rowbuf *rb)
{
    free(rb->vals);
    free(rb->present);
    free(rb->moved);
    tbuf_free(&rb->conv);
}

int incr_row_values(struct incr *c, struct rowbuf *rb, const struct cdc_row *r, bool need_pk,
                    char *err, size_t errlen)
{
    const struct tis_schema *sc = gen_schema(c->g);
    tbuf_reset(&rb->conv);
    tbuf_reserve(&rb->conv, 64); /* offsets below never sit on a NULL buffer */
    rb->all = true;
    /* A row's columns mostly come in the table's order, as the fields do:
     * each search starts after the column the last one found (a wide
     * table's rows would otherwise cost fields x columns comparisons). */
    size_t from = 0;
    for (size_t i = 0; i < sc->nfields; i++) {
        rb->present[i] = false;
        rb->vals[i] = (struct tis_value){"", 0, true};
        for (size_t k = 0; k < r->n; k++) {
            size_t j = (from + k) % r->n;
            if (name_eq(r->cols[j].name, sc->fields[i].name)) {
                rb->present[i] = true;
                rb->vals[i] = dump_form(c->proto, r->untyped, rb, &sc->fields[i], r->cols[j].v,
                                        &rb->moved[i]);
                from = j + 1;
                break;
            }
        }
        rb->all &= rb->present[i];
    }
    for (size_t i = 0; i < sc->nfields; i++) /* conv may have moved while it grew */
        if (rb->present[i] && rb->moved[i])
            rb->vals[i].p = rb->conv.data + (uintptr_t)rb->vals[i].p;
    for (size_t i = 0; need_pk && i < sc->npk; i++)
        if (!rb->present[sc->pk[i]] || rb->vals[sc->pk[i]].null) {
            snprintf(err, errlen, "the event carries no value for primary key column %s",
                     sc->fields[sc->pk[i]].name);
            return -1;
        }
    return 0;
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
};

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

static int apply_ddl(struct incr *c, struct batch *b, const struct cdc_event *e, char *err,
                     size_t errlen)
{
    const char *sql = e->sql ? e->sql : "";
    /* Replayed from before the snapshot (a channel started at earliest),
     * a TRUNCATE would take rows the snapshot has, and a DROP of a table
     * since created again would stop the channel for good. */
    if ((e->ddl == DDL_TRUNCATE || e->ddl == DDL_DROP) && gen_write_older(b->w, e->ver)) {
        incr_say(c, "%s older than the collection's snapshot or last TRUNCATE: ignored (%s)",
                 e->ddl == DDL_TRUNCATE ? "TRUNCATE" : "DROP TABLE", sql);
        return 0;
    }
    switch (e->ddl) {
    case DDL_TRUNCATE:
        incr_say(c, "TRUNCATE: the collection is emptied (%s)", sql);
        return gen_write_truncate(b->w, e->ver, err, errlen) ? -1 : 0;
    case DDL_DROP:
        /* Logged and shown by incr_set_error once the batch (its position
         * and the dropped flag) has committed, like any other error. */
        b->dropped = true;
        snprintf(b->why, sizeof b->why, "the table was dropped (%.400s): the channel stopped", sql);
        return 0;
    case DDL_ADD_COLUMN:
        incr_say(c, "a column was added (%s): not in the spec, ignored", sql);
        return 0;
    case DDL_DROP_COLUMN:
        incr_say(c, "a column was dropped (%s): documents keep the values they have; a rebuild "
                    "drops them", sql);
        return 0;
    default:
        incr_say(c, "DDL ignored: %s", sql);
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
        incr_say(c, "skipped message %s/%d@%lld: %s", c->spec.topic, part, offset, decoded_err(d, i));
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
        rc = e->kind == CDC_DDL ? apply_ddl(c, b, e, err, sizeof err)
                                : apply_row(c, b, e, decoded_pre(d, i, k), err, sizeof err);
        if (rc < 0) {
            incr_say(c, "cannot apply message %s/%d@%lld: %s", c->spec.topic, part, offset, err);
            return -1;
        }
        if (rc > 0) {
            incr_say(c, "skipped event %zu of message %s/%d@%lld: %s", k + 1, c->spec.topic, part,
                     offset, err);
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
    }
    incr_update_state_locked(c);
    pthread_mutex_unlock(&c->mu);
    free(b.parts);
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
