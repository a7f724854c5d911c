/* index_live — live changes (the incremental channel).
 *
 * As in Lucene's segments, the bulk-built postings are immutable to the
 * stream: a write batch gathers its documents' postings and writes them as
 * one new segment at its commit (appended: new pages only), with the
 * documents' norms and exists marks and the removed ids' deleted marks.
 * The merge (index_merge.c) folds segments together and into the base. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index_internal.h"

int put_bitmap(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, roaring_bitmap_t *r)
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

int index_idset_add(MDB_txn *txn, MDB_dbi dbi, const roaring_bitmap_t *add)
{
    roaring_uint32_iterator_t it;
    roaring_init_iterator(add, &it);
    int rc = 0;
    while (!rc && it.has_value) {
        uint32_t lo = it.current_value & 0xFFFF0000u;
        unsigned char hi[2] = {(unsigned char)(lo >> 24), (unsigned char)(lo >> 16)};
        MDB_val k = {2, hi}, v;
        roaring_bitmap_t *r = NULL;
        if (mdb_get(txn, dbi, &k, &v) == 0)
            r = roaring_bitmap_portable_deserialize_safe(v.mv_data, v.mv_size);
        if (!r)
            r = roaring_bitmap_create();
        for (; it.has_value && (it.current_value & 0xFFFF0000u) == lo;
             roaring_advance_uint32_iterator(&it))
            roaring_bitmap_add(r, it.current_value);
        rc = put_bitmap(txn, dbi, &k, r);
        roaring_bitmap_free(r);
    }
    return rc;
}

int index_idset_take(MDB_txn *txn, MDB_dbi dbi, uint32_t max, roaring_bitmap_t **out)
{
    MDB_cursor *cur;
    MDB_val k, v;
    *out = NULL;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (!rc)
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    roaring_bitmap_t *r = NULL;
    if (!rc && !(r = roaring_bitmap_portable_deserialize_safe(v.mv_data, v.mv_size)))
        rc = MDB_CORRUPTED;
    if (!rc && roaring_bitmap_get_cardinality(r) <= max) {
        rc = mdb_cursor_del(cur, 0);
        *out = r, r = NULL;
    } else if (!rc) {
        uint32_t last;
        roaring_bitmap_select(r, max - 1, &last);
        *out = roaring_bitmap_from_range(roaring_bitmap_minimum(r), (uint64_t)last + 1, 1);
        roaring_bitmap_and_inplace(*out, r);
        roaring_bitmap_andnot_inplace(r, *out);
        unsigned char hi[2];
        memcpy(hi, k.mv_data, 2); /* k points into the page the put rewrites */
        MDB_val key = {2, hi};
        rc = put_bitmap(txn, dbi, &key, r);
    }
    if (r) /* this CRoaring's free does not take NULL */
        roaring_bitmap_free(r);
    mdb_cursor_close(cur);
    if (rc && *out) {
        roaring_bitmap_free(*out);
        *out = NULL;
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* ---- a transaction's segment, written at its end ----
 * Entries of one document are spread over its ~50 terms: written where
 * each term's posting lives, a batch dirties a B-tree page per term. They
 * are gathered over the transaction, grouped by term, and written as one
 * segment: its keys sort after every existing key, so the whole segment
 * is appended in key order. */

/* One document's entry for a term (its index in t). */
struct dentry {
    uint32_t boff, blen, doc, term;
    uint8_t tf;
};

/* A term of the batch: its key, how many entries it has, and the key's
 * first 8 bytes as a big-endian number (most comparisons stop there). */
struct dterm {
    uint32_t koff, count;
    uint16_t klen;
    uint64_t hash, prefix;
};

struct index_delta {
    struct tbuf keys, blobs;
    struct dentry *e;
    size_t n, cap;
    struct dterm *t;
    size_t nt, tcap;
    uint32_t *slots; /* open addressing over t (index + 1) */
    size_t nslots;
    roaring_bitmap_t *deleted; /* ids removed in this transaction */
    uint32_t first_added; /* the least id added in it (0: none yet) */
    struct index_doc *scratch; /* index_doc_add's analysis, reused */
    struct norms_cache *norms; /* the norms blocks it changes */
    /* Exists marks by field: u32 BE ids, ascending (ids only grow), put at
     * the end with one multiple-dup put a field. */
    struct tbuf exists[256];
    uint8_t exf[256];
    size_t nexf;
};

struct index_delta *index_delta_new(void)
{
    struct index_delta *b = xcalloc(1, sizeof(struct index_delta));
    b->norms = norms_cache_new();
    return b;
}

void index_delta_reset(struct index_delta *b)
{
    tbuf_reset(&b->keys);
    tbuf_reset(&b->blobs);
    b->n = b->nt = 0;
    if (b->slots)
        memset(b->slots, 0, b->nslots * sizeof *b->slots);
    if (b->deleted)
        roaring_bitmap_clear(b->deleted);
    b->first_added = 0;
    norms_cache_reset(b->norms);
    for (size_t i = 0; i < b->nexf; i++)
        tbuf_reset(&b->exists[b->exf[i]]);
    b->nexf = 0;
}

void index_delta_free(struct index_delta *b)
{
    if (!b)
        return;
    tbuf_free(&b->keys);
    tbuf_free(&b->blobs);
    free(b->e);
    free(b->t);
    free(b->slots);
    if (b->deleted)
        roaring_bitmap_free(b->deleted);
    index_doc_free(b->scratch);
    norms_cache_free(b->norms);
    for (size_t i = 0; i < 256; i++)
        tbuf_free(&b->exists[i]);
    free(b);
}

static void slots_grow(struct index_delta *b)
{
    size_t n = b->nslots ? b->nslots * 2 : 4096;
    free(b->slots);
    b->slots = xcalloc(n, sizeof *b->slots);
    b->nslots = n;
    for (size_t i = 0; i < b->nt; i++) {
        size_t h = b->t[i].hash & (n - 1);
        while (b->slots[h])
            h = (h + 1) & (n - 1);
        b->slots[h] = (uint32_t)i + 1;
    }
}

/* The batch's term of key (hash: key_hash), added when new. Grouping by
 * hash, not by sorting every entry: sorting was a tenth of the channel. */
static uint32_t term_of(struct index_delta *b, const unsigned char *key, uint16_t klen,
                        uint64_t hash)
{
    if ((b->nt + 1) * 2 > b->nslots)
        slots_grow(b);
    size_t h = hash & (b->nslots - 1);
    for (uint32_t s; (s = b->slots[h]); h = (h + 1) & (b->nslots - 1)) {
        struct dterm *t = &b->t[s - 1];
        if (t->hash == hash && t->klen == klen && memcmp(b->keys.data + t->koff, key, klen) == 0)
            return s - 1;
    }
    if (b->nt == b->tcap) {
        b->tcap = b->tcap ? b->tcap * 2 : 1024;
        b->t = xrealloc(b->t, b->tcap * sizeof *b->t);
    }
    uint64_t prefix = 0;
    for (size_t i = 0; i < 8; i++)
        prefix = prefix << 8 | (i < klen ? key[i] : 0);
    b->t[b->nt] = (struct dterm){(uint32_t)b->keys.len, 0, klen, hash, prefix};
    tbuf_add(&b->keys, key, klen);
    b->slots[h] = (uint32_t)++b->nt;
    return (uint32_t)b->nt - 1;
}

/* A document's analysis packed for delta_gather (index_doc_pack): u32
 * nterms, then per term u16 key length, key, u64 hash, u8 tf (saturated),
 * u32 blob length, blob (its positions; none in a like field). */
static void pack_terms(struct doc_terms *dt, size_t n, struct tbuf *out)
{
    doc_terms_positions(dt, n);
    uint32_t nt = (uint32_t)n;
    tbuf_add(out, &nt, 4);
    for (size_t i = 0; i < n; i++) {
        uint16_t klen = dt->refs[i].len;
        uint8_t tf = (uint8_t)(dt->tf[i] > 255 ? 255 : dt->tf[i]);
        tbuf_add(out, &klen, 2);
        tbuf_add(out, dt->refs[i].p, klen);
        tbuf_add(out, &dt->hash[i], 8);
        tbuf_add(out, &tf, 1);
        size_t at = out->len;
        uint32_t blen = 0;
        tbuf_add(out, &blen, 4);
        if (doc_terms_has_positions(dt, i))
            doc_terms_pos_blob(dt, i, out);
        blen = (uint32_t)(out->len - at - 4);
        memcpy(out->data + at, &blen, 4);
    }
}

/* Gathers doc's entries (its terms, tfs and positions) from their packed
 * form. */
static void delta_gather(struct index_delta *b, const unsigned char *p, uint32_t doc)
{
    uint32_t n;
    memcpy(&n, p, 4);
    p += 4;
    if (!b->first_added || doc < b->first_added)
        b->first_added = doc;
    for (uint32_t i = 0; i < n; i++) {
        if (b->n == b->cap) {
            b->cap = b->cap ? b->cap * 2 : 1024;
            b->e = xrealloc(b->e, b->cap * sizeof *b->e);
        }
        uint16_t klen;
        uint64_t hash;
        uint32_t blen;
        memcpy(&klen, p, 2);
        const unsigned char *key = p + 2;
        memcpy(&hash, key + klen, 8);
        uint8_t tf = key[klen + 8];
        memcpy(&blen, key + klen + 9, 4);
        p = key + klen + 13;
        uint32_t ti = term_of(b, key, klen, hash);
        b->t[ti].count++;
        b->e[b->n++] = (struct dentry){(uint32_t)b->blobs.len, blen, doc, ti, tf};
        tbuf_add(&b->blobs, p, blen);
        p += blen;
    }
}

/* Terms (indexes into t) in key order: the segment is appended in it. */
static int cmp_dterm(const void *x, const void *y, void *arg)
{
    const struct index_delta *b = arg;
    const struct dterm *a = &b->t[*(const uint32_t *)x], *c = &b->t[*(const uint32_t *)y];
    if (a->prefix != c->prefix)
        return a->prefix < c->prefix ? -1 : 1;
    return cmp_keys(b->keys.data + a->koff, a->klen, b->keys.data + c->koff, c->klen);
}

/* The id the batch's segment gets: after every live one. */
static int next_segment(MDB_txn *txn, const struct index_dbs *d, uint32_t *id)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, d->seglist, &cur);
    if (rc)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    *id = rc == 0 && k.mv_size == 4 ? get_be32(k.mv_data) + 1 : 1;
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Room for one term's entries while a segment is written. */
struct seg_out {
    uint32_t *ids;
    uint8_t *tf;
    struct tbuf blobs;
};

/* Writes term t's entries es[0..t->count) (but those of ids in gone) as
 * the segment's posting; *written counts them. */
static int put_segment_term(struct seg_writer *w, struct index_delta *b, const struct dterm *t,
                            const struct dentry *es, const roaring_bitmap_t *gone,
                            struct seg_out *o, uint64_t *written)
{
    uint32_t *ids = o->ids, m = 0;
    uint8_t *tf = o->tf;
    struct tbuf *blobs = &o->blobs;
    tbuf_reset(blobs);
    for (const struct dentry *e = es; e < es + t->count; e++) {
        if (gone && roaring_bitmap_contains(gone, e->doc))
            continue;
        ids[m] = e->doc;
        tf[m++] = e->tf;
        tbuf_add(blobs, b->blobs.data + e->boff, e->blen); /* (a like field's: none) */
    }
    if (!m)
        return 0;
    struct tbuf *val = seg_writer_open_entry(w, b->keys.data + t->koff, t->klen);
    segment_posting_encode(ids, tf, m, (const unsigned char *)blobs->data, blobs->len, val);
    *written += m;
    return seg_writer_close_entry(w);
}

/* The batch's exists marks: one multiple-dup put a field. */
static int exists_flush(MDB_txn *txn, const struct index_dbs *d, struct index_delta *b)
{
    MDB_cursor *cur;
    int rc = b->nexf ? mdb_cursor_open(txn, d->dexists, &cur) : 0;
    if (rc || !b->nexf)
        return rc;
    for (size_t i = 0; i < b->nexf && !rc; i++) {
        struct tbuf *ids = &b->exists[b->exf[i]];
        MDB_val k = {1, &b->exf[i]}, v[2] = {{4, ids->data}, {ids->len / 4, NULL}};
        rc = mdb_cursor_put(cur, &k, v, MDB_MULTIPLE);
    }
    mdb_cursor_close(cur);
    return rc;
}

/* A term's first 8 key bytes and its index, as the radix sort moves them. */
struct term_rank {
    uint64_t prefix;
    uint32_t t;
};

/* The batch's terms in key order into order[0..nt): a radix sort of their
 * first 8 bytes (a pass per byte that differs among them), then the few
 * that share those sorted by comparison. qsort_r of every term was a
 * tenth of the segment's writing. */
static void sort_terms(struct index_delta *b, uint32_t *order)
{
    size_t n = b->nt;
    if (!n)
        return;
    struct term_rank *r = xmalloc(n * sizeof *r), *tmp = xmalloc(n * sizeof *tmp);
    for (size_t i = 0; i < n; i++)
        r[i] = (struct term_rank){b->t[i].prefix, (uint32_t)i};
    for (unsigned shift = 0; shift < 64; shift += 8) {
        size_t count[256] = {0};
        for (size_t i = 0; i < n; i++)
            count[r[i].prefix >> shift & 255]++;
        if (count[r[0].prefix >> shift & 255] == n)
            continue; /* the same byte in every key */
        for (size_t v = 0, at = 0; v < 256; v++) {
            size_t c = count[v];
            count[v] = at;
            at += c;
        }
        for (size_t i = 0; i < n; i++)
            tmp[count[r[i].prefix >> shift & 255]++] = r[i];
        struct term_rank *x = r;
        r = tmp, tmp = x;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = r[i].t;
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && r[j].prefix == r[i].prefix; j++)
            ;
        if (j - i > 1)
            qsort_r(order + i, j - i, sizeof *order, cmp_dterm, b);
    }
    free(r);
    free(tmp);
}

/* The batch's entries grouped by term, terms in key order (*order): a
 * counting sort, so that the entries are read in order, not chased. */
static struct dentry *entries_by_term(struct index_delta *b, uint32_t **order)
{
    *order = xmalloc(b->nt * sizeof **order);
    sort_terms(b, *order);
    uint32_t *start = xmalloc(b->nt * sizeof *start), at = 0;
    for (size_t k = 0; k < b->nt; k++) {
        start[(*order)[k]] = at;
        at += b->t[(*order)[k]].count;
    }
    struct dentry *sorted = xmalloc(b->n * sizeof *sorted);
    for (size_t i = 0; i < b->n; i++) /* a term's stay in document order */
        sorted[start[b->e[i].term]++] = b->e[i];
    free(start);
    return sorted;
}

/* The ids the batch both added and removed, whose entries are not written
 * (NULL: none). Ids only grow, so they are its removed ids from the least
 * it added on: the others had no entries in it, and looking each entry up
 * among every removed id was the segment's writing's most costly check. */
static roaring_bitmap_t *added_and_removed(const struct index_delta *b)
{
    if (!b->deleted || !b->first_added ||
        roaring_bitmap_maximum(b->deleted) < b->first_added)
        return NULL;
    roaring_bitmap_t *gone = roaring_bitmap_copy(b->deleted);
    roaring_bitmap_remove_range(gone, 0, b->first_added);
    return gone;
}

/* The batch's postings as one new segment. */
static int segment_flush(MDB_txn *txn, const struct index_dbs *d, struct index_delta *b)
{
    if (!b->n)
        return 0;
    struct seg_info seg = {0, 0, 0};
    struct seg_writer w;
    int rc;
    if ((rc = next_segment(txn, d, &seg.id)) != 0 ||
        (rc = seg_writer_begin(&w, txn, d, seg.id, MDB_APPEND)))
        return rc;
    uint32_t *order;
    struct dentry *sorted = entries_by_term(b, &order);
    roaring_bitmap_t *gone = added_and_removed(b);
    struct seg_out o = {xmalloc(b->n * sizeof *o.ids), xmalloc(b->n), {0}}; /* b->n bounds a term's */
    for (size_t k = 0, at = 0; !rc && k < b->nt; at += b->t[order[k]].count, k++)
        rc = put_segment_term(&w, b, &b->t[order[k]], sorted + at, gone, &o, &seg.entries);
    rc = seg_writer_end(&w, rc);
    if (gone)
        roaring_bitmap_free(gone);
    free(order);
    free(sorted);
    free(o.ids);
    free(o.tf);
    tbuf_free(&o.blobs);
    if (!rc && seg.entries)
        rc = segs_put_info(txn, d, &seg);
    return rc;
}

int index_delta_flush(MDB_txn *txn, const struct index_dbs *d, struct index_delta *b)
{
    if (!b)
        return 0;
    int rc = b->deleted ? index_idset_add(txn, d->deleted, b->deleted) : 0;
    if (!rc)
        rc = segment_flush(txn, d, b);
    if (!rc)
        rc = norms_cache_flush(b->norms, txn, d);
    if (!rc)
        rc = exists_flush(txn, d, b);
    index_delta_reset(b);
    return rc;
}

/* Field i's length in a packed analysis (which may sit unaligned). */
static uint32_t packed_len(const void *packed, size_t i)
{
    uint32_t len;
    memcpy(&len, (const unsigned char *)packed + i * sizeof len, sizeof len);
    return len;
}

/* Writes doc's own per-document entries (norms, exists marks) and gathers
 * its term entries into the batch, from its packed analysis (the field
 * lengths, then the terms). */
static int delta_add(MDB_txn *txn, const struct index_dbs *d, const struct tis_schema *sc,
                     const void *packed, const struct tis_value *vals, uint32_t doc,
                     struct index_delta *batch)
{
    unsigned char e[4];
    put_be32(e, doc);
    delta_gather(batch, (const unsigned char *)packed + sc->nfields * sizeof(uint32_t), doc);
    int rc = 0;
    for (size_t i = 0; i < sc->nfields && !rc; i++) {
        if (!sc->fields[i].search || vals[i].null)
            continue;
        uint8_t f = (uint8_t)i;
        if (!batch->exists[f].len)
            batch->exf[batch->nexf++] = f;
        tbuf_add(&batch->exists[f], e, 4);
        uint32_t len = packed_len(packed, i);
        if (len)
            rc = norms_cache_put(batch->norms, txn, d, f, doc, len);
    }
    return rc;
}

/* A document's analysis: the packed terms (pack_terms) after the field
 * lengths (u32 each). */
struct index_doc {
    const struct tis_schema *sc;
    struct doc_terms dt; /* the analysis's working space */
};

struct index_doc *index_doc_new(const struct tis_schema *sc)
{
    struct index_doc *x = xcalloc(1, sizeof *x);
    x->sc = sc;
    doc_terms_init(&x->dt, sc);
    return x;
}

void index_doc_free(struct index_doc *x)
{
    if (!x)
        return;
    doc_terms_free(&x->dt);
    free(x);
}

void index_doc_pack(struct index_doc *x, struct analyzer *an, const struct analysis_opts *o,
                    const struct tis_value *vals, struct tbuf *out)
{
    doc_terms_collect(&x->dt, an, o, vals);
    size_t n = doc_terms_distinct(&x->dt);
    tbuf_add(out, x->dt.lens, x->sc->nfields * sizeof *x->dt.lens);
    pack_terms(&x->dt, n, out);
}

int index_doc_add_packed(MDB_txn *txn, const struct index_dbs *d, const struct tis_schema *sc,
                         const void *packed, uint32_t doc, const struct tis_value *vals,
                         struct field_totals *totals, struct index_delta *batch)
{
    struct index_delta *own = batch ? NULL : index_delta_new();
    int rc = delta_add(txn, d, sc, packed, vals, doc, batch ? batch : own);
    if (!rc && own)
        rc = index_delta_flush(txn, d, own);
    for (size_t i = 0; i < sc->nfields && totals; i++)
        if (sc->fields[i].search && !vals[i].null) {
            uint32_t len = packed_len(packed, i);
            totals[i].docs += len > 0;
            totals[i].tokens += (int64_t)len;
        }
    index_delta_free(own);
    return rc;
}

int index_doc_add(MDB_txn *txn, const struct index_dbs *d, const struct tis_schema *sc,
                  struct analyzer *an, const struct analysis_opts *o, uint32_t doc,
                  const struct tis_value *vals, struct field_totals *totals,
                  struct index_delta *batch)
{
    /* A batch keeps one working space to reuse: its arrays, not a set a
     * document. */
    struct index_doc *own = batch && batch->scratch && batch->scratch->sc == sc ? NULL
                                                                               : index_doc_new(sc);
    struct index_doc *x = own ? own : batch->scratch;
    struct tbuf packed = {0};
    index_doc_pack(x, an, o, vals, &packed);
    int rc = index_doc_add_packed(txn, d, sc, packed.data, doc, vals, totals, batch);
    tbuf_free(&packed);
    if (own && batch && !batch->scratch)
        batch->scratch = own;
    else
        index_doc_free(own);
    return rc;
}

/* No analysis: the norms say what the document counted for, and its
 * postings (base or delta) stay until the merge drops them, hidden by the
 * deleted mark meanwhile. An update then costs one analysis, a delete none. */
int index_doc_remove(MDB_txn *txn, const struct index_dbs *d, const struct tis_schema *sc,
                     uint32_t doc, struct field_totals *totals, struct index_delta *batch)
{
    int rc = 0;
    for (size_t i = 0; i < sc->nfields && !rc; i++) {
        if (!sc->fields[i].search)
            continue;
        uint8_t f = (uint8_t)i;
        uint32_t len = batch ? norms_cache_get(batch->norms, txn, d, f, doc)
                             : index_field_len(txn, d, doc, f);
        if (totals) {
            totals[i].docs -= len > 0;
            totals[i].tokens -= len;
        }
        if (len)
            rc = batch ? norms_cache_put(batch->norms, txn, d, f, doc, 0)
                       : norms_put(txn, d, f, doc, 0);
    }
    if (rc)
        return rc;
    if (batch) { /* written at the flush, a chunk once per batch */
        if (!batch->deleted)
            batch->deleted = roaring_bitmap_create();
        roaring_bitmap_add(batch->deleted, doc);
        return 0;
    }
    roaring_bitmap_t *one = roaring_bitmap_of(1, doc);
    rc = index_idset_add(txn, d->deleted, one);
    roaring_bitmap_free(one);
    return rc;
}

int index_clear(MDB_txn *txn, const struct index_dbs *d, uint32_t last_id)
{
    MDB_dbi all[] = {d->terms, d->norms, d->exists, d->segs, d->seglist, d->dexists, d->deleted};
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
    struct seg_info *segs;
    size_t n = segs_list(txn, d, &segs);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += segs[i].entries;
    free(segs);
    MDB_stat st;
    return sum + (mdb_stat(txn, d->dexists, &st) == 0 ? st.ms_entries : 0);
}
