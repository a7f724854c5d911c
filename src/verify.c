/* verify — a collection against its table, and the repair. */
#define _GNU_SOURCE
#include "tisfs/verify.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <roaring/roaring.h>

#include "tisfs/analysis.h"
#include "tisfs/index.h"
#include "tisfs/source.h"
#include "tisfs/task.h"
#include "tisfs/util.h"
#include "verify_internal.h"

/* Repairs applied per write transaction. */
#define REPAIR_BATCH 512
#define REPAIR_BATCH_SEC 0.1

void verify_log(struct verify *v, const char *fmt, ...)
{
    struct tbuf b = {0};
    va_list ap;
    va_start(ap, fmt);
    tbuf_vprintf(&b, fmt, ap);
    va_end(ap);
    task_log_to(v->cat, v->id, v->stage ? v->stage : "verify", b.data);
    tbuf_free(&b);
}

static void source_line(void *arg, const char *line)
{
    verify_log(arg, "%s", line);
}

/* ---- status ---- */

static struct json_object *status_locked(struct verify *v)
{
    struct json_object *o = json_object_new_object(), *p = json_object_new_object();
    double secs = v->running ? mono_now() - v->t0 : v->secs;
    double rate = secs > 0 ? (double)v->checked / secs : 0;
    uint64_t total = v->total > v->checked ? v->total : v->checked;
    json_object_object_add(o, "taskid", json_object_new_int64((int64_t)v->id));
    json_object_object_add(o, "indexName", json_object_new_string(v->collection));
    json_object_object_add(o, "kind", json_object_new_string("verify"));
    json_object_object_add(o, "repair", json_object_new_boolean(v->repair));
    json_object_object_add(o, "state", json_object_new_string(v->running ? "running"
                                                              : v->failed ? "failed" : "done"));
    json_object_object_add(o, "complete", json_object_new_boolean(v->complete));
    json_object_object_add(o, "faild", json_object_new_boolean(v->failed));
    json_object_object_add(o, "failed", json_object_new_boolean(v->failed));
    json_object_object_add(o, "stage", json_object_new_string(v->stage));
    json_object_object_add(p, "rows", json_object_new_int64((int64_t)v->checked));
    json_object_object_add(p, "total", json_object_new_int64((int64_t)total));
    json_object_object_add(p, "rows_per_sec", json_object_new_int64((int64_t)rate));
    json_object_object_add(p, "eta_sec", json_object_new_double(
        v->running && rate > 0 ? (double)(total - v->checked) / rate : 0));
    json_object_object_add(o, "progress", p);
    json_object_object_add(o, "snapshot", json_object_get(v->snapshot));
    json_object_object_add(o, "checked", json_object_new_int64((int64_t)v->checked));
    json_object_object_add(o, "missing", json_object_new_int64((int64_t)v->missing));
    json_object_object_add(o, "extra", json_object_new_int64((int64_t)v->extra));
    json_object_object_add(o, "differ", json_object_new_int64((int64_t)v->differ));
    json_object_object_add(o, "newer", json_object_new_int64((int64_t)v->newer));
    json_object_object_add(o, "samples", json_object_get(v->samples));
    json_object_object_add(o, "repaired", json_object_new_int64((int64_t)v->repaired));
    if (v->found)
        json_object_object_add(o, "found", json_object_get(v->found));
    json_object_object_add(o, "errs", json_object_new_string(v->errs));
    json_object_object_add(o, "started", json_object_new_string(v->started));
    json_object_object_add(o, "finished", v->finished[0] ? json_object_new_string(v->finished)
                                                         : NULL);
    char sbuf[32];
    snprintf(sbuf, sizeof sbuf, "%.3f", secs);
    json_object_object_add(o, "seconds", json_object_new_double_s(secs, sbuf));
    return o;
}

char *verify_status_json(struct verify *v)
{
    pthread_mutex_lock(&v->mu);
    struct json_object *o = status_locked(v);
    pthread_mutex_unlock(&v->mu);
    char *s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

static void persist(struct verify *v)
{
    char *s = verify_status_json(v);
    cat_task_put(v->cat, v->id, s);
    free(s);
}

/* ---- comparing one row ---- */

static bool same_value(const struct tis_value *a, const struct tis_value *b)
{
    if (a->null || b->null)
        return a->null == b->null;
    return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

static struct json_object *pk_json(const struct tis_schema *sc, const struct tis_value *vals)
{
    struct json_object *o = json_object_new_object();
    for (size_t i = 0; i < sc->npk; i++) {
        const struct tis_field *f = &sc->fields[sc->pk[i]];
        const struct tis_value *x = &vals[sc->pk[i]];
        json_object_object_add(o, f->name, x->null ? NULL : value_to_json(f->vt, x->p, x->len));
    }
    return o;
}

static void sample(struct pass *ps, const struct tis_value *vals, const char *kind,
                   struct json_object *fields)
{
    struct verify *v = ps->v;
    pthread_mutex_lock(&v->mu);
    if (json_object_array_length(v->samples) < VERIFY_MAX_SAMPLES) {
        struct json_object *s = json_object_new_object();
        json_object_object_add(s, "pk", pk_json(ps->sc, vals));
        json_object_object_add(s, "kind", json_object_new_string(kind));
        json_object_object_add(s, "fields", fields ? fields : json_object_new_array());
        json_object_array_add(v->samples, s);
        fields = NULL;
    }
    pthread_mutex_unlock(&v->mu);
    json_object_put(fields);
}

static void count(struct verify *v, uint64_t *field)
{
    pthread_mutex_lock(&v->mu);
    (*field)++;
    pthread_mutex_unlock(&v->mu);
}

/* Whether version a is known to be after b (same domain). */
static bool after(struct version a, struct version b)
{
    return a.domain != VER_NONE && a.domain == b.domain && a.v > b.v;
}

/* ---- repairing ---- */

static int flush_repairs(struct pass *ps)
{
    if (!ps->w)
        return 0;
    int rc = gen_write_commit(ps->w, NULL, ps->err, sizeof ps->err);
    ps->w = NULL;
    ps->in_batch = 0;
    return rc;
}

/* The batch repairs go into, begun when the first comes: 0, or -1 (err). */
static int repair_writer(struct pass *ps)
{
    if (ps->w)
        return 0;
    ps->batch_began = mono_now();
    return (ps->w = gen_write_begin(ps->v->g, ps->an, ps->err, sizeof ps->err)) ? 0 : -1;
}

/* A batch of repairs is committed within REPAIR_BATCH_SEC, however few: it
 * holds the generation's one write transaction, which the channel's
 * batches wait for (a few repairs in a large table held it for the whole
 * pass, and the channel stalled that long). */
static int flush_if_old(struct pass *ps)
{
    return ps->w && mono_now() - ps->batch_began >= REPAIR_BATCH_SEC ? flush_repairs(ps) : 0;
}

/* Applies the snapshot's row (or, with del, the row's absence) at the
 * snapshot's version, through the channel's write path. */
static int repair_row(struct pass *ps, const struct tis_value *vals, bool del)
{
    enum gen_outcome out;
    if (ps->on_repair)
        ps->on_repair(ps, vals);
    if (repair_writer(ps))
        return -1;
    bool *present = xmalloc(ps->sc->nfields * sizeof *present);
    for (size_t i = 0; i < ps->sc->nfields; i++)
        present[i] = true;
    int rc = del ? gen_write_delete(ps->w, vals, ps->snap, &out, ps->err, sizeof ps->err)
                 : gen_write_upsert(ps->w, vals, present, ps->snap, &out, ps->err, sizeof ps->err);
    free(present);
    if (rc) {
        gen_write_abort(ps->w);
        ps->w = NULL;
        return -1;
    }
    if (out == GEN_APPLIED)
        count(ps->v, &ps->v->repaired);
    if (out == GEN_REFUSED)
        verify_log(ps->v, "a row cannot be stored, not repaired: %s", ps->err);
    return ++ps->in_batch >= REPAIR_BATCH ? flush_repairs(ps) : flush_if_old(ps);
}

int verify_correct_sums(struct pass *ps, int64_t key, const struct rowsum *delta)
{
    if (repair_writer(ps))
        return -1;
    gen_write_sums_correct(ps->w, key, delta);
    return 0;
}

/* ---- the pass ---- */

int verify_compare_row(void *arg, const struct tis_value *vals)
{
    struct pass *ps = arg;
    struct verify *v = ps->v;
    struct gen_row r;
    if (atomic_load(&v->cancel))
        return 1;
    if (flush_if_old(ps))
        return 1;
    int rc = gen_row_lookup(v->g, ps->txn, vals, &ps->key, &r);
    if (rc) {
        snprintf(ps->err, sizeof ps->err, "reading the index: %s", mdb_strerror(rc));
        return 1;
    }
    count(v, &v->checked);
    /* The pass reads the whole index through the map: let its pages go
     * now and then, or they all count as the daemon's resident memory. */
    if ((v->checked & 0xFFFF) == 0)
        gen_release_pages(v->g);
    if (after(r.v, ps->snap)) { /* changed after the snapshot: not drift */
        if (r.present)
            roaring_bitmap_add(ps->seen, r.id);
        count(v, &v->newer);
        return 0;
    }
    if (!r.present) {
        count(v, &v->missing);
        sample(ps, vals, "missing", NULL);
        return ps->repair ? -repair_row(ps, vals, false) : 0;
    }
    roaring_bitmap_add(ps->seen, r.id);
    if (!gen_doc_values(v->g, ps->txn, r.id, ps->stored)) {
        snprintf(ps->err, sizeof ps->err, "document %u cannot be read", r.id);
        return 1;
    }
    struct json_object *fields = NULL;
    for (size_t i = 0; i < ps->sc->nfields; i++)
        if (!same_value(&vals[i], &ps->stored[i])) {
            if (!fields)
                fields = json_object_new_array();
            json_object_array_add(fields, json_object_new_string(ps->sc->fields[i].name));
        }
    if (!fields)
        return 0;
    count(v, &v->differ);
    sample(ps, vals, "differ", fields);
    return ps->repair ? -repair_row(ps, vals, false) : 0;
}

/* Documents no row of the snapshot matched: extra, unless written after it.
 * scope (may be NULL: every document) limits the search. */
int verify_find_extra(struct pass *ps, const roaring_bitmap_t *scope)
{
    struct verify *v = ps->v;
    struct gen_stats st;
    gen_stats_read(v->g, ps->txn, &st);
    roaring_bitmap_t *deleted;
    int drc = index_deleted(ps->txn, gen_index(v->g), &deleted);
    if (drc) {
        snprintf(ps->err, sizeof ps->err, "reading the deleted documents: %s", mdb_strerror(drc));
        gen_stats_free(&st);
        return -1;
    }
    roaring_bitmap_t *live = index_live(st.last_id, deleted);
    roaring_bitmap_andnot_inplace(live, ps->seen);
    if (scope)
        roaring_bitmap_and_inplace(live, scope);
    roaring_uint32_iterator_t it;
    int rc = 0;
    roaring_init_iterator(live, &it);
    for (; it.has_value && !rc && !atomic_load(&v->cancel); roaring_advance_uint32_iterator(&it)) {
        struct gen_row r;
        if ((rc = flush_if_old(ps)) != 0)
            break;
        if (!gen_doc_values(v->g, ps->txn, it.current_value, ps->stored))
            continue; /* an id never used (a build's gap) */
        if (gen_row_lookup(v->g, ps->txn, ps->stored, &ps->key, &r) == 0 && after(r.v, ps->snap)) {
            count(v, &v->newer);
            continue;
        }
        count(v, &v->extra);
        sample(ps, ps->stored, "extra", NULL);
        if (ps->repair)
            rc = repair_row(ps, ps->stored, true);
    }
    roaring_bitmap_free(live);
    roaring_bitmap_free(deleted);
    gen_stats_free(&st);
    return rc;
}

/* ---- the snapshot and the channel ---- */

/* The index must hold every change up to the snapshot before comparing,
 * or changes in flight would show as drift: wait (bounded) until the
 * channel has applied past it. TiDB: its resolved commit ts has passed the
 * snapshot's TSO. Otherwise (binlog positions): no lag left for
 * VERIFY_SETTLE_SEC after the snapshot, time for a change committed just
 * before it to reach the topic. */
static void wait_for_channel(struct verify *v, struct version snap)
{
    if (!v->channel)
        return;
    double t0 = mono_now(), end = t0 + VERIFY_CHANNEL_WAIT_SEC, said = 0, calm = t0;
    while (!atomic_load(&v->cancel)) {
        char *s = incr_status_json(v->channel, v->collection);
        struct json_object *o = json_tokener_parse(s), *ts, *cur;
        free(s);
        bool ok = false;
        if (snap.domain == VER_TSO && json_object_object_get_ex(o, "applied_commit_ts", &ts) && ts)
            ok = (uint64_t)json_object_get_int64(ts) >= snap.v;
        else if (json_object_object_get_ex(o, "current_cursor", &cur) &&
                 json_object_is_type(cur, json_type_array)) {
            ok = json_object_array_length(cur) > 0;
            for (size_t i = 0; i < json_object_array_length(cur); i++) {
                struct json_object *lag;
                if (!json_object_object_get_ex(json_object_array_get_idx(cur, i), "lag", &lag) ||
                    !lag || json_object_get_int64(lag) > 0)
                    ok = false;
            }
        }
        json_object_put(o);
        if (snap.domain != VER_TSO && !ok)
            calm = mono_now();
        else if (snap.domain != VER_TSO)
            ok = mono_now() - calm >= VERIFY_SETTLE_SEC;
        if (ok)
            return;
        if (mono_now() > end) {
            verify_log(v, "the channel has not applied past the snapshot after %.0f s: comparing "
                    "anyway (rows changed meanwhile may show as differences)",
                 VERIFY_CHANNEL_WAIT_SEC);
            return;
        }
        if (mono_now() - said > 10) {
            verify_log(v, "waiting for the channel to apply past the snapshot");
            said = mono_now();
        }
        usleep(50000);
    }
}

/* The table's schema must still be the collection's. */
static int same_schema(const struct tis_schema *now, const struct tis_schema *built, char *err,
                       size_t errlen)
{
    for (size_t i = 0; i < built->nfields; i++) {
        const struct tis_field *b = &built->fields[i];
        const struct tis_field *n = i < now->nfields ? &now->fields[i] : NULL;
        if (!n || strcasecmp(n->name, b->name) != 0)
            return snprintf(err, errlen, "the table no longer matches the collection: column %s "
                                         "is gone; rebuild the collection", b->name), -1;
        if (n->vt != b->vt)
            return snprintf(err, errlen, "the table no longer matches the collection: column %s "
                                         "was %s and is %s now; rebuild the collection", b->name,
                            b->source_type, n->source_type), -1;
    }
    return 0;
}

static void reset_counts(struct verify *v)
{
    pthread_mutex_lock(&v->mu);
    v->checked = v->missing = v->extra = v->differ = v->newer = 0;
    json_object_put(v->samples);
    v->samples = json_object_new_array();
    pthread_mutex_unlock(&v->mu);
}

/* The pass's source, for verify_cancel to cut (NULL: none). */
static void set_source(struct verify *v, struct source *src)
{
    pthread_mutex_lock(&v->mu);
    v->src = src;
    bool cancelled = atomic_load(&v->cancel);
    pthread_mutex_unlock(&v->mu);
    if (cancelled && src) /* cancelled while connecting */
        source_abort(src);
}

/* One comparison of the whole table at a fresh snapshot. */
static int one_pass(struct verify *v, bool repair, char *err, size_t errlen)
{
    struct source *src = source_connect(&v->spec->ds, source_line, v, err, errlen);
    set_source(v, src);
    struct tis_schema *sc = src ? source_describe(src, v->spec, err, errlen) : NULL;
    struct json_object *info = NULL;
    int rc = !sc || same_schema(sc, gen_schema(v->g), err, errlen) ||
             source_begin_snapshot_shared(src, verify_snapshot_conns(v, sc), &info, err,
                                          errlen) ? -1 : 0;
    struct pass ps = {.v = v, .sc = gen_schema(v->g), .repair = repair};
    if (!rc) {
        uint64_t total = source_estimate_rows(src, v->spec);
        ps.snap = gen_version_of_snapshot(info);
        pthread_mutex_lock(&v->mu); /* status readers read both */
        v->total = total;
        json_object_put(v->snapshot);
        v->snapshot = json_object_get(info);
        pthread_mutex_unlock(&v->mu);
        verify_log(v, "snapshot: %s", json_object_to_json_string(info));
        wait_for_channel(v, ps.snap);
        reset_counts(v);
        ps.seen = roaring_bitmap_create();
        ps.stored = xcalloc(ps.sc->nfields, sizeof *ps.stored);
        if (repair && !(ps.an = analyzer_new(err, errlen)))
            rc = -1;
        /* Repairs commit while the pass's read is open, and a map cannot
         * grow under a read of its own thread: room first (a pass that
         * still fills it fails, and the next one starts with more). */
        size_t now;
        if (!rc && repair && gen_grow_ahead(v->g, &now) == 1)
            verify_log(v, "the generation's map grew to %zu MiB ahead of the repairs", now >> 20);
        if (!rc && (rc = gen_txn_begin(v->g, &ps.txn)) != 0)
            snprintf(err, errlen, "reading the index: %s", mdb_strerror(rc));
    }
    int chunked = !rc && verify_chunkable(src, sc) ? verify_chunked_pass(&ps, src, sc, err, errlen) : 1;
    if (chunked <= 0)
        rc = chunked;
    else if (!rc) {
        reset_counts(v);
        roaring_bitmap_clear(ps.seen);
        rc = source_stream(src, v->spec, sc, verify_compare_row, &ps, &v->cancel, err, errlen);
        if (rc && ps.err[0])
            snprintf(err, errlen, "%s", ps.err);
        if (!rc && (rc = verify_find_extra(&ps, NULL)) != 0)
            snprintf(err, errlen, "%s", ps.err);
    }
    if (!rc && (rc = flush_repairs(&ps)) != 0)
        snprintf(err, errlen, "%s", ps.err);
    if (ps.w)
        gen_write_abort(ps.w);
    if (ps.txn)
        gen_txn_end(v->g, ps.txn);
    if (atomic_load(&v->cancel)) /* it explains whatever the pass ran into */
        rc = -1, snprintf(err, errlen, "%s", v->cancel_reason);
    analyzer_free(ps.an);
    tbuf_free(&ps.key);
    free(ps.stored);
    if (ps.seen)
        roaring_bitmap_free(ps.seen);
    json_object_put(info);
    schema_free(sc);
    set_source(v, NULL);
    source_close(src);
    return rc;
}

static void summary(struct verify *v)
{
    pthread_mutex_lock(&v->mu);
    uint64_t c = v->checked, m = v->missing, e = v->extra, d = v->differ, n = v->newer;
    pthread_mutex_unlock(&v->mu);
    verify_log(v, "%s: %llu rows checked: %llu missing, %llu extra, %llu differ, %llu newer", v->stage,
         (unsigned long long)c, (unsigned long long)m, (unsigned long long)e,
         (unsigned long long)d, (unsigned long long)n);
}

static void *run(void *arg)
{
    struct verify *v = arg;
    char err[1024] = "";
    verify_log(v, "task %llu (verify%s) started for collection %s", (unsigned long long)v->id,
         v->repair ? ", repair" : "", v->collection);
    /* Taken before the snapshot: the statements behind it are older. */
    uint64_t want = v->repair && v->channel ? incr_repair_wanted(v->channel) : 0;
    int rc = one_pass(v, v->repair, err, sizeof err);
    if (!rc)
        summary(v);
    if (!rc && v->repair) {
        pthread_mutex_lock(&v->mu);
        uint64_t fixed = v->repaired;
        v->stage = "verify again";
        /* What was found and fixed stays in the result beside the second
         * pass's counts. */
        v->found = json_object_new_object();
        json_object_object_add(v->found, "missing", json_object_new_int64((int64_t)v->missing));
        json_object_object_add(v->found, "extra", json_object_new_int64((int64_t)v->extra));
        json_object_object_add(v->found, "differ", json_object_new_int64((int64_t)v->differ));
        json_object_object_add(v->found, "samples", json_object_get(v->samples));
        pthread_mutex_unlock(&v->mu);
        verify_log(v, "repaired %llu rows: verifying again", (unsigned long long)fixed);
        if ((rc = one_pass(v, false, err, sizeof err)) == 0)
            summary(v);
        /* Done, the repair ends the channel's want: what the second pass
         * still finds (a row that cannot be stored, a change racing the
         * pass) is in the result, and asking again would find it again. */
        if (!rc && want)
            incr_repair_done(v->channel, want);
    }
    pthread_mutex_lock(&v->mu);
    v->running = false;
    v->failed = rc != 0;
    v->complete = rc == 0;
    v->secs = mono_now() - v->t0;
    iso_now(v->finished, false);
    if (rc)
        snprintf(v->errs, sizeof v->errs, "%s: %s", v->stage, err);
    pthread_mutex_unlock(&v->mu);
    if (rc)
        verify_log(v, "FAILED: %s", err);
    else
        verify_log(v, "task %llu complete in %.1f s", (unsigned long long)v->id, v->secs);
    persist(v);
    cat_sync(v->cat);
    /* The generation goes when the verification ends, not when the next
     * one (or a delete) frees this: a rebuild's switch may have left it
     * the last reference, and its files stay on disk while it holds one. */
    gen_release_pages(v->g);
    gen_unref(v->g);
    v->g = NULL;
    return NULL;
}

struct verify *verify_start(uint64_t id, const char *collection, struct tis_spec *spec,
                            struct gen *g, struct incr *channel, bool repair,
                            struct catalog *cat)
{
    struct verify *v = xcalloc(1, sizeof *v);
    v->id = id;
    v->collection = xstrdup(collection);
    v->spec = spec_ref(spec);
    gen_ref(g);
    v->g = g;
    v->channel = channel;
    v->repair = repair;
    v->cat = cat;
    v->stage = repair ? "repair" : "verify";
    v->running = true;
    v->t0 = mono_now();
    v->samples = json_object_new_array();
    iso_now(v->started, false);
    pthread_mutex_init(&v->mu, NULL);
    persist(v);
    if (pthread_create(&v->thread, NULL, run, v) != 0)
        abort(); /* as every thread the daemon cannot do without */
    return v;
}

bool verify_running(struct verify *v)
{
    pthread_mutex_lock(&v->mu);
    bool r = v->running;
    pthread_mutex_unlock(&v->mu);
    return r;
}

bool verify_repairs(const struct verify *v)
{
    return v->repair;
}

uint64_t verify_id(const struct verify *v)
{
    return v->id;
}

void verify_cancel(struct verify *v, const char *reason)
{
    if (!v)
        return;
    pthread_mutex_lock(&v->mu);
    snprintf(v->cancel_reason, sizeof v->cancel_reason, "%s", reason);
    atomic_store(&v->cancel, true);
    /* A pass blocked on the server (its checksums' GROUP BY answers only
     * when done, a table locked) would see the cancel only then: cut its
     * connections now. */
    if (v->src)
        source_abort(v->src);
    pthread_mutex_unlock(&v->mu);
}

void verify_join_free(struct verify *v)
{
    if (!v)
        return;
    pthread_join(v->thread, NULL);
    spec_free(v->spec);
    json_object_put(v->samples);
    json_object_put(v->snapshot);
    json_object_put(v->found);
    verify_chunks_free(v->recheck);
    pthread_mutex_destroy(&v->mu);
    free(v->collection);
    free(v);
}
