/* index — the inverted index's databases, typed terms and reading: a
 * term's posting (base and live parts), walks over a field's terms, exists
 * sets, deleted ids. The build is index_build.c, a document's terms
 * index_doc.c, live changes and the merge index_live.c, the posting's
 * stored form index_posting.c. */
#define _GNU_SOURCE
#include "tisfs/index.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index_internal.h"
#include "tisfs/util.h"

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

int index_key_posting(MDB_txn *txn, const struct index_dbs *d, MDB_val key, struct posting *out)
{
    MDB_val v;
    memset(out, 0, sizeof *out);
    int rc = mdb_get(txn, d->terms, &key, &v);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    if (rc == 0 && !posting_decode(&v, out))
        return MDB_CORRUPTED;
    MDB_stat st; /* O(1): no cursor (and its allocation) when nothing is live */
    if (mdb_stat(txn, d->dterms, &st) || st.ms_entries)
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
    int rc = index_key_posting(txn, d, (MDB_val){k.len, k.data}, out);
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
        if (b == 0 && index_key_posting(txn, d, key, &p) == 0) {
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
