/* index_live — live changes (the incremental channel).
 *
 * As in Lucene's segments, the bulk-built postings are immutable to the
 * stream: a write batch gathers its documents' postings and writes them as
 * one new segment at its commit (appended: new pages only), with the
 * documents' norms and exists marks and the removed ids' deleted marks.
 * The merge (index_merge.c) folds segments together and into the base. */
#define _GNU_SOURCE
#include <errno.h>
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
        if ((rc = mdb_get(txn, dbi, &k, &v)) == 0) {
            /* A stored set that does not read is damage, never an empty
             * set: writing one over it would forget its ids for good. */
            if (!(r = roaring_bitmap_portable_deserialize_safe(v.mv_data, v.mv_size)))
                return MDB_CORRUPTED;
        } else if (rc == MDB_NOTFOUND) {
            r = roaring_bitmap_create();
        } else {
            return rc;
        }
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
    if (rc)
        return rc;
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

struct index_delta {
    struct gather own; /* entries of the documents analysed here */
    /* A group analysed ahead (index_delta_attach): map[o] is the id given
     * to its ordinal o (0: none yet). */
    const struct index_group *group;
    uint32_t *map;
    size_t mapcap;
    bool grouped; /* some ordinal was added */
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

/* Forgets the ids given to the group's ordinals. */
static void unmap_all(struct index_delta *b)
{
    if (b->group && b->grouped)
        memset(b->map, 0, b->group->ndocs * sizeof *b->map);
    b->grouped = false;
}

struct index_delta *index_delta_new(void)
{
    struct index_delta *b = xcalloc(1, sizeof(struct index_delta));
    b->norms = norms_cache_new();
    return b;
}

void index_delta_reset(struct index_delta *b)
{
    gather_reset(&b->own);
    unmap_all(b);
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
    gather_free(&b->own);
    free(b->map);
    if (b->deleted)
        roaring_bitmap_free(b->deleted);
    index_doc_free(b->scratch);
    norms_cache_free(b->norms);
    for (size_t i = 0; i < 256; i++)
        tbuf_free(&b->exists[i]);
    free(b);
}

void index_delta_attach(struct index_delta *b, const struct index_group *g)
{
    unmap_all(b);
    b->group = g && g->sealed && g->ndocs ? g : NULL;
    if (!b->group)
        return;
    if (g->ndocs > b->mapcap) {
        free(b->map);
        b->mapcap = g->ndocs;
        b->map = xmalloc(b->mapcap * sizeof *b->map);
    }
    memset(b->map, 0, g->ndocs * sizeof *b->map);
}

/* Notes id doc as added: the least id the transaction added. */
static void note_added(struct index_delta *b, uint32_t doc)
{
    if (!b->first_added || doc < b->first_added)
        b->first_added = doc;
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

/* Writes term t's entries es[0..t->count) (but those of ids in gone) as
 * the segment's posting; *written counts them. */
static int put_segment_term(struct seg_writer *w, const struct gather *own,
                            const struct gather_term *t, const struct gather_entry *es,
                            const roaring_bitmap_t *gone, struct seg_out *o, uint64_t *written)
{
    uint32_t *ids = o->ids, m = 0;
    uint8_t *tf = o->tf;
    struct tbuf *blobs = &o->blobs;
    tbuf_reset(blobs);
    for (const struct gather_entry *e = es; e < es + t->count; e++) {
        if (gone && roaring_bitmap_contains(gone, e->doc))
            continue;
        ids[m] = e->doc;
        tf[m++] = e->tf;
        tbuf_add(blobs, own->blobs.data + e->boff, e->blen); /* (a like field's: none) */
    }
    if (!m)
        return 0;
    struct tbuf *val = seg_writer_open_entry(w, own->keys.data + t->koff, t->klen);
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
        size_t n = ids->len / 4;
        /* Ids only grow, so a batch's come after those stored: appended,
         * not each looked up among the field's ids (writing time -3 to -8 %).
         * An id that is not above the last (none is expected) fails the
         * append without harm, and the rest go in by lookup. */
        MDB_val k = {1, &b->exf[i]}, v[2] = {{4, ids->data}, {n, NULL}};
        rc = mdb_cursor_put(cur, &k, v, MDB_MULTIPLE | MDB_APPENDDUP);
        if (rc == MDB_KEYEXIST) {
            size_t done = v[1].mv_size;
            v[0] = (MDB_val){4, ids->data + 4 * done};
            v[1] = (MDB_val){n - done, NULL};
            rc = mdb_cursor_put(cur, &k, v, MDB_MULTIPLE);
        }
    }
    mdb_cursor_close(cur);
    return rc;
}

/* The ids the batch both added and removed, whose entries are not written
 * (NULL: none). Ids only grow, so they are its removed ids from the least
 * it added on: the others had no entries in it, and looking each entry up
 * among every removed id was the segment's writing's most costly check.
 * The group's ordinals of those ids are unmapped, so that its entries
 * need no such check. */
static roaring_bitmap_t *added_and_removed(struct index_delta *b)
{
    if (!b->deleted || !b->first_added ||
        roaring_bitmap_maximum(b->deleted) < b->first_added)
        return NULL;
    roaring_bitmap_t *gone = roaring_bitmap_copy(b->deleted);
    roaring_bitmap_remove_range(gone, 0, b->first_added);
    for (uint32_t o = 0; b->grouped && o < b->group->ndocs; o++)
        if (b->map[o] && roaring_bitmap_contains(gone, b->map[o]))
            b->map[o] = 0;
    return gone;
}

/* Key order between own term t and the group's term k. */
static int cmp_own_group(const struct gather *own, const struct gather_term *t,
                         const struct index_group *g, size_t k)
{
    const struct group_term *u = &g->t[k];
    return cmp_prefixed_keys(t->prefix, own->keys.data + t->koff, t->klen, u->prefix,
                             g->in.keys.data + u->koff, u->klen);
}

/* The batch's postings as one new segment: its own terms and the
 * attached group's, merged in key order. */
static int segment_flush(MDB_txn *txn, const struct index_dbs *d, struct index_delta *b)
{
    const struct index_group *g = b->grouped ? b->group : NULL;
    struct gather *own = &b->own;
    if (!own->n && !g)
        return 0;
    struct seg_info seg = {0, 0, 0};
    struct seg_writer w;
    int rc;
    if ((rc = next_segment(txn, d, &seg.id)) != 0 ||
        (rc = seg_writer_begin(&w, txn, d, seg.id, MDB_APPEND)))
        return rc;
    uint32_t *order;
    struct gather_entry *sorted = gather_by_term(own, &order);
    roaring_bitmap_t *gone = added_and_removed(b);
    size_t room = own->n + (g ? g->t[g->nt].start : 0); /* bounds a term's entries */
    struct seg_out o = {xmalloc((room ? room : 1) * sizeof *o.ids), xmalloc(room ? room : 1), {0}};
    size_t k = 0, j = 0, at = 0, gn = g ? g->nt : 0;
    while (!rc && (k < own->nt || j < gn)) {
        const struct gather_term *t = k < own->nt ? &own->t[order[k]] : NULL;
        int c = !t ? 1 : j == gn ? -1 : cmp_own_group(own, t, g, j);
        if (c < 0)
            rc = put_segment_term(&w, own, t, sorted + at, gone, &o, &seg.entries);
        else
            rc = group_put_term(&w, g, j, b->map, own, sorted + at, c == 0 ? t->count : 0, gone,
                                &o, &seg.entries);
        if (c <= 0)
            at += t->count, k++;
        j += c >= 0;
    }
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
static uint32_t packed_len(const void *lens, size_t i)
{
    uint32_t len;
    memcpy(&len, (const unsigned char *)lens + i * sizeof len, sizeof len);
    return len;
}

/* Writes doc's own per-document entries (norms, exists marks) and counts
 * it in totals, from its field lengths (u32 each, maybe unaligned). */
static int delta_add(MDB_txn *txn, const struct index_dbs *d, const struct tis_schema *sc,
                     const void *lens, const struct tis_value *vals, uint32_t doc,
                     struct field_totals *totals, struct index_delta *batch)
{
    unsigned char e[4];
    put_be32(e, doc);
    int rc = 0;
    for (size_t i = 0; i < sc->nfields && !rc; i++) {
        if (!sc->fields[i].search || vals[i].null)
            continue;
        uint8_t f = (uint8_t)i;
        if (!batch->exists[f].len)
            batch->exf[batch->nexf++] = f;
        tbuf_add(&batch->exists[f], e, 4);
        uint32_t len = packed_len(lens, i);
        if (totals) {
            totals[i].docs += len > 0;
            totals[i].tokens += (int64_t)len;
        }
        if (len)
            rc = norms_cache_put(batch->norms, txn, d, f, doc, len);
    }
    return rc;
}

/* A document's analysis: its working space, reused. */
struct index_doc {
    const struct tis_schema *sc;
    struct doc_terms dt;
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

struct doc_terms *index_doc_terms(struct index_doc *x)
{
    return &x->dt;
}

int index_doc_add_packed(MDB_txn *txn, const struct index_dbs *d, const struct tis_schema *sc,
                         const void *packed, uint32_t doc, const struct tis_value *vals,
                         struct field_totals *totals, struct index_delta *batch)
{
    uint32_t ord;
    memcpy(&ord, (const unsigned char *)packed + sc->nfields * sizeof(uint32_t), sizeof ord);
    if (!batch || !batch->group || ord >= batch->group->ndocs || batch->map[ord])
        return EINVAL; /* not the attached group's, or added twice */
    note_added(batch, doc);
    batch->map[ord] = doc;
    batch->grouped = true;
    return delta_add(txn, d, sc, packed, vals, doc, totals, batch);
}

int index_doc_add(MDB_txn *txn, const struct index_dbs *d, const struct tis_schema *sc,
                  struct analyzer *an, const struct analysis_opts *o, uint32_t doc,
                  const struct tis_value *vals, struct field_totals *totals,
                  struct index_delta *batch)
{
    struct index_delta *one = batch ? NULL : index_delta_new();
    struct index_delta *b = batch ? batch : one;
    /* A batch keeps one working space to reuse: its arrays, not a set a
     * document. */
    if (b->scratch && b->scratch->sc != sc) {
        index_doc_free(b->scratch);
        b->scratch = NULL;
    }
    if (!b->scratch)
        b->scratch = index_doc_new(sc);
    struct doc_terms *dt = &b->scratch->dt;
    doc_terms_collect(dt, an, o, vals);
    note_added(b, doc);
    gather_tokens(&b->own, dt, doc);
    int rc = delta_add(txn, d, sc, dt->lens, vals, doc, totals, b);
    if (!rc && one)
        rc = index_delta_flush(txn, d, one);
    index_delta_free(one);
    return rc;
}

/* No analysis: the norms say what the document counted for (and stay: see
 * norms_cache_peek), and its postings (base or delta) stay until the merge
 * drops them, hidden by the deleted mark meanwhile. An update then costs
 * one analysis, a delete none. */
int index_doc_remove(MDB_txn *txn, const struct index_dbs *d, const struct tis_schema *sc,
                     uint32_t doc, struct field_totals *totals, struct index_delta *batch)
{
    int rc = 0;
    for (size_t i = 0; i < sc->nfields && !rc; i++) {
        if (!sc->fields[i].search)
            continue;
        uint8_t f = (uint8_t)i;
        uint32_t len = batch ? norms_cache_peek(batch->norms, txn, d, f, doc)
                             : index_field_len(txn, d, doc, f);
        if (totals) {
            totals[i].docs -= len > 0;
            totals[i].tokens -= len;
        }
    }
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
