/* index — the inverted index's databases, typed terms and reading: a
 * term's posting (base and live parts), walks over a field's terms, exists
 * sets, deleted ids. The build is index_build.c, a document's terms
 * index_doc.c, live changes index_live.c, the live segments index_segs.c,
 * their merge index_merge.c, the posting's stored form index_posting.c. */
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
    free(p->dpos);
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
        rc = mdb_dbi_open(txn, "segs", f, &d->segs);
    if (!rc)
        rc = mdb_dbi_open(txn, "seglist", f, &d->seglist);
    if (!rc)
        rc = mdb_dbi_open(txn, "exists", f, &d->exists);
    if (!rc)
        rc = mdb_dbi_open(txn, "dexists", f | dup, &d->dexists);
    if (!rc)
        rc = mdb_dbi_open(txn, "deleted", f, &d->deleted);
    return rc;
}

/* ---- the live exists marks ---- */

/* Every dup of key in a DUPFIXED database of u32 BE ids, a page at a time
 * (MDB_GET_MULTIPLE), into *ids. Returns the count (0 when key is absent). */
static size_t dups_read(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, uint32_t **ids)
{
    MDB_cursor *cur;
    MDB_val v;
    size_t n = 0, cap = 0;
    *ids = NULL;
    if (mdb_cursor_open(txn, dbi, &cur))
        return 0;
    int rc = mdb_cursor_get(cur, key, &v, MDB_SET);
    if (!rc)
        rc = mdb_cursor_get(cur, key, &v, MDB_GET_MULTIPLE);
    for (; rc == 0; rc = mdb_cursor_get(cur, key, &v, MDB_NEXT_MULTIPLE)) {
        size_t m = v.mv_size / 4;
        if (n + m > cap) {
            cap = (n + m) * 2;
            *ids = xrealloc(*ids, cap * sizeof **ids);
        }
        for (size_t i = 0; i < m; i++)
            (*ids)[n++] = get_be32((const unsigned char *)v.mv_data + i * 4);
    }
    mdb_cursor_close(cur);
    return n;
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
    if (key.mv_size > 1 + TERM_MAX_BYTES) /* no such term is stored (nor a valid LMDB key) */
        return MDB_NOTFOUND;
    int rc = mdb_get(txn, d->terms, &key, &v);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    if (rc == 0 && !posting_decode(&v, out))
        return MDB_CORRUPTED;
    struct seg_info *segs;
    size_t nsegs = segs_list(txn, d, &segs);
    struct delta_parts parts = {0};
    MDB_cursor *cur = NULL;
    bool ok = key.mv_size <= 1 + TERM_MAX_BYTES;
    int crc = nsegs && ok ? mdb_cursor_open(txn, d->segs, &cur) : 0;
    if (crc) {
        free(segs);
        posting_free(out);
        return crc;
    }
    for (size_t i = 0; i < nsegs && ok; i++) {
        int frc = seg_find(cur, segs[i].id, key.mv_data, key.mv_size, &v);
        ok = frc == MDB_NOTFOUND || (frc == 0 && delta_parts_add(&parts, &v));
    }
    if (cur)
        mdb_cursor_close(cur);
    free(segs);
    if (!ok) {
        delta_parts_free(&parts);
        posting_free(out);
        return MDB_CORRUPTED;
    }
    delta_parts_into(&parts, out);
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
    struct seg_info *segs;
    size_t nsegs = segs_list(txn, d, &segs);
    struct key_walk w;
    struct tbuf k = {0};
    int rc = key_walk_open(&w, txn, d, true, segs, nsegs);
    term_key(field, lo ? lo : "", lo ? lolen : 0, &k);
    if (!rc && k.len <= 1 + TERM_MAX_BYTES)
        key_walk_seek(&w, k.data, k.len);
    MDB_val key;
    while (!rc && k.len <= 1 + TERM_MAX_BYTES && key_walk_min(&w, &key) &&
           ((const unsigned char *)key.mv_data)[0] == field) {
        int b = term_bounds(&key, lo, lolen, incl_lo, hi, hilen, incl_hi);
        if (b > 0)
            break;
        struct posting p;
        if (b == 0 && (rc = key_walk_posting(&w, &key, &p)) == 0) {
            int stop = fn(arg, (const unsigned char *)key.mv_data + 1, key.mv_size - 1, &p);
            posting_free(&p);
            if (stop)
                break;
        }
        key_walk_next(&w, &key);
    }
    if (!rc && w.bad) /* a malformed block ended a side: not the terms' end */
        rc = MDB_CORRUPTED;
    key_walk_close(&w);
    free(segs);
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
    size_t n = dups_read(txn, d->dexists, &k, &ids);
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

int index_deleted(MDB_txn *txn, const struct index_dbs *d, roaring_bitmap_t **out)
{
    MDB_cursor *cur;
    MDB_val k, v;
    *out = NULL;
    int rc = mdb_cursor_open(txn, d->deleted, &cur);
    if (rc)
        return rc;
    roaring_bitmap_t *r = roaring_bitmap_create();
    for (int op = MDB_FIRST; (rc = mdb_cursor_get(cur, &k, &v, op)) == 0; op = MDB_NEXT) {
        roaring_bitmap_t *c = roaring_bitmap_portable_deserialize_safe(v.mv_data, v.mv_size);
        if (!c) {
            rc = MDB_CORRUPTED;
            break;
        }
        roaring_bitmap_or_inplace(r, c);
        roaring_bitmap_free(c);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) {
        roaring_bitmap_free(r);
        return rc;
    }
    *out = r;
    return 0;
}
