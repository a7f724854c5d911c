/* index_segs — the live segments: their list, reading a term's postings
 * across them, and walking the keys of several segments (and the base) in
 * key order. Writing a segment is index_live.c's; merging them is
 * index_merge.c's (see index.h for the layout). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "index_internal.h"

size_t seg_key(uint32_t seg, const void *key, size_t klen, unsigned char *out)
{
    put_be32(out, seg);
    memcpy(out + 4, key, klen);
    return 4 + klen;
}

/* ---- the list ---- */

size_t segs_list(MDB_txn *txn, const struct index_dbs *d, struct seg_info **segs)
{
    MDB_stat st;
    MDB_cursor *cur;
    MDB_val k, v;
    size_t n = 0;
    *segs = NULL;
    /* O(1) when nothing is live: no cursor, no allocation. */
    if (mdb_stat(txn, d->seglist, &st) || !st.ms_entries || mdb_cursor_open(txn, d->seglist, &cur))
        return 0;
    *segs = xmalloc(st.ms_entries * sizeof **segs);
    for (int op = MDB_FIRST; n < st.ms_entries && mdb_cursor_get(cur, &k, &v, op) == 0;
         op = MDB_NEXT) {
        uint32_t id = k.mv_size == 4 ? get_be32(k.mv_data) : 0;
        if (!id || v.mv_size < 12) /* the merge record */
            continue;
        struct seg_info *s = &(*segs)[n++];
        s->id = id;
        memcpy(&s->level, v.mv_data, 4);
        memcpy(&s->entries, (const char *)v.mv_data + 4, 8);
    }
    mdb_cursor_close(cur);
    if (!n) {
        free(*segs);
        *segs = NULL;
    }
    return n;
}

int segs_put_info(MDB_txn *txn, const struct index_dbs *d, const struct seg_info *s)
{
    unsigned char kb[4], vb[12];
    put_be32(kb, s->id);
    memcpy(vb, &s->level, 4);
    memcpy(vb + 4, &s->entries, 8);
    MDB_val k = {4, kb}, v = {12, vb};
    return mdb_put(txn, d->seglist, &k, &v, 0);
}

size_t index_segments(MDB_txn *txn, const struct index_dbs *d)
{
    struct seg_info *segs;
    size_t n = segs_list(txn, d, &segs);
    free(segs);
    return n;
}

/* ---- a term's segment postings ---- */

static void parts_grow(struct delta_parts *a, size_t more)
{
    if (a->n + more <= a->cap)
        return;
    a->cap = (a->n + more) * 2;
    a->ids = xrealloc(a->ids, a->cap * sizeof *a->ids);
    a->tf = xrealloc(a->tf, a->cap);
    a->pos = xrealloc(a->pos, a->cap * 2 * sizeof *a->pos);
}

bool delta_parts_add(struct delta_parts *a, const MDB_val *v)
{
    struct segment_posting sp;
    if (!segment_posting_decode(v, &sp))
        return false;
    parts_grow(a, sp.n);
    const unsigned char *g = sp.gaps, *b = sp.pos;
    uint32_t id = 0;
    for (uint32_t r = 0; r < sp.n; r++, a->n++) {
        uint64_t gap = 0;
        varint_read(&g, sp.tfs, &gap);
        a->ids[a->n] = id += (uint32_t)gap;
        a->tf[a->n] = sp.tfs[r];
        size_t len = b ? pos_blob_len(b, sp.end) : 0;
        a->pos[2 * a->n] = len ? b : NULL;
        a->pos[2 * a->n + 1] = len ? b + len : NULL;
        b = len ? b + len : NULL;
    }
    return true;
}

void delta_parts_into(struct delta_parts *a, struct posting *out)
{
    if (!a->n)
        return;
    out->delta = roaring_bitmap_of_ptr(a->n, a->ids);
    out->dtf = a->tf;
    out->dpos = a->pos;
    free(a->ids);
    memset(a, 0, sizeof *a);
}

void delta_parts_free(struct delta_parts *a)
{
    free(a->ids);
    free(a->tf);
    free(a->pos);
    memset(a, 0, sizeof *a);
}

/* ---- walking several sides in key order ---- */

int key_walk_open(struct key_walk *w, MDB_txn *txn, const struct index_dbs *d, bool base,
                  const struct seg_info *segs, size_t nsegs)
{
    w->n = 0;
    w->s = xcalloc(nsegs + 1, sizeof *w->s);
    int rc = 0;
    if (base) {
        rc = mdb_cursor_open(txn, d->terms, &w->s[0].cur);
        w->n += !rc;
    }
    for (size_t i = 0; i < nsegs && !rc; i++) {
        struct walk_side *s = &w->s[w->n];
        put_be32(s->pre, segs[i].id);
        s->plen = 4;
        rc = mdb_cursor_open(txn, d->segs, &s->cur);
        w->n += !rc;
    }
    return rc;
}

static void side_get(struct walk_side *s, MDB_cursor_op op)
{
    s->live = mdb_cursor_get(s->cur, &s->k, &s->v, op) == 0 && s->k.mv_size > s->plen &&
              memcmp(s->k.mv_data, s->pre, s->plen) == 0;
    if (s->live) { /* the term key: the segment's prefix off */
        s->k.mv_data = (char *)s->k.mv_data + s->plen;
        s->k.mv_size -= s->plen;
    }
}

void key_walk_seek(struct key_walk *w, const void *key, size_t len)
{
    unsigned char buf[SEG_KEY_MAX];
    for (size_t i = 0; i < w->n; i++) {
        struct walk_side *s = &w->s[i];
        memcpy(buf, s->pre, s->plen);
        memcpy(buf + s->plen, key, len);
        s->k = (MDB_val){s->plen + len, buf};
        if (!s->k.mv_size) /* the base from its start */
            side_get(s, MDB_FIRST);
        else
            side_get(s, MDB_SET_RANGE);
    }
}

bool key_walk_min(const struct key_walk *w, MDB_val *key)
{
    const MDB_val *m = NULL;
    for (size_t i = 0; i < w->n; i++)
        if (w->s[i].live &&
            (!m || cmp_keys(w->s[i].k.mv_data, w->s[i].k.mv_size, m->mv_data, m->mv_size) < 0))
            m = &w->s[i].k;
    if (m)
        *key = *m;
    return m != NULL;
}

static bool side_at(const struct walk_side *s, const MDB_val *key)
{
    return s->live && s->k.mv_size == key->mv_size &&
           memcmp(s->k.mv_data, key->mv_data, key->mv_size) == 0;
}

int key_walk_posting(const struct key_walk *w, const MDB_val *key, struct posting *out)
{
    struct delta_parts parts = {0};
    memset(out, 0, sizeof *out);
    bool ok = true;
    for (size_t i = 0; i < w->n && ok; i++) {
        const struct walk_side *s = &w->s[i];
        if (!side_at(s, key))
            continue;
        ok = s->plen ? delta_parts_add(&parts, &s->v) : posting_decode(&s->v, out);
    }
    if (!ok) {
        delta_parts_free(&parts);
        posting_free(out);
        return MDB_CORRUPTED;
    }
    delta_parts_into(&parts, out);
    if (!out->docs)
        out->docs = roaring_bitmap_create();
    return 0;
}

void key_walk_next(struct key_walk *w, const MDB_val *key)
{
    unsigned char copy[SEG_KEY_MAX]; /* key may be a side's own, which moves */
    size_t len = key->mv_size < sizeof copy ? key->mv_size : sizeof copy;
    memcpy(copy, key->mv_data, len);
    MDB_val k = {len, copy};
    for (size_t i = 0; i < w->n; i++)
        if (side_at(&w->s[i], &k))
            side_get(&w->s[i], MDB_NEXT);
}

void key_walk_close(struct key_walk *w)
{
    for (size_t i = 0; i < w->n; i++)
        mdb_cursor_close(w->s[i].cur);
    free(w->s);
    w->s = NULL;
    w->n = 0;
}
