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

#include "index_internal.h"
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
    return f->token == TOK_DEFAULT && vtype_is_ordered(f->vt);
}

bool vtype_is_ordered(enum tis_vtype vt)
{
    switch (vt) {
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

int cmp_keys(const void *a, size_t an, const void *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

void posting_free(struct posting *p)
{
    if (p->docs)
        roaring_bitmap_free(p->docs);
    if (p->delta)
        roaring_bitmap_free(p->delta);
    free(p->dtf);
    memset(p, 0, sizeof *p);
}

uint32_t posting_tf(const struct posting *p, uint32_t doc)
{
    if (p->delta && roaring_bitmap_contains(p->delta, doc))
        return p->dtf[roaring_bitmap_rank(p->delta, doc) - 1];
    if (!p->docs || !roaring_bitmap_contains(p->docs, doc))
        return 0;
    return posting_base_tf(p, (uint32_t)roaring_bitmap_rank(p->docs, doc) - 1);
}

roaring_bitmap_t *posting_live(const struct posting *p, const roaring_bitmap_t *deleted)
{
    roaring_bitmap_t *r = p->docs ? roaring_bitmap_copy(p->docs) : roaring_bitmap_create();
    if (p->delta)
        roaring_bitmap_or_inplace(r, p->delta);
    if (deleted && !roaring_bitmap_is_empty(deleted))
        roaring_bitmap_andnot_inplace(r, deleted);
    return r;
}

int index_open_dbs(MDB_txn *txn, bool create, struct index_dbs *d)
{
    unsigned f = create ? MDB_CREATE : 0, dup = MDB_DUPSORT | MDB_DUPFIXED;
    int rc = mdb_dbi_open(txn, "terms", f, &d->terms);
    if (!rc)
        rc = mdb_dbi_open(txn, "norms", f | MDB_INTEGERKEY, &d->norms);
    if (!rc)
        rc = mdb_dbi_open(txn, "dpos", f, &d->dpos);
    if (!rc)
        rc = mdb_dbi_open(txn, "exists", f, &d->exists);
    if (!rc)
        rc = mdb_dbi_open(txn, "dterms", f | dup, &d->dterms);
    if (!rc)
        rc = mdb_dbi_open(txn, "dexists", f | dup, &d->dexists);
    if (!rc)
        rc = mdb_dbi_open(txn, "deleted", f, &d->deleted);
    return rc;
}

/* ---- the delta part ---- */

#define DENTRY 5 /* u32 BE id + u8 tf */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Every dup of key in a DUPFIXED database of width w, a page at a time
 * (MDB_GET_MULTIPLE): ids into *ids, the byte after each id into *extra
 * when w > 4. Returns the count (0 when the key is absent). */
static size_t dups_read(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, size_t w, uint32_t **ids,
                        uint8_t **extra)
{
    MDB_cursor *cur;
    MDB_val v;
    size_t n = 0, cap = 0;
    *ids = NULL;
    if (extra)
        *extra = NULL;
    if (mdb_cursor_open(txn, dbi, &cur))
        return 0;
    int rc = mdb_cursor_get(cur, key, &v, MDB_SET);
    if (!rc)
        rc = mdb_cursor_get(cur, key, &v, MDB_GET_MULTIPLE);
    for (; rc == 0; rc = mdb_cursor_get(cur, key, &v, MDB_NEXT_MULTIPLE)) {
        size_t m = v.mv_size / w;
        if (n + m > cap) {
            cap = (n + m) * 2;
            *ids = xrealloc(*ids, cap * sizeof **ids);
            if (extra)
                *extra = xrealloc(*extra, cap);
        }
        for (size_t i = 0; i < m; i++) {
            const unsigned char *e = (const unsigned char *)v.mv_data + i * w;
            (*ids)[n] = get_be32(e);
            if (extra)
                (*extra)[n] = e[4];
            n++;
        }
    }
    mdb_cursor_close(cur);
    return n;
}

/* Adds the delta part of key to out (ids come in ascending order, so the
 * tf array is already in rank order). */
static void delta_read(MDB_txn *txn, const struct index_dbs *d, MDB_val *key, struct posting *out)
{
    uint32_t *ids;
    uint8_t *tf;
    size_t n = dups_read(txn, d->dterms, key, DENTRY, &ids, &tf);
    if (n) {
        out->delta = roaring_bitmap_of_ptr(n, ids);
        out->dtf = tf;
    } else
        free(tf);
    free(ids);
}

/* ---- reading ---- */

static void term_key(uint8_t field, const void *term, size_t len, struct tbuf *k)
{
    tbuf_reset(k);
    tbuf_add(k, &field, 1);
    tbuf_add(k, term, len);
}

/* The posting of a full key (field byte + term), base and delta. */
static int key_posting(MDB_txn *txn, const struct index_dbs *d, MDB_val key, struct posting *out)
{
    MDB_val v;
    memset(out, 0, sizeof *out);
    int rc = mdb_get(txn, d->terms, &key, &v);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    if (rc == 0 && !posting_decode(&v, out))
        return MDB_CORRUPTED;
    delta_read(txn, d, &key, out);
    if (rc == MDB_NOTFOUND && !out->delta)
        return MDB_NOTFOUND;
    if (!out->docs)
        out->docs = roaring_bitmap_create();
    return 0;
}

int index_term(MDB_txn *txn, const struct index_dbs *d, uint8_t field, const void *term,
               size_t len, struct posting *out)
{
    struct tbuf k = {0};
    term_key(field, term, len, &k);
    int rc = key_posting(txn, d, (MDB_val){k.len, k.data}, out);
    tbuf_free(&k);
    return rc;
}

/* One side (base or delta) of a merged walk over the terms of a field. */
struct term_walk {
    MDB_cursor *cur;
    MDB_val key;
    bool live;
};

static void walk_step(struct term_walk *w, MDB_cursor_op op, uint8_t field)
{
    MDB_val v;
    w->live = mdb_cursor_get(w->cur, &w->key, &v, op) == 0 && w->key.mv_size >= 1 &&
              ((const unsigned char *)w->key.mv_data)[0] == field;
}

/* Whether the term of key lies past hi (and the walk is over) or before lo
 * (skip it). */
static int term_bounds(const MDB_val *key, const void *lo, size_t lolen, bool incl_lo,
                       const void *hi, size_t hilen, bool incl_hi)
{
    const unsigned char *t = (const unsigned char *)key->mv_data + 1;
    size_t tn = key->mv_size - 1;
    if (hi) {
        int c = cmp_keys(t, tn, hi, hilen);
        if (c > 0 || (c == 0 && !incl_hi))
            return 1;
    }
    if (lo && !incl_lo && cmp_keys(t, tn, lo, lolen) == 0)
        return -1;
    return 0;
}

int index_terms_between(MDB_txn *txn, const struct index_dbs *d, uint8_t field, const void *lo,
                        size_t lolen, bool incl_lo, const void *hi, size_t hilen, bool incl_hi,
                        term_fn fn, void *arg)
{
    struct term_walk w[2] = {{0}, {0}};
    struct tbuf k = {0};
    int rc = mdb_cursor_open(txn, d->terms, &w[0].cur);
    if (!rc)
        rc = mdb_cursor_open(txn, d->dterms, &w[1].cur);
    term_key(field, lo ? lo : "", lo ? lolen : 0, &k);
    for (int i = 0; i < 2 && !rc; i++) {
        w[i].key = (MDB_val){k.len, k.data};
        walk_step(&w[i], MDB_SET_RANGE, field);
    }
    while (!rc && (w[0].live || w[1].live)) {
        /* The smaller key of the two sides, both when they are equal. */
        int c = !w[1].live ? -1 : !w[0].live ? 1
                : cmp_keys(w[0].key.mv_data, w[0].key.mv_size, w[1].key.mv_data, w[1].key.mv_size);
        MDB_val key = c <= 0 ? w[0].key : w[1].key;
        int b = term_bounds(&key, lo, lolen, incl_lo, hi, hilen, incl_hi);
        if (b > 0)
            break;
        struct posting p;
        if (b == 0 && key_posting(txn, d, key, &p) == 0) {
            int stop = fn(arg, (const unsigned char *)key.mv_data + 1, key.mv_size - 1, &p);
            posting_free(&p);
            if (stop)
                break;
        }
        if (c <= 0)
            walk_step(&w[0], MDB_NEXT, field);
        if (c >= 0)
            walk_step(&w[1], MDB_NEXT_NODUP, field);
    }
    for (int i = 0; i < 2; i++)
        if (w[i].cur)
            mdb_cursor_close(w[i].cur);
    tbuf_free(&k);
    return rc;
}

roaring_bitmap_t *index_exists(MDB_txn *txn, const struct index_dbs *d, uint8_t field)
{
    MDB_val k = {1, &field}, v;
    roaring_bitmap_t *r = NULL;
    if (mdb_get(txn, d->exists, &k, &v) == 0)
        r = roaring_bitmap_portable_deserialize_safe(v.mv_data, v.mv_size);
    if (!r)
        r = roaring_bitmap_create();
    uint32_t *ids;
    size_t n = dups_read(txn, d->dexists, &k, 4, &ids, NULL);
    if (n)
        roaring_bitmap_add_many(r, n, ids);
    free(ids);
    return r;
}

roaring_bitmap_t *index_live(uint32_t last_id, const roaring_bitmap_t *deleted)
{
    /* CRoaring answers an empty range with NULL, not an empty bitmap: an
     * empty collection must not crash its readers. */
    roaring_bitmap_t *live = last_id ? roaring_bitmap_from_range(1, (uint64_t)last_id + 1, 1)
                                     : roaring_bitmap_create();
    roaring_bitmap_andnot_inplace(live, deleted);
    return live;
}

roaring_bitmap_t *index_deleted(MDB_txn *txn, const struct index_dbs *d)
{
    roaring_bitmap_t *r = roaring_bitmap_create();
    MDB_cursor *cur;
    MDB_val k, v;
    if (mdb_cursor_open(txn, d->deleted, &cur))
        return r;
    for (int op = MDB_FIRST; mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        roaring_bitmap_t *c = roaring_bitmap_portable_deserialize_safe(v.mv_data, v.mv_size);
        if (c) {
            roaring_bitmap_or_inplace(r, c);
            roaring_bitmap_free(c);
        }
    }
    mdb_cursor_close(cur);
    return r;
}

/* ---- incremental maintenance ---- */

static void bit_to_decimal(const char *p, size_t len, char *out, size_t outlen)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len && i < 8; i++)
        v = v << 8 | (unsigned char)p[i];
    snprintf(out, outlen, "%llu", (unsigned long long)v);
}

static int doc_token(void *arg, const char *t, size_t len, uint32_t pos)
{
    struct doc_terms *dt = arg;
    if (dt->n - dt->field_start >= INDEX_MAX_TOKENS_PER_VALUE) {
        dt->cut = true; /* stops the analyzer: the rest of the value is not indexed */
        return 1;
    }
    if (dt->n == dt->tokcap) {
        dt->tokcap = dt->tokcap ? dt->tokcap * 2 : 256;
        dt->tokpos = xrealloc(dt->tokpos, dt->tokcap * sizeof *dt->tokpos);
    }
    dt->tokpos[dt->n] = pos;
    uint16_t n = (uint16_t)(len + 1);
    tbuf_reserve(&dt->keys, 3 + len); /* one reservation, then plain copies */
    char *w = dt->keys.data + dt->keys.len;
    memcpy(w, &n, 2);
    w[2] = (char)dt->field;
    memcpy(w + 3, t, len);
    dt->keys.len += 3 + len;
    dt->n++;
    return 0;
}

void doc_terms_collect(struct doc_terms *dt, struct analyzer *an, const struct analysis_opts *o,
                       const struct tis_value *vals)
{
    tbuf_reset(&dt->keys);
    dt->n = 0;
    for (size_t i = 0; i < dt->sc->nfields; i++) {
        const struct tis_field *f = &dt->sc->fields[i];
        dt->lens[i] = 0;
        if (!f->search || vals[i].null)
            continue;
        dt->field = (uint8_t)i;
        dt->field_start = dt->n;
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
        } else if (f->token != TOK_DEFAULT) {
            /* Only a prefix is analysed (its tokens fill the cap anyway), so
             * that the analyzer's copies of a huge value stay small. */
            size_t len = vals[i].len;
            dt->cut = len > INDEX_MAX_BYTES_PER_VALUE;
            if (dt->cut) /* at a character boundary */
                for (len = INDEX_MAX_BYTES_PER_VALUE;
                     len && ((unsigned char)vals[i].p[len] & 0xC0) == 0x80;)
                    len--;
            dt->lens[i] = analyze(an, f->token, o, vals[i].p, len, doc_token, dt);
            if (dt->lens[i] > NORM_MAX) /* what the norms keep, so totals agree */
                dt->lens[i] = NORM_MAX;
            dt->truncated += dt->cut;
        }
    }
}

uint64_t key_hash(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* Distinct keys with their counts, through a small hash table: order does
 * not matter to anyone, so no sort. */
size_t doc_terms_distinct(struct doc_terms *dt)
{
    if (dt->n > dt->cap) {
        dt->cap = dt->n * 2;
        dt->refs = xrealloc(dt->refs, dt->cap * sizeof *dt->refs);
        dt->tf = xrealloc(dt->tf, dt->cap * sizeof *dt->tf);
        dt->hash = xrealloc(dt->hash, dt->cap * sizeof *dt->hash);
        dt->tokkey = xrealloc(dt->tokkey, dt->cap * sizeof *dt->tokkey);
    }
    size_t slots = 16;
    while (slots < dt->n * 2)
        slots *= 2;
    if (slots > dt->nslots) {
        free(dt->slots);
        dt->slots = xmalloc(slots * sizeof *dt->slots);
        dt->nslots = slots;
    }
    memset(dt->slots, 0, slots * sizeof *dt->slots);
    const unsigned char *p = (const unsigned char *)dt->keys.data;
    size_t n = 0;
    for (size_t i = 0; i < dt->n; i++) {
        uint16_t len;
        memcpy(&len, p, 2);
        const unsigned char *k = p + 2;
        p += 2 + len;
        uint64_t hash = key_hash(k, len);
        size_t h = hash & (slots - 1);
        for (;; h = (h + 1) & (slots - 1)) {
            uint32_t s = dt->slots[h];
            if (!s) {
                dt->refs[n] = (struct keyref){k, len};
                dt->tf[n] = 1;
                dt->hash[n] = hash;
                dt->tokkey[i] = (uint32_t)n;
                dt->slots[h] = (uint32_t)++n;
                break;
            }
            if (dt->refs[s - 1].len == len && memcmp(dt->refs[s - 1].p, k, len) == 0) {
                dt->tf[s - 1]++;
                dt->tokkey[i] = s - 1;
                break;
            }
        }
    }
    return n;
}

/* A counting sort of the tokens by key keeps each key's positions in token
 * order, which is ascending position order within a value. */
void doc_terms_positions(struct doc_terms *dt, size_t nd)
{
    if (!dt->posoff || dt->n > dt->poscap) { /* nd <= n */
        dt->poscap = dt->n > 16 ? dt->n : 16;
        dt->posoff = xrealloc(dt->posoff, (dt->poscap + 1) * sizeof *dt->posoff);
        dt->posv = xrealloc(dt->posv, dt->poscap * sizeof *dt->posv);
    }
    dt->posoff[0] = 0;
    for (size_t k = 0; k < nd; k++)
        dt->posoff[k + 1] = dt->posoff[k] + dt->tf[k];
    for (size_t i = 0; i < dt->n; i++) /* posoff[k] walks to posoff[k + 1] ... */
        dt->posv[dt->posoff[dt->tokkey[i]]++] = dt->tokpos[i];
    for (size_t k = nd; k > 0; k--) /* ... and is put back */
        dt->posoff[k] = dt->posoff[k - 1];
    dt->posoff[0] = 0;
}

void doc_terms_pos_blob(const struct doc_terms *dt, size_t k, struct tbuf *out)
{
    uint32_t first = dt->posoff[k], last = dt->posoff[k + 1], prev = 0;
    size_t most = (size_t)(last - first) * 5; /* bytes of the gaps at most */
    /* The usual blob is short: its length is one byte, so the gaps are
     * written in place after it. */
    size_t hdr = most < 0x80 ? 1 : 0;
    tbuf_reserve(out, hdr + most);
    unsigned char *w = (unsigned char *)out->data + out->len + hdr, *start = w;
    if (!hdr) { /* a long one: gaps first, then its length */
        struct tbuf gaps = {0};
        for (uint32_t i = first; i < last; i++) {
            tbuf_add_varint(&gaps, dt->posv[i] - prev);
            prev = dt->posv[i];
        }
        tbuf_add_varint(out, gaps.len);
        tbuf_add(out, gaps.data, gaps.len);
        tbuf_free(&gaps);
        return;
    }
    for (uint32_t i = first; i < last; i++) {
        uint32_t g = dt->posv[i] - prev;
        prev = dt->posv[i];
        for (; g >= 0x80; g >>= 7)
            *w++ = (unsigned char)(g | 0x80);
        *w++ = (unsigned char)g;
    }
    out->data[out->len] = (char)(w - start);
    out->len += hdr + (size_t)(w - start);
    out->data[out->len] = 0;
}

void doc_terms_init(struct doc_terms *dt, const struct tis_schema *sc)
{
    memset(dt, 0, sizeof *dt);
    dt->sc = sc;
    dt->lens = xcalloc(sc->nfields, sizeof *dt->lens);
}

void doc_terms_free(struct doc_terms *dt)
{
    tbuf_free(&dt->keys);
    free(dt->lens);
    free(dt->refs);
    free(dt->tf);
    free(dt->hash);
    free(dt->slots);
    free(dt->tokpos);
    free(dt->tokkey);
    free(dt->posoff);
    free(dt->posv);
}

static int put_bitmap(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, roaring_bitmap_t *r)
{
    roaring_bitmap_run_optimize(r);
    size_t n = roaring_bitmap_portable_size_in_bytes(r);
    char *buf = xmalloc(n);
    roaring_bitmap_portable_serialize(r, buf);
    MDB_val v = {n, buf};
    int rc = mdb_put(txn, dbi, k, &v, 0);
    free(buf);
    return rc;
}

/* Marks doc deleted: one chunk of at most 65536 ids is rewritten. */
static int deleted_add(MDB_txn *txn, const struct index_dbs *d, uint32_t doc)
{
    unsigned char hi[2] = {(unsigned char)(doc >> 24), (unsigned char)(doc >> 16)};
    MDB_val k = {2, hi}, v;
    roaring_bitmap_t *r = NULL;
    if (mdb_get(txn, d->deleted, &k, &v) == 0)
        r = roaring_bitmap_portable_deserialize_safe(v.mv_data, v.mv_size);
    if (!r)
        r = roaring_bitmap_create();
    roaring_bitmap_add(r, doc);
    int rc = put_bitmap(txn, d->deleted, &k, r);
    roaring_bitmap_free(r);
    return rc;
}

/* Writes doc's delta entries: its terms with their positions, norms and
 * exists marks. */
static int delta_add(MDB_txn *txn, const struct index_dbs *d, struct doc_terms *dt, size_t n,
                     const struct tis_value *vals, uint32_t doc)
{
    const struct tis_schema *sc = dt->sc;
    unsigned char e[DENTRY], pk[5 + 1 + 1024];
    struct tbuf blob = {0};
    put_be32(e, doc);
    doc_terms_positions(dt, n);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        MDB_val key = {dt->refs[i].len, (void *)dt->refs[i].p}, v = {DENTRY, e};
        e[4] = (uint8_t)(dt->tf[i] > 255 ? 255 : dt->tf[i]);
        rc = mdb_put(txn, d->dterms, &key, &v, 0);
        if (rc || key.mv_size > sizeof pk - 4)
            continue;
        tbuf_reset(&blob);
        doc_terms_pos_blob(dt, i, &blob);
        MDB_val k = {dpos_key(doc, key.mv_data, key.mv_size, pk), pk}, pv = {blob.len, blob.data};
        rc = mdb_put(txn, d->dpos, &k, &pv, 0);
    }
    tbuf_free(&blob);
    for (size_t i = 0; i < sc->nfields && !rc; i++) {
        if (!sc->fields[i].search || vals[i].null)
            continue;
        uint8_t f = (uint8_t)i;
        MDB_val fk = {1, &f}, dv = {4, e};
        rc = mdb_put(txn, d->dexists, &fk, &dv, 0);
        if (!rc && dt->lens[i])
            rc = norms_put(txn, d, f, doc, dt->lens[i]);
    }
    return rc;
}

int index_doc_add(MDB_txn *txn, const struct index_dbs *d, const struct tis_schema *sc,
                  struct analyzer *an, const struct analysis_opts *o, uint32_t doc,
                  const struct tis_value *vals, struct field_totals *totals)
{
    struct doc_terms dt;
    doc_terms_init(&dt, sc);
    doc_terms_collect(&dt, an, o, vals);
    size_t n = doc_terms_distinct(&dt);
    int rc = delta_add(txn, d, &dt, n, vals, doc);
    for (size_t i = 0; i < sc->nfields && totals; i++)
        if (sc->fields[i].search && !vals[i].null) {
            totals[i].docs += dt.lens[i] > 0;
            totals[i].tokens += (int64_t)dt.lens[i];
        }
    doc_terms_free(&dt);
    return rc;
}

/* No analysis: the norms say what the document counted for, and its
 * postings (base or delta) stay until the merge drops them, hidden by the
 * deleted mark meanwhile. An update then costs one analysis, a delete none. */
int index_doc_remove(MDB_txn *txn, const struct index_dbs *d, const struct tis_schema *sc,
                     uint32_t doc, struct field_totals *totals)
{
    int rc = 0;
    for (size_t i = 0; i < sc->nfields && !rc; i++) {
        if (!sc->fields[i].search)
            continue;
        uint32_t len = index_field_len(txn, d, doc, (uint8_t)i);
        if (totals) {
            totals[i].docs -= len > 0;
            totals[i].tokens -= len;
        }
        if (len)
            rc = norms_put(txn, d, (uint8_t)i, doc, 0);
    }
    return rc ? rc : deleted_add(txn, d, doc);
}

int index_clear(MDB_txn *txn, const struct index_dbs *d, uint32_t last_id)
{
    MDB_dbi all[] = {d->terms, d->norms, d->exists, d->dterms, d->dpos, d->dexists, d->deleted};
    int rc = 0;
    for (size_t i = 0; i < sizeof all / sizeof *all && !rc; i++)
        rc = mdb_drop(txn, all[i], 0);
    /* Every id handed out so far is gone: readers count live documents as
     * the ids up to the last one minus the deleted ones. One run-encoded
     * chunk per 65536 ids. */
    for (uint64_t lo = 1; !rc && lo <= last_id; lo = (lo | 0xFFFF) + 1) {
        uint64_t hi = (lo | 0xFFFF) < last_id ? (lo | 0xFFFF) : last_id;
        unsigned char key[2] = {(unsigned char)(lo >> 24), (unsigned char)(lo >> 16)};
        MDB_val k = {2, key};
        roaring_bitmap_t *r = roaring_bitmap_from_range(lo, hi + 1, 1);
        rc = put_bitmap(txn, d->deleted, &k, r);
        roaring_bitmap_free(r);
    }
    return rc;
}

uint64_t index_delta_entries(MDB_txn *txn, const struct index_dbs *d)
{
    MDB_stat st;
    uint64_t n = mdb_stat(txn, d->dterms, &st) == 0 ? st.ms_entries : 0;
    return n + (mdb_stat(txn, d->dexists, &st) == 0 ? st.ms_entries : 0);
}

/* The positions blobs of the folded posting ids[0..n), end to end: a base
 * document's from the old value (walked alongside the old base ids), an
 * added one's from dpos. Everything is copied out before the caller writes. */
static void fold_positions(MDB_txn *txn, const struct index_dbs *d, MDB_val key,
                           const struct posting *p, const uint32_t *ids, uint32_t n,
                           struct tbuf *blobs)
{
    const unsigned char *bp = posting_blob(p, 0), *bend = p->pos ? p->pos + p->poslen : NULL;
    roaring_uint32_iterator_t it;
    roaring_init_iterator(p->docs, &it);
    unsigned char pk[4 + 1024];
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *b = NULL, *end = NULL;
        if (p->delta && roaring_bitmap_contains(p->delta, ids[i])) {
            MDB_val k = {dpos_key(ids[i], key.mv_data, key.mv_size, pk), pk}, dv;
            if (key.mv_size <= 1024 && mdb_get(txn, d->dpos, &k, &dv) == 0)
                b = dv.mv_data, end = b + dv.mv_size;
        } else {
            for (; it.has_value && it.current_value < ids[i]; roaring_advance_uint32_iterator(&it))
                bp = bp ? bp + pos_blob_len(bp, bend) : NULL; /* a deleted document's */
            if (it.has_value && it.current_value == ids[i] && bp) {
                b = bp, end = bend;
                bp += pos_blob_len(bp, bend);
                roaring_advance_uint32_iterator(&it);
            }
        }
        size_t len = b ? pos_blob_len(b, end) : 0;
        if (len)
            tbuf_add(blobs, b, len);
        else
            tbuf_add(blobs, "", 1); /* lost: an empty list keeps the ranks in step */
    }
}

/* Drops the dpos entries of key for every delta id, live or deleted. */
static int drop_delta_positions(MDB_txn *txn, const struct index_dbs *d, MDB_val key,
                                const uint32_t *dids, size_t nd)
{
    unsigned char pk[4 + 1024];
    int rc = 0;
    for (size_t i = 0; i < nd && key.mv_size <= 1024 && (!rc || rc == MDB_NOTFOUND); i++) {
        MDB_val k = {dpos_key(dids[i], key.mv_data, key.mv_size, pk), pk};
        rc = mdb_del(txn, d->dpos, &k, NULL);
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Rewrites the base posting of key as (base - deleted) | delta, with its
 * positions, and drops the delta entries. The one place a large posting is
 * rewritten: the merge, a term at a time, never the stream. */
static int fold_term(MDB_txn *txn, const struct index_dbs *d, MDB_val key,
                     const roaring_bitmap_t *deleted)
{
    struct posting p;
    int rc = key_posting(txn, d, key, &p);
    if (rc)
        return rc == MDB_NOTFOUND ? 0 : rc;
    unsigned char kcopy[512]; /* key points into a page the writes below may move */
    MDB_val k = {key.mv_size < sizeof kcopy ? key.mv_size : sizeof kcopy, kcopy};
    memcpy(kcopy, key.mv_data, k.mv_size);
    roaring_bitmap_t *live = posting_live(&p, deleted);
    uint32_t n = (uint32_t)roaring_bitmap_get_cardinality(live);
    uint32_t *ids = xmalloc((n ? n : 1) * sizeof *ids);
    uint8_t *tf = xmalloc(n ? n : 1);
    roaring_bitmap_to_uint32_array(live, ids);
    for (uint32_t i = 0; i < n; i++)
        tf[i] = (uint8_t)posting_tf(&p, ids[i]);
    struct tbuf val = {0}, blobs = {0};
    fold_positions(txn, d, k, &p, ids, n, &blobs);
    size_t nd = p.delta ? (size_t)roaring_bitmap_get_cardinality(p.delta) : 0;
    uint32_t *dids = xmalloc((nd ? nd : 1) * sizeof *dids);
    if (nd)
        roaring_bitmap_to_uint32_array(p.delta, dids);
    posting_free(&p);
    roaring_bitmap_free(live);
    rc = mdb_del(txn, d->dterms, &k, NULL);
    if (!rc || rc == MDB_NOTFOUND)
        rc = drop_delta_positions(txn, d, k, dids, nd);
    if (!rc && n) {
        posting_encode(ids, tf, n, (const unsigned char *)blobs.data, blobs.len, &val);
        MDB_val v = {val.len, val.data};
        rc = mdb_put(txn, d->terms, &k, &v, 0);
    } else if (!rc)
        rc = mdb_del(txn, d->terms, &k, NULL);
    tbuf_free(&val);
    tbuf_free(&blobs);
    free(ids);
    free(tf);
    free(dids);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int fold_exists(MDB_txn *txn, const struct index_dbs *d, const roaring_bitmap_t *deleted)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t fields[256];
    size_t nf = 0;
    int rc = mdb_cursor_open(txn, d->dexists, &cur);
    for (int op = MDB_FIRST; !rc && nf < 256 && mdb_cursor_get(cur, &k, &v, op) == 0;
         op = MDB_NEXT_NODUP)
        fields[nf++] = *(const uint8_t *)k.mv_data;
    if (!rc)
        mdb_cursor_close(cur);
    for (size_t i = 0; i < nf && !rc; i++) {
        roaring_bitmap_t *r = index_exists(txn, d, fields[i]);
        roaring_bitmap_andnot_inplace(r, deleted);
        MDB_val fk = {1, &fields[i]};
        rc = put_bitmap(txn, d->exists, &fk, r);
        roaring_bitmap_free(r);
        if (!rc)
            rc = mdb_del(txn, d->dexists, &fk, NULL);
    }
    return rc;
}

/* The first delta term at or after from (its key into from), or false at
 * the end. */
static bool next_delta_term(MDB_txn *txn, const struct index_dbs *d, struct tbuf *from)
{
    MDB_cursor *cur;
    MDB_val k = {from->len, from->data}, v;
    if (mdb_cursor_open(txn, d->dterms, &cur))
        return false;
    int rc = mdb_cursor_get(cur, &k, &v, from->len ? MDB_SET_RANGE : MDB_FIRST);
    if (rc == 0) {
        char *copy = xmalloc(k.mv_size); /* k points into from's own bytes on an exact hit */
        memcpy(copy, k.mv_data, k.mv_size);
        tbuf_reset(from);
        tbuf_add(from, copy, k.mv_size);
        free(copy);
    }
    mdb_cursor_close(cur);
    return rc == 0;
}

int index_fold(MDB_txn *txn, const struct index_dbs *d, struct tbuf *from, size_t max_terms,
               bool *left)
{
    roaring_bitmap_t *deleted = index_deleted(txn, d);
    int rc = 0;
    size_t done = 0;
    bool more = true;
    for (; !rc && done < max_terms && (more = next_delta_term(txn, d, from)); done++) {
        rc = fold_term(txn, d, (MDB_val){from->len, from->data}, deleted);
        tbuf_add(from, "", 1); /* the next key after this one */
    }
    if (!rc && !more) {
        tbuf_reset(from); /* a full pass: the next one starts over */
        rc = fold_exists(txn, d, deleted);
    }
    *left = !rc && index_delta_entries(txn, d) > 0;
    roaring_bitmap_free(deleted);
    return rc;
}
