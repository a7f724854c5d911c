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
#include <errno.h>
#include <roaring/roaring.h>
#include <zlib.h>

#include "tisfs/analysis.h"
#include "tisfs/index.h"
#include "tisfs/source.h"
#include "tisfs/source_tidb.h"
#include "tisfs/task.h"
#include "tisfs/util.h"

/* Repairs applied per write transaction. */
#define REPAIR_BATCH 512

struct chunks;

struct verify {
    uint64_t id;
    char *collection;
    struct tis_spec *spec;
    struct gen *g;
    struct incr *channel;
    bool repair;
    struct catalog *cat;
    pthread_t thread;
    atomic_bool cancel;

    pthread_mutex_t mu; /* guards everything below */
    const char *stage;  /* "verify", "repair", "verify again" */
    bool running, complete, failed;
    char errs[1024], cancel_reason[128];
    char started[32], finished[32];
    double t0, secs;
    uint64_t total; /* the server's estimate */
    /* The latest pass's counts; repaired is the first pass's repairs. */
    uint64_t checked, missing, extra, differ, newer, repaired;
    struct json_object *samples, *snapshot;
    struct json_object *found; /* with repair: what the first pass found */
    /* With repair by chunks: the chunks the first pass found different,
     * the only ones the second pass checks again (NULL: every row). */
    struct chunks *recheck;
};

/* One pass over the table: the comparison's working state. */
struct pass {
    struct verify *v;
    const struct tis_schema *sc;
    MDB_txn *txn;
    struct version snap;
    roaring_bitmap_t *seen;
    struct tis_value *stored;
    struct tbuf key;
    bool repair;
    struct analyzer *an;
    struct gen_writer *w;
    size_t in_batch;
    char err[512];
};

static void vlog(struct verify *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void vlog(struct verify *v, const char *fmt, ...)
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
    vlog(arg, "%s", line);
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

/* Applies the snapshot's row (or, with del, the row's absence) at the
 * snapshot's version, through the channel's write path. */
static int repair_row(struct pass *ps, const struct tis_value *vals, bool del)
{
    enum gen_outcome out;
    if (!ps->w && !(ps->w = gen_write_begin(ps->v->g, ps->an, ps->err, sizeof ps->err)))
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
    return ++ps->in_batch >= REPAIR_BATCH ? flush_repairs(ps) : 0;
}

/* ---- the pass ---- */

static int compare_row(void *arg, const struct tis_value *vals)
{
    struct pass *ps = arg;
    struct verify *v = ps->v;
    struct gen_row r;
    if (atomic_load(&v->cancel))
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
static int find_extra(struct pass *ps, const roaring_bitmap_t *scope)
{
    struct verify *v = ps->v;
    struct gen_stats st;
    gen_stats_read(v->g, ps->txn, &st);
    roaring_bitmap_t *live = st.last_id ? roaring_bitmap_from_range(1, (uint64_t)st.last_id + 1, 1)
                                        : roaring_bitmap_create();
    roaring_bitmap_t *deleted = index_deleted(ps->txn, gen_index(v->g));
    roaring_bitmap_andnot_inplace(live, deleted);
    roaring_bitmap_andnot_inplace(live, ps->seen);
    if (scope)
        roaring_bitmap_and_inplace(live, scope);
    roaring_uint32_iterator_t it;
    int rc = 0;
    roaring_init_iterator(live, &it);
    for (; it.has_value && !rc && !atomic_load(&v->cancel); roaring_advance_uint32_iterator(&it)) {
        struct gen_row r;
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

/* ---- chunks compared by checksum ---- */

/* With a single integer primary key on MySQL/MariaDB, rows are grouped by
 * pk DIV CHUNK_WIDTH; the server sums a hash of every row of each chunk in
 * one GROUP BY, the daemon the same hash of its documents, and only chunks
 * whose sums differ are compared row by row. The hash is over each value as
 * the text protocol sends it (what a build stores): every field's byte
 * length first (-1 for NULL), then the values that are not NULL, all joined
 * by '|' -- the lengths say where each value ends, so no two rows read
 * alike -- and CRC-32 of that; on the server
 *   CRC32(CONCAT_WS('|', IFNULL(LENGTH(CAST(a AS BINARY)), -1), ...,
 *                        CAST(a AS BINARY), ...))
 * over bytes, so it depends on no SQL mode, collation or client character
 * set (and costs the server little more than the scan). A mismatch of the two hashes can only cost time: the chunk is then
 * compared row by row, exactly. Chunks are small (100 key values) so that
 * changes spread over a table send a small part of it to that comparison. */
#define CHUNK_WIDTH 100
#define CHUNK_KEY_MAX 24
#define CHUNKS_PER_QUERY 200

struct chunk {
    char key[CHUNK_KEY_MAX]; /* pk DIV CHUNK_WIDTH, as text */
    uint64_t count, sum;
    uint32_t x;
    bool server, differ;
    roaring_bitmap_t *ids; /* the documents of the chunk */
};

struct chunks {
    struct chunk *t;
    size_t cap, n;
};

static size_t key_hash(const char *k)
{
    size_t h = 14695981039346656037u;
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211u;
    return h;
}

static struct chunk *chunk_get(struct chunks *c, const char *key)
{
    if ((c->n + 1) * 2 > c->cap) { /* grow: rehash */
        struct chunks g = {xcalloc(c->cap ? c->cap * 2 : 1024, sizeof *g.t), c->cap ? c->cap * 2 : 1024, 0};
        for (size_t i = 0; i < c->cap; i++)
            if (c->t[i].key[0]) {
                size_t h = key_hash(c->t[i].key) & (g.cap - 1);
                while (g.t[h].key[0])
                    h = (h + 1) & (g.cap - 1);
                g.t[h] = c->t[i];
                g.n++;
            }
        free(c->t);
        *c = g;
    }
    size_t h = key_hash(key) & (c->cap - 1);
    while (c->t[h].key[0] && strcmp(c->t[h].key, key) != 0)
        h = (h + 1) & (c->cap - 1);
    if (!c->t[h].key[0]) {
        snprintf(c->t[h].key, sizeof c->t[h].key, "%s", key);
        c->t[h].ids = roaring_bitmap_create();
        c->n++;
    }
    return &c->t[h];
}

static struct chunk *chunk_find(const struct chunks *c, const char *key)
{
    if (!c->cap)
        return NULL;
    size_t h = key_hash(key) & (c->cap - 1);
    for (; c->t[h].key[0]; h = (h + 1) & (c->cap - 1))
        if (strcmp(c->t[h].key, key) == 0)
            return &c->t[h];
    return NULL;
}

static void chunks_free(struct chunks *c)
{
    for (size_t i = 0; i < c->cap; i++)
        if (c->t[i].key[0])
            roaring_bitmap_free(c->t[i].ids);
    free(c->t);
}

static uint32_t row_hash(const struct tis_schema *sc, const struct tis_value *vals,
                         struct tbuf *b)
{
    tbuf_reset(b);
    for (size_t i = 0; i < sc->nfields; i++) {
        if (vals[i].null)
            tbuf_adds(b, i ? "|-1" : "-1");
        else
            tbuf_printf(b, i ? "|%zu" : "%zu", vals[i].len);
    }
    for (size_t i = 0; i < sc->nfields; i++)
        if (!vals[i].null) { /* CONCAT_WS skips NULLs */
            tbuf_add(b, "|", 1);
            tbuf_add(b, vals[i].p, vals[i].len);
        }
    return (uint32_t)crc32(0L, (const Bytef *)(b->data ? b->data : ""), (uInt)b->len);
}

/* The chunk key of an integer primary key's text, as the server's
 * CAST(pk DIV CHUNK_WIDTH AS CHAR) writes it; false when it is not one. */
static bool chunk_key(const struct tis_field *f, const struct tis_value *v, char *out)
{
    char num[32], *end;
    if (v->null || v->len == 0 || v->len >= sizeof num)
        return false;
    memcpy(num, v->p, v->len);
    num[v->len] = 0;
    errno = 0;
    if (f->vt == VT_UINT) {
        unsigned long long u = strtoull(num, &end, 10);
        if (*end || errno || num[0] == '-')
            return false;
        snprintf(out, CHUNK_KEY_MAX, "%llu", u / CHUNK_WIDTH);
    } else {
        long long s = strtoll(num, &end, 10);
        if (*end || errno)
            return false;
        snprintf(out, CHUNK_KEY_MAX, "%lld", s / CHUNK_WIDTH); /* truncates, as DIV does */
    }
    return true;
}

static bool chunkable(struct source *src, const struct tis_schema *sc)
{
    return !source_is_tidb(src) && sc->npk == 1 &&
           (sc->fields[sc->pk[0]].vt == VT_INT || sc->fields[sc->pk[0]].vt == VT_UINT);
}

/* The daemon's side: every live document into its chunk (only those of
 * the chunks in only, when it is not NULL). */
static int our_chunks(struct pass *ps, struct chunks *c, const struct chunks *only)
{
    struct verify *v = ps->v;
    const struct tis_field *pkf = &ps->sc->fields[ps->sc->pk[0]];
    struct gen_stats st;
    gen_stats_read(v->g, ps->txn, &st);
    roaring_bitmap_t *live = st.last_id ? roaring_bitmap_from_range(1, (uint64_t)st.last_id + 1, 1)
                                        : roaring_bitmap_create();
    roaring_bitmap_t *deleted = index_deleted(ps->txn, gen_index(v->g));
    roaring_bitmap_andnot_inplace(live, deleted);
    roaring_uint32_iterator_t it;
    struct tbuf b = {0};
    char key[CHUNK_KEY_MAX];
    int rc = 0;
    uint64_t n = 0;
    roaring_init_iterator(live, &it);
    for (; it.has_value && !rc; roaring_advance_uint32_iterator(&it), n++) {
        if ((n & 0xFFFF) == 0 && n) {
            gen_release_pages(v->g);
            if (atomic_load(&v->cancel))
                rc = -1;
        }
        if (!gen_doc_values(v->g, ps->txn, it.current_value, ps->stored))
            continue;
        if (!chunk_key(pkf, &ps->stored[ps->sc->pk[0]], key)) {
            rc = 1; /* not a plain integer: compare row by row instead */
            break;
        }
        if (only && !chunk_find(only, key))
            continue;
        uint32_t h = row_hash(ps->sc, ps->stored, &b);
        struct chunk *ch = chunk_get(c, key);
        ch->count++;
        ch->x ^= h;
        ch->sum += h;
        roaring_bitmap_add(ch->ids, it.current_value);
    }
    tbuf_free(&b);
    roaring_bitmap_free(live);
    roaring_bitmap_free(deleted);
    gen_stats_free(&st);
    return rc;
}

struct server_side {
    struct pass *ps;
    struct chunks *c;
};

/* One row of the server's GROUP BY: a chunk's count and sums. */
static int server_chunk(void *arg, const struct tis_value *vals)
{
    struct server_side *ss = arg;
    char key[CHUNK_KEY_MAX];
    if (vals[0].null || vals[1].null || vals[2].null || vals[3].null)
        return 0;
    snprintf(key, sizeof key, "%.*s", (int)vals[0].len, vals[0].p);
    struct chunk *ch = chunk_get(ss->c, key);
    ch->count = strtoull(vals[1].p, NULL, 10);
    ch->x = (uint32_t)strtoul(vals[2].p, NULL, 10);
    ch->sum = strtoull(vals[3].p, NULL, 10);
    ch->server = true;
    return 0;
}

/* The daemon's side on its own thread, while the server computes its own:
 * on two cores the two sides overlap. */
struct ours_job {
    struct pass *ps;
    struct chunks c;
    const struct chunks *only;
    int rc;
};

static void *ours_thread(void *arg)
{
    struct ours_job *j = arg;
    j->rc = our_chunks(j->ps, &j->c, j->only);
    return NULL;
}

/* "`pk` DIV CHUNK_WIDTH IN (k, ...)" over the chunks of c. */
static void chunks_where(const struct tis_schema *sc, const struct chunks *c, struct tbuf *w)
{
    tidb_add_ident(w, sc->fields[sc->pk[0]].name);
    tbuf_printf(w, " DIV %d IN (", CHUNK_WIDTH);
    size_t n = 0;
    for (size_t i = 0; i < c->cap; i++)
        if (c->t[i].key[0])
            tbuf_printf(w, "%s%s", n++ ? ", " : "", c->t[i].key); /* our own digits */
    tbuf_adds(w, ")");
}

static void checksum_sql(const struct tis_spec *spec, const struct tis_schema *sc,
                         const struct chunks *only, struct tbuf *q)
{
    const char *pk = sc->fields[sc->pk[0]].name;
    tbuf_adds(q, "SELECT CAST(");
    tidb_add_ident(q, pk);
    tbuf_printf(q, " DIV %d AS CHAR), COUNT(*), BIT_XOR(h), SUM(h) FROM (SELECT ", CHUNK_WIDTH);
    tidb_add_ident(q, pk);
    tbuf_adds(q, ", CRC32(CONCAT_WS('|'");
    for (size_t i = 0; i < sc->nfields; i++) {
        tbuf_adds(q, ", IFNULL(LENGTH(CAST(");
        tidb_add_ident(q, sc->fields[i].name);
        tbuf_adds(q, " AS BINARY)), -1)");
    }
    for (size_t i = 0; i < sc->nfields; i++) {
        tbuf_adds(q, ", CAST(");
        tidb_add_ident(q, sc->fields[i].name);
        tbuf_adds(q, " AS BINARY)");
    }
    tbuf_adds(q, ")) AS h FROM ");
    tidb_add_ident(q, spec->ds.db);
    tbuf_adds(q, ".");
    tidb_add_ident(q, spec->table);
    if (only) {
        tbuf_adds(q, " WHERE ");
        chunks_where(sc, only, q);
    }
    tbuf_adds(q, ") r GROUP BY ");
    tidb_add_ident(q, pk);
    tbuf_printf(q, " DIV %d", CHUNK_WIDTH);
}

/* The rows of up to CHUNKS_PER_QUERY differing chunks, compared row by row. */
static int compare_chunk_rows(struct pass *ps, struct source *src, const struct tis_schema *sc,
                              char *const *keys, size_t n, char *err, size_t errlen)
{
    struct tbuf where = {0}, q = {0};
    tidb_add_ident(&where, sc->fields[sc->pk[0]].name);
    tbuf_printf(&where, " DIV %d IN (", CHUNK_WIDTH);
    for (size_t i = 0; i < n; i++)
        tbuf_printf(&where, "%s%s", i ? ", " : "", keys[i]); /* our own digits */
    tbuf_adds(&where, ")");
    tidb_select_sql(&q, ps->v->spec->ds.db, ps->v->spec->table, sc, where.data);
    int rc = source_query(src, q.data, sc->nfields, compare_row, ps, &ps->v->cancel, err, errlen);
    if (rc && ps->err[0])
        snprintf(err, errlen, "%s", ps->err);
    tbuf_free(&where);
    tbuf_free(&q);
    return rc;
}

/* The whole pass by chunks. Returns 0, -1 on error, or 1 when the table's
 * keys do not allow it (the caller compares row by row). */
static int chunked_pass(struct pass *ps, struct source *src, const struct tis_schema *sc,
                        char *err, size_t errlen)
{
    const struct chunks *only = ps->v->recheck;
    if (only && only->n == 0) { /* the first pass found every chunk equal */
        vlog(ps->v, "no chunk differed: nothing to check again");
        return 0;
    }
    struct ours_job ours = {ps, {0}, only, 0};
    struct chunks theirs = {0}, c = {0};
    pthread_t th;
    pthread_create(&th, NULL, ours_thread, &ours);
    struct tbuf q = {0};
    struct server_side ss = {ps, &theirs};
    checksum_sql(ps->v->spec, sc, only, &q);
    int rc = source_query(src, q.data, 4, server_chunk, &ss, &ps->v->cancel, err, errlen);
    tbuf_free(&q);
    pthread_join(th, NULL);
    if (ours.rc) /* 1: keys that are not integers (compare row by row), -1: cancelled */
        rc = ours.rc;
    if (rc < 0 && !err[0])
        snprintf(err, errlen, "cancelled");
    /* c: every chunk either side has, marked as the server has it and as
     * the sums compare. */
    for (size_t i = 0; !rc && i < theirs.cap; i++) {
        struct chunk *t = &theirs.t[i], *o;
        if (!t->key[0])
            continue;
        o = chunk_find(&ours.c, t->key);
        struct chunk *ch = chunk_get(&c, t->key);
        ch->server = true;
        ch->differ = !o || o->count != t->count || o->x != t->x || o->sum != t->sum;
        if (o)
            roaring_bitmap_or_inplace(ch->ids, o->ids);
        if (!ch->differ) { /* all its rows are equal */
            pthread_mutex_lock(&ps->v->mu);
            ps->v->checked += t->count;
            pthread_mutex_unlock(&ps->v->mu);
        }
    }
    for (size_t i = 0; !rc && i < ours.c.cap; i++)
        if (ours.c.t[i].key[0] && !chunk_find(&theirs, ours.c.t[i].key)) {
            struct chunk *ch = chunk_get(&c, ours.c.t[i].key); /* only the daemon has it */
            roaring_bitmap_or_inplace(ch->ids, ours.c.t[i].ids);
        }
    chunks_free(&ours.c);
    chunks_free(&theirs);
    roaring_bitmap_t *scope = roaring_bitmap_create();
    char **keys = xcalloc(CHUNKS_PER_QUERY, sizeof *keys);
    size_t nk = 0, ndiff = 0;
    for (size_t i = 0; !rc && i < c.cap; i++) {
        struct chunk *ch = &c.t[i];
        if (!ch->key[0] || (ch->server && !ch->differ))
            continue;
        ndiff++;
        roaring_bitmap_or_inplace(scope, ch->ids);
        if (ps->repair) { /* the second pass checks these again */
            if (!ps->v->recheck)
                ps->v->recheck = xcalloc(1, sizeof *ps->v->recheck);
            chunk_get(ps->v->recheck, ch->key);
        }
        if (ch->server) /* rows to compare; a chunk only we hold is all extra */
            keys[nk++] = ch->key;
        if (nk == CHUNKS_PER_QUERY) {
            rc = compare_chunk_rows(ps, src, sc, keys, nk, err, errlen);
            nk = 0;
        }
    }
    if (!rc && nk)
        rc = compare_chunk_rows(ps, src, sc, keys, nk, err, errlen);
    if (!rc) {
        if (ps->repair && !ps->v->recheck) /* all equal: an empty set, not "every row" */
            ps->v->recheck = xcalloc(1, sizeof *ps->v->recheck);
        vlog(ps->v, "compared %zu chunks of %d key values by checksum%s: %zu differ", c.n,
             CHUNK_WIDTH, only ? " (those the first pass found different)" : "", ndiff);
        if ((rc = find_extra(ps, scope)) != 0)
            snprintf(err, errlen, "%s", ps->err);
    }
    free(keys);
    roaring_bitmap_free(scope);
    chunks_free(&c);
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
            vlog(v, "the channel has not applied past the snapshot after %.0f s: comparing "
                    "anyway (rows changed meanwhile may show as differences)",
                 VERIFY_CHANNEL_WAIT_SEC);
            return;
        }
        if (mono_now() - said > 10) {
            vlog(v, "waiting for the channel to apply past the snapshot");
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

/* One comparison of the whole table at a fresh snapshot. */
static int one_pass(struct verify *v, bool repair, char *err, size_t errlen)
{
    struct source *src = source_connect(&v->spec->ds, source_line, v, err, errlen);
    struct tis_schema *sc = src ? source_describe(src, v->spec, err, errlen) : NULL;
    struct json_object *info = NULL;
    int rc = !sc || same_schema(sc, gen_schema(v->g), err, errlen) ||
             source_begin_snapshot(src, &info, err, errlen) ? -1 : 0;
    struct pass ps = {.v = v, .sc = gen_schema(v->g), .repair = repair};
    if (!rc) {
        v->total = source_estimate_rows(src, v->spec);
        ps.snap = gen_version_of_snapshot(info);
        pthread_mutex_lock(&v->mu);
        json_object_put(v->snapshot);
        v->snapshot = json_object_get(info);
        pthread_mutex_unlock(&v->mu);
        vlog(v, "snapshot: %s", json_object_to_json_string(info));
        wait_for_channel(v, ps.snap);
        reset_counts(v);
        ps.seen = roaring_bitmap_create();
        ps.stored = xcalloc(ps.sc->nfields, sizeof *ps.stored);
        if (repair && !(ps.an = analyzer_new(err, errlen)))
            rc = -1;
        if (!rc && (rc = gen_txn_begin(v->g, &ps.txn)) != 0)
            snprintf(err, errlen, "reading the index: %s", mdb_strerror(rc));
    }
    int chunked = !rc && chunkable(src, sc) ? chunked_pass(&ps, src, sc, err, errlen) : 1;
    if (chunked <= 0)
        rc = chunked;
    else if (!rc) {
        reset_counts(v);
        roaring_bitmap_clear(ps.seen);
        rc = source_stream(src, v->spec, sc, compare_row, &ps, &v->cancel, err, errlen);
        if (rc && ps.err[0])
            snprintf(err, errlen, "%s", ps.err);
        if (!rc && (rc = find_extra(&ps, NULL)) != 0)
            snprintf(err, errlen, "%s", ps.err);
    }
    if (!rc && (rc = flush_repairs(&ps)) != 0)
        snprintf(err, errlen, "%s", ps.err);
    if (ps.w)
        gen_write_abort(ps.w);
    if (ps.txn)
        mdb_txn_abort(ps.txn);
    if (!rc && atomic_load(&v->cancel))
        rc = -1, snprintf(err, errlen, "%s", v->cancel_reason);
    analyzer_free(ps.an);
    tbuf_free(&ps.key);
    free(ps.stored);
    if (ps.seen)
        roaring_bitmap_free(ps.seen);
    json_object_put(info);
    schema_free(sc);
    source_close(src);
    return rc;
}

static void summary(struct verify *v)
{
    pthread_mutex_lock(&v->mu);
    uint64_t c = v->checked, m = v->missing, e = v->extra, d = v->differ, n = v->newer;
    pthread_mutex_unlock(&v->mu);
    vlog(v, "%s: %llu rows checked: %llu missing, %llu extra, %llu differ, %llu newer", v->stage,
         (unsigned long long)c, (unsigned long long)m, (unsigned long long)e,
         (unsigned long long)d, (unsigned long long)n);
}

static void *run(void *arg)
{
    struct verify *v = arg;
    char err[1024] = "";
    vlog(v, "task %llu (verify%s) started for collection %s", (unsigned long long)v->id,
         v->repair ? ", repair" : "", v->collection);
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
        vlog(v, "repaired %llu rows: verifying again", (unsigned long long)fixed);
        if ((rc = one_pass(v, false, err, sizeof err)) == 0)
            summary(v);
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
        vlog(v, "FAILED: %s", err);
    else
        vlog(v, "task %llu complete in %.1f s", (unsigned long long)v->id, v->secs);
    persist(v);
    cat_sync(v->cat);
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
    pthread_create(&v->thread, NULL, run, v);
    return v;
}

bool verify_running(struct verify *v)
{
    pthread_mutex_lock(&v->mu);
    bool r = v->running;
    pthread_mutex_unlock(&v->mu);
    return r;
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
    pthread_mutex_unlock(&v->mu);
    atomic_store(&v->cancel, true);
}

void verify_join_free(struct verify *v)
{
    if (!v)
        return;
    pthread_join(v->thread, NULL);
    gen_unref(v->g);
    spec_free(v->spec);
    json_object_put(v->samples);
    json_object_put(v->snapshot);
    json_object_put(v->found);
    if (v->recheck) {
        chunks_free(v->recheck);
        free(v->recheck);
    }
    gen_release_pages(v->g);
    pthread_mutex_destroy(&v->mu);
    free(v->collection);
    free(v);
}
