/* index_build — the bulk build of a generation's index while its dump streams.
 *
 * The dump thread hands rows over in batches (index_builder_add). Tokenizer
 * threads (analysis is the expensive part) turn batches into per-document
 * term lists in parallel; one accumulator thread takes them back in batch
 * order, so document ids stay increasing, and appends postings to an
 * in-memory dictionary. Beyond the memory budget the postings are spilled
 * as a sorted run file; index_builder_finish merges the runs (index_runs.c)
 * and writes each key once, in key order, with MDB_APPEND. Memory is
 * bounded by the budget plus the batches in flight. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index_internal.h"

#define BATCH_ROWS 1024
#define BATCH_BYTES ((size_t)4 << 20)
/* Batches between the dump and the accumulator: raw, being tokenized, or
 * tokenized and waiting for their turn. */
#define INFLIGHT 8
#define TOKENIZERS 2

/* ---- the dictionary of one run ---- */

struct dict {
    uint32_t *slots; /* open addressing over term ids; 0 = empty */
    size_t cap;      /* power of two */
    struct tbuf arena;
    uint32_t *key_off;
    uint16_t *key_len;
    uint64_t *hash; /* computed once, on a tokenizer thread */
    uint32_t nterms, terms_cap;
};

struct postlog {
    uint32_t *tid, *doc;
    uint8_t *tf;
    uint64_t *poff; /* each posting's positions blob in pos */
    uint32_t *plen;
    size_t n, cap;
    struct tbuf pos;
};

static void dict_grow(struct dict *d)
{
    size_t cap = d->cap ? d->cap * 2 : 1 << 16;
    uint32_t *slots = xcalloc(cap, sizeof *slots);
    for (size_t i = 0; i < d->cap; i++) {
        uint32_t t = d->slots[i];
        if (!t)
            continue;
        size_t h = d->hash[t] & (cap - 1);
        while (slots[h])
            h = (h + 1) & (cap - 1);
        slots[h] = t;
    }
    free(d->slots);
    d->slots = slots;
    d->cap = cap;
}

/* The id of key (1, 2, ...), added when new. */
static uint32_t dict_id(struct dict *d, const void *key, size_t len, uint64_t hash)
{
    if ((d->nterms + 1) * 2 >= d->cap)
        dict_grow(d);
    size_t h = hash & (d->cap - 1);
    for (uint32_t t; (t = d->slots[h]); h = (h + 1) & (d->cap - 1))
        if (d->key_len[t] == len && memcmp(d->arena.data + d->key_off[t], key, len) == 0)
            return t;
    uint32_t t = ++d->nterms;
    if (t >= d->terms_cap) {
        d->terms_cap = d->terms_cap ? d->terms_cap * 2 : 1 << 16;
        d->key_off = xrealloc(d->key_off, d->terms_cap * sizeof *d->key_off);
        d->key_len = xrealloc(d->key_len, d->terms_cap * sizeof *d->key_len);
        d->hash = xrealloc(d->hash, d->terms_cap * sizeof *d->hash);
    }
    d->hash[t] = hash;
    d->key_off[t] = (uint32_t)d->arena.len;
    d->key_len[t] = (uint16_t)len;
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
    free(d->hash);
}

/* ---- batches ---- */

enum slot_state { SLOT_FREE, SLOT_RAW, SLOT_BUSY, SLOT_DONE };

struct batch {
    enum slot_state state;
    uint32_t first_id;
    size_t nrows;
    struct tbuf rows; /* raw: per row varint(length) then per field varint(len+1)|0, bytes */
    struct tbuf toks; /* tokenized: per row lens[nfields], exists[nfields], nkeys,
                         (u64 hash, u16 len, key, u8 tf, varint n, positions blob)... */
};

struct field_stats {
    uint64_t docs, tokens;
};

struct index_builder {
    struct tis_schema *sc;
    struct analysis_opts opts;
    char *tmpdir;
    size_t budget;

    /* the pipeline */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct batch slot[INFLIGHT];
    uint64_t pushed, accumulated; /* batch sequence numbers */
    bool closing, sync_init;
    pthread_t tokenizer[TOKENIZERS], accumulator;
    int ntokenizers;
    bool acc_started;
    struct batch *cur; /* the batch the dump is filling (not yet in a slot) */
    uint64_t cur_seq;
    uint32_t next_id;
    atomic_uint_fast64_t truncated; /* values cut at INDEX_MAX_TOKENS_PER_VALUE */
    const atomic_bool *cancel;      /* the task's: the merge stops when it is set */

    /* accumulator state */
    struct dict dict;
    struct postlog log;
    int nruns;
    FILE *flen;
    roaring_bitmap_t **exists;
    struct field_stats *stats;
    char err[4200];
};

static size_t mem_used(const struct index_builder *b)
{
    return b->dict.arena.cap + (size_t)b->dict.terms_cap * 14 + b->dict.cap * 4 + b->log.cap * 21 +
           b->log.pos.cap;
}

static void add_posting(struct index_builder *b, const void *key, size_t len, uint64_t hash,
                        uint32_t doc, uint8_t tf, const void *pos, size_t plen)
{
    struct postlog *l = &b->log;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1 << 20;
        l->tid = xrealloc(l->tid, l->cap * sizeof *l->tid);
        l->doc = xrealloc(l->doc, l->cap * sizeof *l->doc);
        l->tf = xrealloc(l->tf, l->cap);
        l->poff = xrealloc(l->poff, l->cap * sizeof *l->poff);
        l->plen = xrealloc(l->plen, l->cap * sizeof *l->plen);
    }
    l->tid[l->n] = dict_id(&b->dict, key, len, hash);
    l->doc[l->n] = doc;
    l->poff[l->n] = l->pos.len;
    l->plen[l->n] = (uint32_t)plen;
    tbuf_add(&l->pos, pos, plen);
    l->tf[l->n++] = tf;
}

/* ---- runs ---- */

static void run_path(const struct index_builder *b, int i, char *buf, size_t len)
{
    index_run_path(b->tmpdir, i, buf, len);
}

/* Runs are written and read by one thread at a time: stdio's per-call
 * locking would cost more than the bytes. */
static void fput_varint(FILE *f, uint64_t v)
{
    while (v >= 0x80) {
        putc_unlocked((int)(v | 0x80), f);
        v >>= 7;
    }
    putc_unlocked((int)v, f);
}

/* Terms sort by their first 8 bytes as one integer, then by the rest:
 * most comparisons never touch the arena. */
struct sort_ent {
    uint64_t prefix;
    uint32_t tid;
};

static int cmp_ent(const void *x, const void *y, void *arg)
{
    const struct sort_ent *a = x, *b = y;
    if (a->prefix != b->prefix)
        return a->prefix < b->prefix ? -1 : 1;
    const struct dict *d = arg;
    return cmp_keys(d->arena.data + d->key_off[a->tid], d->key_len[a->tid],
                    d->arena.data + d->key_off[b->tid], d->key_len[b->tid]);
}

static uint64_t key_prefix(const struct dict *d, uint32_t t)
{
    uint64_t v = 0;
    const unsigned char *k = (const unsigned char *)d->arena.data + d->key_off[t];
    for (unsigned i = 0; i < 8; i++)
        v = v << 8 | (i < d->key_len[t] ? k[i] : 0);
    return v;
}

/* Groups the postings by term (a counting sort keeps document order) and
 * writes the terms in key order: one run, then memory is empty again. */
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
        snprintf(b->err, sizeof b->err, "%s: %s", path, strerror(errno));
        return -1;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    uint32_t *start = xcalloc(d->nterms + 2, sizeof *start);
    for (size_t i = 0; i < l->n; i++)
        start[l->tid[i] + 1]++;
    for (uint32_t t = 1; t <= d->nterms + 1; t++)
        start[t] += start[t - 1];
    uint32_t *order = xmalloc(l->n * sizeof *order), *fill = xmalloc((d->nterms + 1) * sizeof *fill);
    memcpy(fill, start, (d->nterms + 1) * sizeof *fill);
    for (size_t i = 0; i < l->n; i++)
        order[fill[l->tid[i]]++] = (uint32_t)i;
    struct sort_ent *tids = xmalloc((d->nterms + 1) * sizeof *tids);
    for (uint32_t t = 0; t < d->nterms; t++)
        tids[t] = (struct sort_ent){key_prefix(d, t + 1), t + 1};
    qsort_r(tids, d->nterms, sizeof *tids, cmp_ent, d);
    /* One pass over a term's postings (scattered in the log) gathers its ids,
     * tfs and positions; then three sequential writes. */
    struct tbuf ids = {0}, tfs = {0}, pos = {0};
    for (uint32_t k = 0; k < d->nterms; k++) {
        uint32_t t = tids[k].tid, prev = 0;
        tbuf_reset(&ids);
        tbuf_reset(&tfs);
        tbuf_reset(&pos);
        for (uint32_t j = start[t]; j < start[t + 1]; j++) {
            uint32_t i = order[j];
            tbuf_add_varint(&ids, l->doc[i] - prev);
            prev = l->doc[i];
            tbuf_add(&tfs, &l->tf[i], 1);
            if (l->plen[i])
                tbuf_add(&pos, l->pos.data + l->poff[i], l->plen[i]);
        }
        fput_varint(f, d->key_len[t]);
        fwrite_unlocked(d->arena.data + d->key_off[t], 1, d->key_len[t], f);
        fput_varint(f, start[t + 1] - start[t]);
        fwrite_unlocked(ids.data, 1, ids.len, f);
        fwrite_unlocked(tfs.data, 1, tfs.len, f);
        fput_varint(f, pos.len);
        if (pos.len)
            fwrite_unlocked(pos.data, 1, pos.len, f);
    }
    tbuf_free(&ids);
    tbuf_free(&tfs);
    tbuf_free(&pos);
    free(start);
    free(order);
    free(fill);
    free(tids);
    if ((ferror(f) | fclose(f)) != 0) {
        snprintf(b->err, sizeof b->err, "write %s: %s", path, strerror(errno));
        return -1;
    }
    b->nruns++;
    dict_reset(d);
    l->n = 0;
    tbuf_reset(&l->pos);
    return 0;
}

/* ---- tokenizers ---- */

static void tokenize_batch(struct index_builder *b, struct batch *bt, struct doc_terms *dt,
                           struct analyzer *an, struct tis_value *vals, struct tbuf *blob)
{
    const unsigned char *p = (const unsigned char *)bt->rows.data, *end = p + bt->rows.len;
    tbuf_reset(&bt->toks);
    for (size_t r = 0; r < bt->nrows; r++) {
        uint64_t rowlen, n;
        varint_read(&p, end, &rowlen);
        const unsigned char *q = p, *rend = p + rowlen;
        for (size_t i = 0; i < b->sc->nfields; i++) {
            varint_read(&q, rend, &n);
            vals[i] = (struct tis_value){(const char *)q, n ? n - 1 : 0, n == 0};
            q += n ? n - 1 : 0;
        }
        p = rend;
        doc_terms_collect(dt, an, &b->opts, vals);
        uint32_t nk = (uint32_t)doc_terms_distinct(dt);
        doc_terms_positions(dt, nk);
        tbuf_add(&bt->toks, dt->lens, b->sc->nfields * sizeof *dt->lens);
        for (size_t i = 0; i < b->sc->nfields; i++) { /* has a value: exists */
            uint8_t e = !vals[i].null && b->sc->fields[i].search;
            tbuf_add(&bt->toks, &e, 1);
        }
        tbuf_add(&bt->toks, &nk, 4);
        for (uint32_t k = 0; k < nk; k++) {
            uint16_t len = dt->refs[k].len;
            tbuf_reserve(&bt->toks, 11 + len);
            char *w = bt->toks.data + bt->toks.len;
            memcpy(w, &dt->hash[k], 8);
            memcpy(w + 8, &len, 2);
            memcpy(w + 10, dt->refs[k].p, len);
            w[10 + len] = (char)(dt->tf[k] > 255 ? 255 : dt->tf[k]);
            bt->toks.len += 11 + len;
            tbuf_reset(blob);
            if (doc_terms_has_positions(dt, k))
                doc_terms_pos_blob(dt, k, blob);
            tbuf_add_varint(&bt->toks, blob->len);
            tbuf_add(&bt->toks, blob->data, blob->len);
        }
    }
    tbuf_free(&bt->rows);
}

static void *tokenizer(void *arg)
{
    struct index_builder *b = arg;
    char err[256];
    struct analyzer *an = analyzer_new(err, sizeof err);
    struct doc_terms dt;
    struct tis_value *vals = xcalloc(b->sc->nfields, sizeof *vals);
    struct tbuf blob = {0};
    doc_terms_init(&dt, b->sc);
    pthread_mutex_lock(&b->mu);
    for (;;) {
        struct batch *bt = NULL;
        for (uint64_t s = b->accumulated; s < b->pushed && !bt; s++) /* oldest first */
            if (b->slot[s % INFLIGHT].state == SLOT_RAW)
                bt = &b->slot[s % INFLIGHT];
        if (!bt) {
            if (b->closing)
                break;
            pthread_cond_wait(&b->cv, &b->mu);
            continue;
        }
        bt->state = SLOT_BUSY;
        pthread_mutex_unlock(&b->mu);
        if (an)
            tokenize_batch(b, bt, &dt, an, vals, &blob);
        pthread_mutex_lock(&b->mu);
        if (!an && !b->err[0])
            snprintf(b->err, sizeof b->err, "tokenizer: %s", err);
        bt->state = SLOT_DONE;
        pthread_cond_broadcast(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    atomic_fetch_add(&b->truncated, dt.truncated);
    doc_terms_free(&dt);
    tbuf_free(&blob);
    free(vals);
    analyzer_free(an);
    return NULL;
}

/* ---- the accumulator ---- */

static void accumulate(struct index_builder *b, struct batch *bt)
{
    size_t nf = b->sc->nfields;
    uint32_t *lens = xcalloc(nf, sizeof *lens);
    const unsigned char *p = (const unsigned char *)bt->toks.data, *end = p + bt->toks.len;
    for (size_t r = 0; r < bt->nrows; r++) {
        uint32_t doc = bt->first_id + (uint32_t)r, nk;
        memcpy(lens, p, nf * sizeof *lens);
        p += nf * sizeof *lens;
        for (size_t i = 0; i < nf; i++, p++)
            if (*p) {
                roaring_bitmap_add(b->exists[i], doc);
                b->stats[i].docs += lens[i] > 0;
                b->stats[i].tokens += lens[i];
            }
        fwrite(lens, sizeof *lens, nf, b->flen);
        memcpy(&nk, p, 4);
        p += 4;
        for (uint32_t k = 0; k < nk; k++) {
            uint64_t hash, plen = 0;
            uint16_t len;
            memcpy(&hash, p, 8);
            memcpy(&len, p + 8, 2);
            const unsigned char *key = p + 10;
            uint8_t tf = p[10 + len];
            p += 11 + len;
            varint_read(&p, end, &plen);
            add_posting(b, key, len, hash, doc, tf, p, plen);
            p += plen;
        }
    }
    free(lens);
    tbuf_free(&bt->toks);
}

static void *accumulator(void *arg)
{
    struct index_builder *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        struct batch *bt = &b->slot[b->accumulated % INFLIGHT];
        if (b->accumulated < b->pushed && bt->state == SLOT_DONE) {
            pthread_mutex_unlock(&b->mu);
            if (!b->err[0]) {
                accumulate(b, bt);
                if (mem_used(b) > b->budget)
                    spill(b);
            }
            pthread_mutex_lock(&b->mu);
            bt->state = SLOT_FREE;
            b->accumulated++;
            pthread_cond_broadcast(&b->cv);
        } else if (b->closing && b->accumulated == b->pushed)
            break;
        else
            pthread_cond_wait(&b->cv, &b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* ---- the dump's side ---- */

static void push_batch(struct index_builder *b)
{
    pthread_mutex_lock(&b->mu);
    while (b->pushed - b->accumulated >= INFLIGHT)
        pthread_cond_wait(&b->cv, &b->mu);
    struct batch *slot = &b->slot[b->pushed % INFLIGHT];
    *slot = *b->cur;
    slot->state = SLOT_RAW;
    b->pushed++;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    free(b->cur);
    b->cur = NULL;
}

int index_builder_add(struct index_builder *b, uint32_t docid, const struct tis_value *vals)
{
    if (!b->cur) {
        b->cur = xcalloc(1, sizeof *b->cur);
        b->cur->first_id = docid;
    }
    struct batch *bt = b->cur;
    size_t at = bt->rows.len;
    tbuf_add(&bt->rows, "\0\0\0\0\0", 5); /* room for a fixed 5-byte varint(row length) */
    size_t body = bt->rows.len;
    for (size_t i = 0; i < b->sc->nfields; i++) {
        bool want = b->sc->fields[i].search && !vals[i].null;
        tbuf_add_varint(&bt->rows, want ? vals[i].len + 1 : 0);
        if (want)
            tbuf_add(&bt->rows, vals[i].p, vals[i].len);
    }
    uint64_t n = bt->rows.len - body;
    unsigned char *lp = (unsigned char *)bt->rows.data + at;
    for (int k = 0; k < 4; k++, n >>= 7)
        lp[k] = (unsigned char)(n | 0x80);
    lp[4] = (unsigned char)n;
    bt->nrows++;
    b->next_id = docid + 1;
    if (bt->nrows >= BATCH_ROWS || bt->rows.len >= BATCH_BYTES)
        push_batch(b);
    return 0;
}

static void stop_pipeline(struct index_builder *b)
{
    if (!b->sync_init)
        return;
    if (b->cur && b->acc_started)
        push_batch(b);
    pthread_mutex_lock(&b->mu);
    b->closing = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < b->ntokenizers; i++)
        pthread_join(b->tokenizer[i], NULL);
    b->ntokenizers = 0;
    if (b->acc_started)
        pthread_join(b->accumulator, NULL);
    b->acc_started = false;
}

struct index_builder *index_builder_new(const struct tis_schema *sc,
                                        const struct analysis_opts *opts, const char *tmpdir,
                                        size_t mem_budget, char *err, size_t errlen)
{
    struct index_builder *b = xcalloc(1, sizeof *b);
    b->sc = schema_ref(sc);
    b->opts = *opts;
    b->tmpdir = xstrdup(tmpdir);
    b->budget = mem_budget ? mem_budget : INDEX_MEM_BUDGET_DEFAULT;
    b->stats = xcalloc(sc->nfields, sizeof *b->stats);
    b->exists = xcalloc(sc->nfields, sizeof *b->exists);
    for (size_t i = 0; i < sc->nfields; i++)
        b->exists[i] = roaring_bitmap_create();
    char path[4096];
    snprintf(path, sizeof path, "%s/flen.tmp", tmpdir);
    if (!(b->flen = fopen(path, "w+b"))) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        index_builder_free(b);
        return NULL;
    }
    setvbuf(b->flen, NULL, _IOFBF, 1 << 20);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->sync_init = true;
    b->acc_started = pthread_create(&b->accumulator, NULL, accumulator, b) == 0;
    while (b->acc_started && b->ntokenizers < TOKENIZERS &&
           pthread_create(&b->tokenizer[b->ntokenizers], NULL, tokenizer, b) == 0)
        b->ntokenizers++;
    if (!b->acc_started || !b->ntokenizers) {
        snprintf(err, errlen, "cannot start the indexing threads");
        index_builder_free(b);
        return NULL;
    }
    return b;
}

static int write_norms(struct index_builder *b, MDB_env *env, const struct index_dbs *d,
                       MDB_txn **txn)
{
    size_t nf = b->sc->nfields, width = nf * sizeof(uint32_t);
    uint32_t *rec = xmalloc(width ? width : 1);
    bool *searched = xcalloc(nf ? nf : 1, sizeof *searched);
    for (size_t i = 0; i < nf; i++)
        searched[i] = b->sc->fields[i].search;
    struct norms_writer *w = norms_writer_new(nf, searched);
    int rc = fflush(b->flen) || fseek(b->flen, 0, SEEK_SET) ? errno : 0;
    for (uint32_t id = 1; !rc && id < b->next_id; id++) {
        if (fread(rec, 1, width, b->flen) != width) {
            rc = EIO;
            break;
        }
        rc = norms_writer_add(w, *txn, d, id, rec);
        if (!rc && id % (NORMS_BLOCK * 64) == 0)
            rc = b->cancel && atomic_load(b->cancel) ? ECANCELED : index_txn_renew(env, txn);
    }
    if (!rc)
        rc = norms_writer_finish(w, *txn, d);
    norms_writer_free(w);
    free(searched);
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

int index_builder_finish(struct index_builder *b, MDB_env *env, const struct index_dbs *d,
                         struct json_object **stats, char *err, size_t errlen)
{
    stop_pipeline(b);
    if (!b->err[0])
        spill(b);
    if (b->err[0]) {
        snprintf(err, errlen, "index: %s", b->err);
        return -1;
    }
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (!rc)
        rc = index_runs_merge(b->tmpdir, b->nruns, b->cancel, env, d, &txn);
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
    stop_pipeline(b);
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
    for (int i = 0; i < INFLIGHT; i++) {
        tbuf_free(&b->slot[i].rows);
        tbuf_free(&b->slot[i].toks);
    }
    if (b->cur) {
        tbuf_free(&b->cur->rows);
        free(b->cur);
    }
    free(b->exists);
    free(b->stats);
    dict_free(&b->dict);
    free(b->log.tid);
    free(b->log.doc);
    free(b->log.tf);
    free(b->log.poff);
    free(b->log.plen);
    tbuf_free(&b->log.pos);
    schema_free(b->sc);
    free(b->tmpdir);
    if (b->sync_init) {
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->cv);
    }
    free(b);
}

uint64_t index_builder_truncated(struct index_builder *b)
{
    return atomic_load(&b->truncated);
}

void index_builder_set_cancel(struct index_builder *b, const atomic_bool *cancel)
{
    b->cancel = cancel;
}
