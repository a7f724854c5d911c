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

int cmp_keys(const void *a, size_t an, const void *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

/* ---- posting encoding ---- */

void posting_encode(const uint32_t *docs, const uint8_t *tf, uint32_t n, struct tbuf *out)
{
    roaring_bitmap_t *r = roaring_bitmap_create_with_capacity(n);
    roaring_bitmap_add_many(r, n, docs);
    /* Runs only pay off for long postings (words in most documents); most
     * postings are short and stay arrays, so skip the scan for them. */
    if (n >= 4096)
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

static void bit_to_decimal(const char *p, size_t len, char *out, size_t outlen)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len && i < 8; i++)
        v = v << 8 | (unsigned char)p[i];
    snprintf(out, outlen, "%llu", (unsigned long long)v);
}

static int doc_token(void *arg, const char *t, size_t len, uint32_t pos)
{
    (void)pos;
    struct doc_terms *dt = arg;
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
                dt->slots[h] = (uint32_t)++n;
                break;
            }
            if (dt->refs[s - 1].len == len && memcmp(dt->refs[s - 1].p, k, len) == 0) {
                dt->tf[s - 1]++;
                break;
            }
        }
    }
    return n;
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
    struct doc_terms dt;
    doc_terms_init(&dt, sc);
    doc_terms_collect(&dt, an, o, vals);
    size_t n = doc_terms_distinct(&dt);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = posting_update(txn, d->terms, &dt.refs[i], doc, add ? dt.tf[i] : 0);
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
    doc_terms_free(&dt);
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
