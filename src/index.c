/* index — inverted index: bulk build (worker, runs, merge) and reading. */
#define _GNU_SOURCE
#include "tisfs/index.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tisfs/util.h"

/* Rows per batch handed to the worker, and batches in flight: enough to keep
 * both threads busy, little enough to keep memory flat. */
#define BATCH_ROWS 2048
#define BATCH_BYTES ((size_t)8 << 20)
#define QUEUE_BATCHES 4
#define COMMIT_EVERY 50000

/* ---- typed terms ---- */

bool field_is_typed(const struct tis_field *f)
{
    if (f->token != TOK_DEFAULT)
        return false;
    switch (f->vt) {
    case VT_INT: case VT_UINT: case VT_FLOAT: case VT_DECIMAL: case VT_DATE:
    case VT_DATETIME: case VT_TIME: case VT_YEAR: case VT_BIT:
        return true;
    default:
        return false;
    }
}

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

bool index_typed_term(enum tis_vtype vt, const char *text, size_t len, unsigned char *out,
                      size_t *n)
{
    char buf[64], *end;
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, text, len);
    buf[len] = 0;
    errno = 0;
    switch (vt) {
    case VT_INT:
    case VT_YEAR: {
        long long v = strtoll(buf, &end, 10);
        if (*end || errno)
            return false;
        put_be64(out, (uint64_t)v ^ ((uint64_t)1 << 63));
        *n = 8;
        return true;
    }
    case VT_UINT:
    case VT_BIT: {
        unsigned long long v = strtoull(buf, &end, 10);
        if (*end || errno || buf[0] == '-')
            return false;
        put_be64(out, v);
        *n = 8;
        return true;
    }
    case VT_FLOAT:
    case VT_DECIMAL: {
        double d = strtod(buf, &end);
        if (*end || end == buf || isnan(d))
            return false;
        if (d == 0)
            d = 0; /* -0 sorts with 0 */
        uint64_t bits;
        memcpy(&bits, &d, 8);
        bits = bits >> 63 ? ~bits : bits ^ ((uint64_t)1 << 63);
        put_be64(out, bits);
        *n = 8;
        return true;
    }
    default: /* date, datetime, time: fixed-width text sorts as it reads */
        for (size_t i = 0; i < len; i++)
            out[i] = buf[i] == 'T' ? ' ' : (unsigned char)buf[i];
        *n = len;
        if (*n && out[*n - 1] == 'Z')
            (*n)--;
        return *n > 0 && len <= 32;
    }
}

/* ---- posting encoding ---- */

static void posting_encode(const uint32_t *docs, const uint8_t *tf, uint32_t n, struct tbuf *out)
{
    roaring_bitmap_t *r = roaring_bitmap_create_with_capacity(n);
    roaring_bitmap_add_many(r, n, docs);
    roaring_bitmap_run_optimize(r);
    size_t size = roaring_bitmap_portable_size_in_bytes(r);
    uint32_t sz = (uint32_t)size;
    tbuf_reset(out);
    tbuf_reserve(out, 4 + size + n);
    memcpy(out->data, &sz, 4);
    roaring_bitmap_portable_serialize(r, out->data + 4);
    memcpy(out->data + 4 + size, tf, n);
    out->len = 4 + size + n;
    roaring_bitmap_free(r);
}

bool posting_decode(const MDB_val *v, struct posting *out)
{
    uint32_t sz;
    if (v->mv_size < 4)
        return false;
    memcpy(&sz, v->mv_data, 4);
    if (sz > v->mv_size - 4)
        return false;
    out->docs = roaring_bitmap_portable_deserialize_safe((const char *)v->mv_data + 4, sz);
    out->tf = (const uint8_t *)v->mv_data + 4 + sz;
    if (!out->docs)
        return false;
    if (4 + sz + roaring_bitmap_get_cardinality(out->docs) > v->mv_size) {
        roaring_bitmap_free(out->docs);
        return false;
    }
    return true;
}

uint32_t posting_tf(const struct posting *p, uint32_t doc)
{
    if (!roaring_bitmap_contains(p->docs, doc))
        return 0;
    return p->tf[roaring_bitmap_rank(p->docs, doc) - 1];
}

int index_open_dbs(MDB_txn *txn, bool create, struct index_dbs *d)
{
    unsigned f = create ? MDB_CREATE : 0;
    int rc = mdb_dbi_open(txn, "terms", f, &d->terms);
    if (!rc)
        rc = mdb_dbi_open(txn, "flen", f | MDB_INTEGERKEY, &d->flen);
    if (!rc)
        rc = mdb_dbi_open(txn, "exists", f, &d->exists);
    return rc;
}

/* ---- in-memory accumulation ---- */

/* Terms of the current run: open addressing over term ids (0 = empty slot). */
struct dict {
    uint32_t *slots;
    size_t cap; /* power of two */
    struct tbuf arena;
    uint32_t *key_off, *last_doc, *last_idx;
    uint16_t *key_len;
    uint32_t nterms, terms_cap;
};

struct postlog {
    uint32_t *tid, *doc;
    uint8_t *tf;
    size_t n, cap;
};

struct field_stats {
    uint64_t docs, tokens;
};

struct batch {
    uint32_t first_id;
    size_t nrows;
    struct tbuf data; /* rows encoded as gen.c does: varint(len+1) or 0 per field */
};

struct index_builder {
    struct tis_schema *sc;
    struct analysis_opts opts;
    struct analyzer *an;
    char *tmpdir;
    size_t budget;

    /* worker side */
    struct dict dict;
    struct postlog log;
    int nruns;
    FILE *flen;
    roaring_bitmap_t **exists;
    struct field_stats *stats;
    uint32_t *lens; /* per field, current doc */
    char werr[4200];

    /* queue */
    pthread_t worker;
    bool started, sync_init;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct batch *q[QUEUE_BATCHES];
    size_t qhead, qlen;
    bool closing;
    struct batch *cur; /* producer's batch being filled */
    uint32_t next_id;
};

static uint64_t hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p; /* FNV-1a, 64 bit */
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

static void dict_grow(struct dict *d)
{
    size_t cap = d->cap ? d->cap * 2 : 1 << 16;
    uint32_t *slots = xcalloc(cap, sizeof *slots);
    for (size_t i = 0; i < d->cap; i++) {
        uint32_t t = d->slots[i];
        if (!t)
            continue;
        size_t h = hash_bytes(d->arena.data + d->key_off[t], d->key_len[t]) & (cap - 1);
        while (slots[h])
            h = (h + 1) & (cap - 1);
        slots[h] = t;
    }
    free(d->slots);
    d->slots = slots;
    d->cap = cap;
}

/* Returns the id of key, adding it when new. Ids start at 1. */
static uint32_t dict_id(struct dict *d, const void *key, size_t len)
{
    if ((d->nterms + 1) * 2 >= d->cap)
        dict_grow(d);
    size_t h = hash_bytes(key, len) & (d->cap - 1);
    for (uint32_t t; (t = d->slots[h]); h = (h + 1) & (d->cap - 1))
        if (d->key_len[t] == len && memcmp(d->arena.data + d->key_off[t], key, len) == 0)
            return t;
    uint32_t t = ++d->nterms;
    if (t >= d->terms_cap) {
        d->terms_cap = d->terms_cap ? d->terms_cap * 2 : 1 << 16;
        d->key_off = xrealloc(d->key_off, d->terms_cap * sizeof *d->key_off);
        d->key_len = xrealloc(d->key_len, d->terms_cap * sizeof *d->key_len);
        d->last_doc = xrealloc(d->last_doc, d->terms_cap * sizeof *d->last_doc);
        d->last_idx = xrealloc(d->last_idx, d->terms_cap * sizeof *d->last_idx);
    }
    d->key_off[t] = (uint32_t)d->arena.len;
    d->key_len[t] = (uint16_t)len;
    d->last_doc[t] = 0;
    tbuf_add(&d->arena, key, len);
    d->slots[h] = t;
    return t;
}

static void dict_reset(struct dict *d)
{
    if (d->slots)
        memset(d->slots, 0, d->cap * sizeof *d->slots);
    tbuf_reset(&d->arena);
    d->nterms = 0;
}

static void dict_free(struct dict *d)
{
    free(d->slots);
    tbuf_free(&d->arena);
    free(d->key_off);
    free(d->key_len);
    free(d->last_doc);
    free(d->last_idx);
}

static size_t mem_used(const struct index_builder *b)
{
    return b->dict.arena.cap + (size_t)b->dict.terms_cap * 14 + b->dict.cap * 4 +
           b->log.cap * 9;
}

static void add_posting(struct index_builder *b, const void *key, size_t len, uint32_t doc)
{
    struct dict *d = &b->dict;
    uint32_t t = dict_id(d, key, len);
    if (d->last_doc[t] == doc) {
        uint8_t *tf = &b->log.tf[d->last_idx[t]];
        if (*tf < 255)
            (*tf)++;
        return;
    }
    struct postlog *l = &b->log;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1 << 20;
        l->tid = xrealloc(l->tid, l->cap * sizeof *l->tid);
        l->doc = xrealloc(l->doc, l->cap * sizeof *l->doc);
        l->tf = xrealloc(l->tf, l->cap);
    }
    l->tid[l->n] = t;
    l->doc[l->n] = doc;
    l->tf[l->n] = 1;
    d->last_doc[t] = doc;
    d->last_idx[t] = (uint32_t)l->n++;
}

/* ---- runs ---- */

static int cmp_keys(const void *a, size_t an, const void *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

static int cmp_tid(const void *x, const void *y, void *arg)
{
    const struct dict *d = arg;
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return cmp_keys(d->arena.data + d->key_off[a], d->key_len[a], d->arena.data + d->key_off[b],
                    d->key_len[b]);
}

static void run_path(const struct index_builder *b, int i, char *buf, size_t len)
{
    snprintf(buf, len, "%s/run-%d.tmp", b->tmpdir, i);
}

static void fput_varint(FILE *f, uint64_t v)
{
    while (v >= 0x80) {
        putc((int)(v | 0x80), f);
        v >>= 7;
    }
    putc((int)v, f);
}

/* Writes the accumulated postings as one sorted run and empties memory. */
static int spill(struct index_builder *b)
{
    struct dict *d = &b->dict;
    struct postlog *l = &b->log;
    if (!l->n)
        return 0;
    char path[4096];
    run_path(b, b->nruns, path, sizeof path);
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(b->werr, sizeof b->werr, "%s: %s", path, strerror(errno));
        return -1;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    /* Group postings by term (counting sort keeps doc order), then write the
     * terms in key order. */
    uint32_t *start = xcalloc(d->nterms + 2, sizeof *start);
    for (size_t i = 0; i < l->n; i++)
        start[l->tid[i] + 1]++;
    for (uint32_t t = 1; t <= d->nterms + 1; t++)
        start[t] += start[t - 1];
    uint32_t *order = xmalloc(l->n * sizeof *order), *fill = xmalloc((d->nterms + 1) * sizeof *fill);
    memcpy(fill, start, (d->nterms + 1) * sizeof *fill);
    for (size_t i = 0; i < l->n; i++)
        order[fill[l->tid[i]]++] = (uint32_t)i;
    uint32_t *tids = xmalloc((d->nterms + 1) * sizeof *tids);
    for (uint32_t t = 0; t < d->nterms; t++)
        tids[t] = t + 1;
    qsort_r(tids, d->nterms, sizeof *tids, cmp_tid, d);
    for (uint32_t k = 0; k < d->nterms; k++) {
        uint32_t t = tids[k], n = start[t + 1] - start[t];
        fput_varint(f, d->key_len[t]);
        fwrite(d->arena.data + d->key_off[t], 1, d->key_len[t], f);
        fput_varint(f, n);
        uint32_t prev = 0;
        for (uint32_t j = start[t]; j < start[t + 1]; j++) {
            fput_varint(f, l->doc[order[j]] - prev);
            prev = l->doc[order[j]];
        }
        for (uint32_t j = start[t]; j < start[t + 1]; j++)
            putc(l->tf[order[j]], f);
    }
    free(start);
    free(order);
    free(fill);
    free(tids);
    int rc = ferror(f) | fclose(f);
    if (rc) {
        snprintf(b->werr, sizeof b->werr, "write %s: %s", path, strerror(errno));
        return -1;
    }
    b->nruns++;
    dict_reset(d);
    l->n = 0;
    return 0;
}

/* ---- the worker ---- */

struct tok_ctx {
    struct index_builder *b;
    uint32_t doc;
    uint8_t field;
    struct tbuf key;
};

static int on_token(void *arg, const char *term, size_t len, uint32_t pos)
{
    (void)pos;
    struct tok_ctx *c = arg;
    c->key.len = 1;
    tbuf_add(&c->key, term, len);
    add_posting(c->b, c->key.data, c->key.len, c->doc);
    return 0;
}

static void bit_to_decimal(const char *p, size_t len, char *out, size_t outlen)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len && i < 8; i++)
        v = v << 8 | (unsigned char)p[i];
    snprintf(out, outlen, "%llu", (unsigned long long)v);
}

static void index_value(struct index_builder *b, struct tok_ctx *c, size_t i, const char *p,
                        size_t len)
{
    const struct tis_field *f = &b->sc->fields[i];
    c->field = (uint8_t)i;
    c->key.len = 0;
    tbuf_add(&c->key, &c->field, 1);
    if (field_is_typed(f)) {
        unsigned char term[40];
        size_t n;
        char dec[24];
        if (f->vt == VT_BIT) {
            bit_to_decimal(p, len, dec, sizeof dec);
            p = dec;
            len = strlen(dec);
        }
        if (index_typed_term(f->vt, p, len, term, &n)) {
            tbuf_add(&c->key, term, n);
            add_posting(b, c->key.data, c->key.len, c->doc);
            b->lens[i] = 1;
        }
    } else if (f->token != TOK_DEFAULT) {
        b->lens[i] = analyze(b->an, f->token, &b->opts, p, len, on_token, c);
    }
}

static void index_row(struct index_builder *b, struct tok_ctx *c, const unsigned char *p,
                      const unsigned char *end)
{
    memset(b->lens, 0, b->sc->nfields * sizeof *b->lens);
    for (size_t i = 0; i < b->sc->nfields; i++) {
        uint64_t n;
        if (!varint_read(&p, end, &n) || (uint64_t)(end - p) < (n ? n - 1 : 0))
            break;
        if (n && b->sc->fields[i].search) {
            index_value(b, c, i, (const char *)p, n - 1);
            roaring_bitmap_add(b->exists[i], c->doc);
            b->stats[i].docs += b->lens[i] > 0;
            b->stats[i].tokens += b->lens[i];
        }
        p += n ? n - 1 : 0;
    }
    fwrite(b->lens, sizeof *b->lens, b->sc->nfields, b->flen);
}

static struct batch *queue_pop(struct index_builder *b)
{
    pthread_mutex_lock(&b->mu);
    while (!b->qlen && !b->closing)
        pthread_cond_wait(&b->cv, &b->mu);
    struct batch *bt = NULL;
    if (b->qlen) {
        bt = b->q[b->qhead];
        b->qhead = (b->qhead + 1) % QUEUE_BATCHES;
        b->qlen--;
        pthread_cond_broadcast(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    return bt;
}

static void *worker(void *arg)
{
    struct index_builder *b = arg;
    struct tok_ctx c = {.b = b};
    for (struct batch *bt; (bt = queue_pop(b));) {
        const unsigned char *p = (const unsigned char *)bt->data.data, *end = p + bt->data.len;
        for (size_t r = 0; r < bt->nrows; r++) {
            uint64_t rowlen;
            varint_read(&p, end, &rowlen);
            c.doc = bt->first_id + (uint32_t)r;
            if (!b->werr[0])
                index_row(b, &c, p, p + rowlen);
            p += rowlen;
        }
        tbuf_free(&bt->data);
        free(bt);
        if (!b->werr[0] && mem_used(b) > b->budget)
            spill(b);
    }
    tbuf_free(&c.key);
    return NULL;
}

static void queue_push(struct index_builder *b, struct batch *bt)
{
    pthread_mutex_lock(&b->mu);
    while (b->qlen == QUEUE_BATCHES)
        pthread_cond_wait(&b->cv, &b->mu);
    b->q[(b->qhead + b->qlen) % QUEUE_BATCHES] = bt;
    b->qlen++;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

struct index_builder *index_builder_new(const struct tis_schema *sc,
                                        const struct analysis_opts *opts, const char *tmpdir,
                                        size_t mem_budget, char *err, size_t errlen)
{
    struct index_builder *b = xcalloc(1, sizeof *b);
    struct json_object *j = schema_to_json(sc);
    b->sc = schema_from_json(j);
    json_object_put(j);
    b->opts = *opts;
    b->tmpdir = xstrdup(tmpdir);
    b->budget = mem_budget ? mem_budget : INDEX_MEM_BUDGET_DEFAULT;
    b->lens = xcalloc(sc->nfields, sizeof *b->lens);
    b->stats = xcalloc(sc->nfields, sizeof *b->stats);
    b->exists = xcalloc(sc->nfields, sizeof *b->exists);
    for (size_t i = 0; i < sc->nfields; i++)
        b->exists[i] = roaring_bitmap_create();
    char path[4096];
    snprintf(path, sizeof path, "%s/flen.tmp", tmpdir);
    b->an = analyzer_new(err, errlen);
    b->flen = b->an ? fopen(path, "w+b") : NULL;
    if (!b->flen) {
        if (b->an)
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        index_builder_free(b);
        return NULL;
    }
    setvbuf(b->flen, NULL, _IOFBF, 1 << 20);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->sync_init = true;
    b->started = pthread_create(&b->worker, NULL, worker, b) == 0;
    if (!b->started) {
        snprintf(err, errlen, "cannot start the tokenizer thread");
        index_builder_free(b);
        return NULL;
    }
    return b;
}

int index_builder_add(struct index_builder *b, uint32_t docid, const struct tis_value *vals)
{
    if (!b->cur) {
        b->cur = xcalloc(1, sizeof *b->cur);
        b->cur->first_id = docid;
    }
    struct batch *bt = b->cur;
    size_t at = bt->data.len;
    tbuf_add(&bt->data, "\0\0\0\0\0", 5); /* room for varint(row length) */
    size_t body = bt->data.len;
    for (size_t i = 0; i < b->sc->nfields; i++) {
        bool want = b->sc->fields[i].search && !vals[i].null;
        tbuf_add_varint(&bt->data, want ? vals[i].len + 1 : 0);
        if (want)
            tbuf_add(&bt->data, vals[i].p, vals[i].len);
    }
    /* Write the length as a fixed 5-byte varint so no bytes move. */
    uint64_t n = bt->data.len - body;
    unsigned char *lp = (unsigned char *)bt->data.data + at;
    for (int k = 0; k < 4; k++, n >>= 7)
        lp[k] = (unsigned char)(n | 0x80);
    lp[4] = (unsigned char)n;
    bt->nrows++;
    b->next_id = docid + 1;
    if (bt->nrows >= BATCH_ROWS || bt->data.len >= BATCH_BYTES) {
        queue_push(b, bt);
        b->cur = NULL;
    }
    return 0;
}

/* ---- merge ---- */

struct run {
    FILE *f;
    bool live;
    struct tbuf key;
    uint32_t n;
};

static uint64_t fget_varint(FILE *f, bool *ok)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        int c = getc(f);
        if (c == EOF) {
            *ok = false;
            return 0;
        }
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    *ok = false;
    return 0;
}

static void run_next(struct run *r)
{
    bool ok = true;
    uint64_t klen = fget_varint(r->f, &ok);
    if (!ok || klen > 1024) {
        r->live = false;
        return;
    }
    tbuf_reset(&r->key);
    tbuf_reserve(&r->key, klen);
    r->key.len = fread(r->key.data, 1, klen, r->f);
    r->n = (uint32_t)fget_varint(r->f, &ok);
    r->live = ok && r->key.len == klen;
}

struct merged {
    uint32_t *docs;
    uint8_t *tf;
    size_t n, cap;
};

static void run_take(struct run *r, struct merged *m)
{
    bool ok = true;
    if (m->n + r->n > m->cap) {
        m->cap = (m->n + r->n) * 2;
        m->docs = xrealloc(m->docs, m->cap * sizeof *m->docs);
        m->tf = xrealloc(m->tf, m->cap);
    }
    uint32_t prev = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        prev += (uint32_t)fget_varint(r->f, &ok);
        m->docs[m->n + i] = prev;
    }
    if (fread(m->tf + m->n, 1, r->n, r->f) != r->n)
        ok = false;
    m->n += r->n;
    if (ok)
        run_next(r);
    else
        r->live = false;
}

static int txn_renew(MDB_env *env, MDB_txn **txn)
{
    int rc = mdb_txn_commit(*txn);
    *txn = NULL;
    return rc ? rc : mdb_txn_begin(env, NULL, 0, txn);
}

static int merge_runs(struct index_builder *b, MDB_env *env, const struct index_dbs *d,
                      MDB_txn **txn)
{
    struct run *runs = xcalloc((size_t)b->nruns + 1, sizeof *runs);
    struct merged m = {0};
    struct tbuf val = {0};
    int rc = 0;
    char path[4096];
    for (int i = 0; i < b->nruns; i++) {
        run_path(b, i, path, sizeof path);
        runs[i].f = fopen(path, "rb");
        if (runs[i].f) {
            setvbuf(runs[i].f, NULL, _IOFBF, 1 << 18);
            run_next(&runs[i]);
        }
    }
    for (uint64_t written = 0; !rc;) {
        int lo = -1;
        for (int i = 0; i < b->nruns; i++)
            if (runs[i].live && (lo < 0 || cmp_keys(runs[i].key.data, runs[i].key.len,
                                                    runs[lo].key.data, runs[lo].key.len) < 0))
                lo = i;
        if (lo < 0)
            break;
        /* Runs hold increasing document ranges: taking equal keys in run
         * order concatenates postings in document order. */
        struct tbuf key = {0};
        tbuf_add(&key, runs[lo].key.data, runs[lo].key.len);
        m.n = 0;
        for (int i = lo; i < b->nruns; i++)
            if (runs[i].live && cmp_keys(runs[i].key.data, runs[i].key.len, key.data, key.len) == 0)
                run_take(&runs[i], &m);
        posting_encode(m.docs, m.tf, (uint32_t)m.n, &val);
        MDB_val k = {key.len, key.data}, v = {val.len, val.data};
        rc = mdb_put(*txn, d->terms, &k, &v, MDB_APPEND);
        tbuf_free(&key);
        if (!rc && ++written % COMMIT_EVERY == 0)
            rc = txn_renew(env, txn);
    }
    for (int i = 0; i < b->nruns; i++) {
        if (runs[i].f)
            fclose(runs[i].f);
        tbuf_free(&runs[i].key);
        run_path(b, i, path, sizeof path);
        unlink(path);
    }
    free(runs);
    free(m.docs);
    free(m.tf);
    tbuf_free(&val);
    return rc;
}

static int write_norms(struct index_builder *b, MDB_env *env, const struct index_dbs *d,
                       MDB_txn **txn)
{
    size_t width = b->sc->nfields * sizeof(uint32_t);
    uint32_t *rec = xmalloc(width);
    int rc = fflush(b->flen) || fseek(b->flen, 0, SEEK_SET) ? errno : 0;
    for (uint32_t id = 1; !rc && id < b->next_id; id++) {
        if (fread(rec, 1, width, b->flen) != width) {
            rc = EIO;
            break;
        }
        MDB_val k = {sizeof id, &id}, v = {width, rec};
        rc = mdb_put(*txn, d->flen, &k, &v, MDB_APPEND);
        if (!rc && id % COMMIT_EVERY == 0)
            rc = txn_renew(env, txn);
    }
    free(rec);
    return rc;
}

static int write_exists(struct index_builder *b, const struct index_dbs *d, MDB_txn *txn)
{
    struct tbuf v = {0};
    int rc = 0;
    for (size_t i = 0; i < b->sc->nfields && !rc; i++) {
        roaring_bitmap_run_optimize(b->exists[i]);
        size_t n = roaring_bitmap_portable_size_in_bytes(b->exists[i]);
        tbuf_reset(&v);
        tbuf_reserve(&v, n);
        roaring_bitmap_portable_serialize(b->exists[i], v.data);
        uint8_t f = (uint8_t)i;
        MDB_val key = {1, &f}, val = {n, v.data};
        rc = mdb_put(txn, d->exists, &key, &val, 0);
    }
    tbuf_free(&v);
    return rc;
}

static struct json_object *stats_json(const struct index_builder *b)
{
    struct json_object *o = json_object_new_object();
    for (size_t i = 0; i < b->sc->nfields; i++) {
        struct json_object *f = json_object_new_object();
        json_object_object_add(f, "docs", json_object_new_int64((int64_t)b->stats[i].docs));
        json_object_object_add(f, "tokens", json_object_new_int64((int64_t)b->stats[i].tokens));
        json_object_object_add(o, b->sc->fields[i].name, f);
    }
    return o;
}

static void stop_worker(struct index_builder *b)
{
    if (!b->started)
        return;
    if (b->cur) {
        queue_push(b, b->cur);
        b->cur = NULL;
    }
    pthread_mutex_lock(&b->mu);
    b->closing = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->worker, NULL);
    b->started = false;
}

int index_builder_finish(struct index_builder *b, MDB_env *env, const struct index_dbs *d,
                         struct json_object **stats, char *err, size_t errlen)
{
    stop_worker(b);
    if (!b->werr[0])
        spill(b);
    if (b->werr[0]) {
        snprintf(err, errlen, "index: %s", b->werr);
        return -1;
    }
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (!rc)
        rc = merge_runs(b, env, d, &txn);
    if (!rc)
        rc = write_norms(b, env, d, &txn);
    if (!rc)
        rc = write_exists(b, d, txn);
    if (!rc) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (txn)
        mdb_txn_abort(txn);
    if (rc) {
        snprintf(err, errlen, "index: %s", rc > 0 ? strerror(rc) : mdb_strerror(rc));
        return -1;
    }
    *stats = stats_json(b);
    return 0;
}

void index_builder_free(struct index_builder *b)
{
    if (!b)
        return;
    stop_worker(b);
    char path[4096];
    for (int i = 0; i < b->nruns; i++) {
        run_path(b, i, path, sizeof path);
        unlink(path);
    }
    if (b->flen) {
        fclose(b->flen);
        snprintf(path, sizeof path, "%s/flen.tmp", b->tmpdir);
        unlink(path);
    }
    for (size_t i = 0; b->exists && i < b->sc->nfields; i++)
        roaring_bitmap_free(b->exists[i]);
    if (b->cur) {
        tbuf_free(&b->cur->data);
        free(b->cur);
    }
    free(b->exists);
    free(b->stats);
    free(b->lens);
    dict_free(&b->dict);
    free(b->log.tid);
    free(b->log.doc);
    free(b->log.tf);
    analyzer_free(b->an);
    schema_free(b->sc);
    free(b->tmpdir);
    if (b->sync_init) {
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->cv);
    }
    free(b);
}

/* ---- reading ---- */

static void term_key(uint8_t field, const void *term, size_t len, struct tbuf *k)
{
    tbuf_reset(k);
    tbuf_add(k, &field, 1);
    tbuf_add(k, term, len);
}

int index_term(MDB_txn *txn, const struct index_dbs *d, uint8_t field, const void *term,
               size_t len, struct posting *out)
{
    struct tbuf k = {0};
    term_key(field, term, len, &k);
    MDB_val key = {k.len, k.data}, v;
    int rc = mdb_get(txn, d->terms, &key, &v);
    tbuf_free(&k);
    if (rc)
        return rc;
    return posting_decode(&v, out) ? 0 : MDB_CORRUPTED;
}

int index_terms_between(MDB_txn *txn, const struct index_dbs *d, uint8_t field, const void *lo,
                        size_t lolen, bool incl_lo, const void *hi, size_t hilen, bool incl_hi,
                        term_fn fn, void *arg)
{
    MDB_cursor *cur;
    struct tbuf k = {0};
    term_key(field, lo ? lo : "", lo ? lolen : 0, &k);
    MDB_val key = {k.len, k.data}, v;
    int rc = mdb_cursor_open(txn, d->terms, &cur);
    if (rc) {
        tbuf_free(&k);
        return rc;
    }
    for (rc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &key, &v, MDB_NEXT)) {
        const unsigned char *kp = key.mv_data;
        if (key.mv_size < 1 || kp[0] != field)
            break;
        const unsigned char *t = kp + 1;
        size_t tn = key.mv_size - 1;
        if (lo && !incl_lo && cmp_keys(t, tn, lo, lolen) == 0)
            continue;
        if (hi) {
            int c = cmp_keys(t, tn, hi, hilen);
            if (c > 0 || (c == 0 && !incl_hi))
                break;
        }
        if (fn(arg, t, tn, &v)) {
            rc = 0;
            break;
        }
    }
    mdb_cursor_close(cur);
    tbuf_free(&k);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

roaring_bitmap_t *index_exists(MDB_txn *txn, const struct index_dbs *d, uint8_t field)
{
    MDB_val k = {1, &field}, v;
    roaring_bitmap_t *r = NULL;
    if (mdb_get(txn, d->exists, &k, &v) == 0)
        r = roaring_bitmap_portable_deserialize_safe(v.mv_data, v.mv_size);
    return r ? r : roaring_bitmap_create();
}

uint32_t index_field_len(MDB_txn *txn, const struct index_dbs *d, uint32_t doc, uint8_t field)
{
    MDB_val k = {sizeof doc, &doc}, v;
    uint32_t n = 0;
    if (mdb_get(txn, d->flen, &k, &v) == 0 && (size_t)(field + 1) * 4 <= v.mv_size)
        memcpy(&n, (const char *)v.mv_data + (size_t)field * 4, 4);
    return n;
}

/* ---- incremental maintenance ---- */

/* The terms of one document: (key, tf) pairs, keys NUL-free-length-prefixed
 * in a buffer, sorted and merged so each key appears once. */
struct doc_terms {
    struct tbuf keys; /* u16 length + key bytes, one after another */
    size_t n;
    uint32_t *lens;
    const struct tis_schema *sc;
    uint8_t field;
};

static int doc_token(void *arg, const char *t, size_t len, uint32_t pos)
{
    (void)pos;
    struct doc_terms *dt = arg;
    uint16_t n = (uint16_t)(len + 1);
    tbuf_add(&dt->keys, &n, 2);
    tbuf_add(&dt->keys, &dt->field, 1);
    tbuf_add(&dt->keys, t, len);
    dt->n++;
    return 0;
}

static void doc_collect(struct doc_terms *dt, struct analyzer *an, const struct analysis_opts *o,
                        const struct tis_value *vals)
{
    for (size_t i = 0; i < dt->sc->nfields; i++) {
        const struct tis_field *f = &dt->sc->fields[i];
        dt->lens[i] = 0;
        if (!f->search || vals[i].null)
            continue;
        dt->field = (uint8_t)i;
        if (field_is_typed(f)) {
            unsigned char term[40];
            size_t n;
            char dec[24];
            const char *p = vals[i].p;
            size_t len = vals[i].len;
            if (f->vt == VT_BIT) {
                bit_to_decimal(p, len, dec, sizeof dec);
                p = dec;
                len = strlen(dec);
            }
            if (index_typed_term(f->vt, p, len, term, &n)) {
                doc_token(dt, (const char *)term, n, 0);
                dt->lens[i] = 1;
            }
        } else if (f->token != TOK_DEFAULT)
            dt->lens[i] = analyze(an, f->token, o, vals[i].p, vals[i].len, doc_token, dt);
    }
}

struct keyref {
    const unsigned char *p;
    uint16_t len;
};

static int cmp_keyref(const void *a, const void *b)
{
    const struct keyref *x = a, *y = b;
    return cmp_keys(x->p, x->len, y->p, y->len);
}

/* Sorted distinct keys with their counts. */
static struct keyref *doc_sorted(struct doc_terms *dt, uint32_t **tf, size_t *n)
{
    struct keyref *r = xcalloc(dt->n + 1, sizeof *r);
    const unsigned char *p = (const unsigned char *)dt->keys.data;
    for (size_t i = 0; i < dt->n; i++) {
        memcpy(&r[i].len, p, 2);
        r[i].p = p + 2;
        p += 2 + r[i].len;
    }
    qsort(r, dt->n, sizeof *r, cmp_keyref);
    *tf = xcalloc(dt->n + 1, sizeof **tf);
    *n = 0;
    for (size_t i = 0; i < dt->n; i++) {
        if (*n && cmp_keyref(&r[*n - 1], &r[i]) == 0) {
            (*tf)[*n - 1]++;
            continue;
        }
        r[*n] = r[i];
        (*tf)[(*n)++] = 1;
    }
    return r;
}

/* Adds (tf > 0) or removes (tf == 0) doc in the posting of key. */
static int posting_update(MDB_txn *txn, MDB_dbi dbi, const struct keyref *k, uint32_t doc,
                          uint32_t tf)
{
    MDB_val key = {k->len, (void *)k->p}, v;
    struct posting p = {NULL, NULL};
    int rc = mdb_get(txn, dbi, &key, &v);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    if (rc == 0 && !posting_decode(&v, &p))
        return MDB_CORRUPTED;
    uint32_t n = p.docs ? (uint32_t)roaring_bitmap_get_cardinality(p.docs) : 0;
    uint32_t *docs = xcalloc(n + 1, sizeof *docs);
    uint8_t *tfs = xcalloc(n + 1, 1);
    uint32_t m = 0;
    bool placed = false;
    if (p.docs)
        roaring_bitmap_to_uint32_array(p.docs, docs);
    /* Rebuild the (doc, tf) list with doc inserted or dropped, in order. */
    uint32_t *out = xcalloc(n + 1, sizeof *out);
    for (uint32_t i = 0; i <= n; i++) {
        if (!placed && tf && (i == n || docs[i] >= doc)) {
            out[m] = doc;
            tfs[m] = (uint8_t)(tf > 255 ? 255 : tf);
            m++;
            placed = true;
            if (i < n && docs[i] == doc)
                continue;
        }
        if (i == n)
            break;
        if (docs[i] == doc)
            continue;
        out[m] = docs[i];
        tfs[m++] = p.tf[i];
    }
    if (p.docs)
        roaring_bitmap_free(p.docs);
    struct tbuf val = {0};
    if (m) {
        posting_encode(out, tfs, m, &val);
        MDB_val nv = {val.len, val.data};
        rc = mdb_put(txn, dbi, &key, &nv, 0);
    } else
        rc = rc == MDB_NOTFOUND ? 0 : mdb_del(txn, dbi, &key, NULL);
    tbuf_free(&val);
    free(docs);
    free(tfs);
    free(out);
    return rc;
}

static int exists_update(MDB_txn *txn, const struct index_dbs *d, uint8_t field, uint32_t doc,
                         bool add)
{
    roaring_bitmap_t *r = index_exists(txn, d, field);
    if (add)
        roaring_bitmap_add(r, doc);
    else
        roaring_bitmap_remove(r, doc);
    roaring_bitmap_run_optimize(r);
    size_t n = roaring_bitmap_portable_size_in_bytes(r);
    char *buf = xmalloc(n);
    roaring_bitmap_portable_serialize(r, buf);
    MDB_val k = {1, &field}, v = {n, buf};
    int rc = mdb_put(txn, d->exists, &k, &v, 0);
    free(buf);
    roaring_bitmap_free(r);
    return rc;
}

static int doc_change(MDB_txn *txn, const struct index_dbs *d, const struct tis_schema *sc,
                      struct analyzer *an, const struct analysis_opts *o, uint32_t doc,
                      const struct tis_value *vals, struct field_totals *totals, bool add)
{
    struct doc_terms dt = {.sc = sc, .lens = xcalloc(sc->nfields, sizeof(uint32_t))};
    doc_collect(&dt, an, o, vals);
    uint32_t *tf;
    size_t n;
    struct keyref *keys = doc_sorted(&dt, &tf, &n);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = posting_update(txn, d->terms, &keys[i], doc, add ? tf[i] : 0);
    MDB_val k = {sizeof doc, &doc}, v = {sc->nfields * sizeof(uint32_t), dt.lens};
    if (!rc)
        rc = add ? mdb_put(txn, d->flen, &k, &v, 0) : mdb_del(txn, d->flen, &k, NULL);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    for (size_t i = 0; i < sc->nfields && !rc; i++) {
        if (!sc->fields[i].search || vals[i].null)
            continue;
        rc = exists_update(txn, d, (uint8_t)i, doc, add);
        if (totals) {
            totals[i].docs += (add ? 1 : -1) * (dt.lens[i] > 0);
            totals[i].tokens += (add ? 1 : -1) * (int64_t)dt.lens[i];
        }
    }
    free(keys);
    free(tf);
    free(dt.lens);
    tbuf_free(&dt.keys);
    return rc;
}

int index_doc_add(MDB_txn *txn, const struct index_dbs *d, const struct tis_schema *sc,
                  struct analyzer *an, const struct analysis_opts *o, uint32_t doc,
                  const struct tis_value *vals, struct field_totals *totals)
{
    return doc_change(txn, d, sc, an, o, doc, vals, totals, true);
}

int index_doc_remove(MDB_txn *txn, const struct index_dbs *d, const struct tis_schema *sc,
                     struct analyzer *an, const struct analysis_opts *o, uint32_t doc,
                     const struct tis_value *vals, struct field_totals *totals)
{
    return doc_change(txn, d, sc, an, o, doc, vals, totals, false);
}
