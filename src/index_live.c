/* index_live — live changes (the incremental channel) and the merge.
 *
 * As in Lucene's segments, the bulk-built postings are immutable to the
 * stream: a change writes only the changed document's own entries (delta
 * postings, positions, norms, exists marks) and a deleted mark; the merge
 * (index_fold) folds the delta into the base postings a few terms at a
 * time, dropping deleted ids from the postings it rewrites. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index_internal.h"

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

/* ---- a transaction's delta entries, written at its end ----
 * Entries of one document are spread over its ~50 terms' keys: written one
 * by one, a batch of documents dirties a B-tree page per (document, term).
 * Gathered over the transaction and sorted by term, each term gets one
 * multiple-dup put (MDB_MULTIPLE) and its positions go to dpos in key order:
 * a page per term per batch. */

/* One document's entry for a term, chained to the term's next one. */
struct dentry {
    uint32_t boff, blen, doc, next; /* next: index + 1 in e, 0 at the end */
    uint8_t tf;
};

/* A term of the batch: its key and its entries in document order. */
struct dterm {
    uint32_t koff, first, last; /* first, last: index + 1 in e */
    uint16_t klen;
    uint64_t hash;
};

struct index_delta {
    struct tbuf keys, blobs;
    struct dentry *e;
    size_t n, cap;
    struct dterm *t;
    size_t nt, tcap;
    uint32_t *slots; /* open addressing over t (index + 1) */
    size_t nslots;
};

struct index_delta *index_delta_new(void)
{
    return xcalloc(1, sizeof(struct index_delta));
}

void index_delta_reset(struct index_delta *b)
{
    tbuf_reset(&b->keys);
    tbuf_reset(&b->blobs);
    b->n = b->nt = 0;
    if (b->slots)
        memset(b->slots, 0, b->nslots * sizeof *b->slots);
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
static struct dterm *term_of(struct index_delta *b, const unsigned char *key, uint16_t klen,
                             uint64_t hash)
{
    if ((b->nt + 1) * 2 > b->nslots)
        slots_grow(b);
    size_t h = hash & (b->nslots - 1);
    for (uint32_t s; (s = b->slots[h]); h = (h + 1) & (b->nslots - 1)) {
        struct dterm *t = &b->t[s - 1];
        if (t->hash == hash && t->klen == klen && memcmp(b->keys.data + t->koff, key, klen) == 0)
            return t;
    }
    if (b->nt == b->tcap) {
        b->tcap = b->tcap ? b->tcap * 2 : 1024;
        b->t = xrealloc(b->t, b->tcap * sizeof *b->t);
    }
    struct dterm *t = &b->t[b->nt++];
    *t = (struct dterm){(uint32_t)b->keys.len, 0, 0, klen, hash};
    tbuf_add(&b->keys, key, klen);
    b->slots[h] = (uint32_t)b->nt;
    return t;
}

/* Gathers doc's entries: its terms, tfs and positions. */
static void delta_gather(struct index_delta *b, struct doc_terms *dt, size_t n, uint32_t doc)
{
    doc_terms_positions(dt, n);
    for (size_t i = 0; i < n; i++) {
        if (b->n == b->cap) {
            b->cap = b->cap ? b->cap * 2 : 1024;
            b->e = xrealloc(b->e, b->cap * sizeof *b->e);
        }
        struct dterm *t = term_of(b, dt->refs[i].p, dt->refs[i].len, dt->hash[i]);
        struct dentry *e = &b->e[b->n++];
        *e = (struct dentry){(uint32_t)b->blobs.len, 0, doc, 0,
                             (uint8_t)(dt->tf[i] > 255 ? 255 : dt->tf[i])};
        if (doc_terms_has_positions(dt, i))
            doc_terms_pos_blob(dt, i, &b->blobs);
        e->blen = (uint32_t)(b->blobs.len - e->boff);
        if (t->last)
            b->e[t->last - 1].next = (uint32_t)b->n;
        else
            t->first = (uint32_t)b->n;
        t->last = (uint32_t)b->n;
    }
}

/* Terms in key order: LMDB's pages are then visited in order. */
static int cmp_dterm(const void *x, const void *y, void *arg)
{
    const struct dterm *a = x, *c = y;
    const struct index_delta *b = arg;
    return cmp_keys(b->keys.data + a->koff, a->klen, b->keys.data + c->koff, c->klen);
}

int index_delta_flush(MDB_txn *txn, const struct index_dbs *d, struct index_delta *b)
{
    if (!b || !b->n)
        return 0;
    qsort_r(b->t, b->nt, sizeof *b->t, cmp_dterm, b); /* slots are stale now: reset below */
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, d->dterms, &cur);
    if (rc)
        return rc;
    unsigned char *dups = xmalloc(b->n * DENTRY), pk[DPOS_KEY_MAX];
    struct tbuf pos = {0};
    for (size_t i = 0; !rc && i < b->nt; i++) {
        const struct dterm *t = &b->t[i];
        size_t m = 0;
        tbuf_reset(&pos); /* the batch's positions of this term: one value */
        for (uint32_t k = t->first; k; k = b->e[k - 1].next, m++) {
            const struct dentry *e = &b->e[k - 1];
            put_be32(dups + m * DENTRY, e->doc);
            dups[m * DENTRY + 4] = e->tf;
            if (e->blen) { /* (a like field's have none) */
                unsigned char id[4];
                put_be32(id, e->doc);
                tbuf_add(&pos, id, 4);
                tbuf_add(&pos, b->blobs.data + e->boff, e->blen);
            }
        }
        MDB_val key = {t->klen, b->keys.data + t->koff};
        MDB_val data[2] = {{DENTRY, dups}, {m, NULL}};
        rc = mdb_cursor_put(cur, &key, data, MDB_MULTIPLE);
        if (!rc && pos.len) {
            MDB_val pkv = {dpos_key(b->e[t->first - 1].doc, key.mv_data, key.mv_size, pk), pk},
                    pv = {pos.len, pos.data};
            rc = mdb_put(txn, d->dpos, &pkv, &pv, 0);
        }
    }
    mdb_cursor_close(cur);
    free(dups);
    tbuf_free(&pos);
    index_delta_reset(b);
    return rc;
}

/* Writes doc's own per-document entries (norms, exists marks) and gathers
 * its term entries into the batch. */
static int delta_add(MDB_txn *txn, const struct index_dbs *d, struct doc_terms *dt, size_t n,
                     const struct tis_value *vals, uint32_t doc, struct index_delta *batch)
{
    const struct tis_schema *sc = dt->sc;
    unsigned char e[4];
    put_be32(e, doc);
    delta_gather(batch, dt, n, doc);
    int rc = 0;
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
                  const struct tis_value *vals, struct field_totals *totals,
                  struct index_delta *batch)
{
    struct doc_terms dt;
    struct index_delta *own = batch ? NULL : index_delta_new();
    doc_terms_init(&dt, sc);
    doc_terms_collect(&dt, an, o, vals);
    size_t n = doc_terms_distinct(&dt);
    int rc = delta_add(txn, d, &dt, n, vals, doc, batch ? batch : own);
    if (!rc && own)
        rc = index_delta_flush(txn, d, own);
    for (size_t i = 0; i < sc->nfields && totals; i++)
        if (sc->fields[i].search && !vals[i].null) {
            totals[i].docs += dt.lens[i] > 0;
            totals[i].tokens += (int64_t)dt.lens[i];
        }
    doc_terms_free(&dt);
    index_delta_free(own);
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
 * added one's from its dup in dterms (walked alongside too). Everything is
 * copied out before the caller writes. */
static void fold_positions(MDB_txn *txn, const struct index_dbs *d, MDB_val key,
                           const struct posting *p, const uint32_t *ids, uint32_t n,
                           struct tbuf *blobs)
{
    const unsigned char *bp = posting_blob(p, 0), *bend = p->pos ? p->pos + p->poslen : NULL;
    roaring_uint32_iterator_t it;
    roaring_init_iterator(p->docs, &it);
    size_t found = 0;
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *b = NULL, *end = NULL;
        if (p->delta && roaring_bitmap_contains(p->delta, ids[i])) {
            b = dpos_find(txn, d, key.mv_data, key.mv_size, ids[i], &end);
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
        found += len > 0;
        if (len)
            tbuf_add(blobs, b, len);
        else
            tbuf_add(blobs, "", 1); /* lost: an empty list keeps the ranks in step */
    }
    if (!found) /* a term without positions (a like field's): none stored */
        tbuf_reset(blobs);
}

/* Drops the live positions of key (live and deleted documents alike): one
 * sweep over adjacent dpos entries. */
static int drop_delta_positions(MDB_txn *txn, const struct index_dbs *d, MDB_val key)
{
    MDB_cursor *cur;
    unsigned char pk[DPOS_KEY_MAX];
    size_t plen = dpos_key(0, key.mv_data, key.mv_size, pk) - 4; /* the term's prefix */
    MDB_val k = {plen + 4, pk}, v;
    int rc = mdb_cursor_open(txn, d->dpos, &cur);
    if (rc)
        return rc;
    for (;;) { /* seek the term's first entry left, delete it (pages stay hot) */
        k = (MDB_val){plen + 4, pk};
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc || k.mv_size != plen + 4 || memcmp(k.mv_data, pk, plen) != 0)
            break;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Rewrites the base posting of key as (base - deleted) | delta, with its
 * positions, and drops the delta entries. The one place a large posting is
 * rewritten: the merge, a term at a time, never the stream. */
static int fold_term(MDB_txn *txn, const struct index_dbs *d, MDB_val key,
                     const roaring_bitmap_t *deleted)
{
    struct posting p;
    int rc = index_key_posting(txn, d, key, &p);
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
    struct id_cursor *base = xmalloc(sizeof *base); /* ranks by walking, not by popcount */
    id_cursor_start(base, p.docs);
    for (uint32_t i = 0; i < n; i++)
        tf[i] = (uint8_t)(p.delta && roaring_bitmap_contains(p.delta, ids[i])
                              ? posting_tf(&p, ids[i])
                              : id_cursor_seek(base, ids[i]) ? posting_base_tf(&p, base->rank) : 0);
    free(base);
    struct tbuf val = {0}, blobs = {0};
    fold_positions(txn, d, k, &p, ids, n, &blobs);
    bool had_delta = p.delta != NULL;
    posting_free(&p);
    roaring_bitmap_free(live);
    rc = had_delta ? drop_delta_positions(txn, d, k) : 0;
    if (!rc)
        rc = mdb_del(txn, d->dterms, &k, NULL);
    if (rc == MDB_NOTFOUND)
        rc = 0;
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
