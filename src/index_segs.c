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

/* ---- blocks ---- */

static uint16_t get_u16(const unsigned char *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

bool seg_block_open(const MDB_val *v, struct seg_block *b)
{
    const unsigned char *p = v->mv_data;
    if (v->mv_size < 2)
        return false;
    *b = (struct seg_block){p, v->mv_size, get_u16(p)};
    size_t at = 2 + 2 * (size_t)b->n;
    if (!b->n || at > b->len)
        return false;
    for (size_t i = 0; i < b->n; i++) { /* each entry where the last ended */
        uint32_t vlen;
        if (get_u16(p + 2 + 2 * i) != at || b->len - at < 6)
            return false;
        size_t klen = get_u16(p + at);
        if (b->len - at - 6 < klen)
            return false;
        memcpy(&vlen, p + at + 2 + klen, 4);
        if (b->len - at - 6 - klen < vlen)
            return false;
        at += 6 + klen + vlen;
    }
    return at == b->len;
}

void seg_block_entry(const struct seg_block *b, size_t i, MDB_val *key, MDB_val *val)
{
    const unsigned char *e = b->p + get_u16(b->p + 2 + 2 * i);
    uint32_t vlen;
    key->mv_size = get_u16(e);
    key->mv_data = (void *)(e + 2);
    memcpy(&vlen, e + 2 + key->mv_size, 4);
    val->mv_size = vlen;
    val->mv_data = (void *)(e + 6 + key->mv_size);
}

size_t seg_block_lower(const struct seg_block *b, const void *key, size_t len)
{
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        MDB_val k, v;
        seg_block_entry(b, mid, &k, &v);
        if (cmp_keys(k.mv_data, k.mv_size, key, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The block at the cursor (after op), if it is segment pre's. */
static bool block_at(MDB_cursor *cur, MDB_cursor_op op, const unsigned char *pre, MDB_val *k,
                     struct seg_block *b, bool *bad)
{
    MDB_val v;
    int rc = mdb_cursor_get(cur, k, &v, op);
    if (rc && rc != MDB_NOTFOUND)
        *bad = true; /* an error is no end: a merge must not take it for one */
    if (rc || k->mv_size < 4 || memcmp(k->mv_data, pre, 4))
        return false;
    if (!seg_block_open(&v, b))
        return !(*bad = true);
    return true;
}

bool seg_seek(MDB_cursor *cur, const unsigned char *pre, const void *key, size_t len,
              struct seg_block *b, size_t *i, bool *bad)
{
    unsigned char buf[SEG_KEY_MAX + 1]; /* a merge's `from` is a key and a 0 byte */
    *i = 0;
    if (4 + len > sizeof buf)
        return !(*bad = true);
    memcpy(buf, pre, 4);
    memcpy(buf + 4, key, len);
    MDB_val k = {4 + len, buf}, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc && rc != MDB_NOTFOUND)
        return !(*bad = true);
    if (rc == 0 && k.mv_size == 4 + len && memcmp(k.mv_data, buf, 4 + len) == 0)
        return block_at(cur, MDB_GET_CURRENT, pre, &k, b, bad); /* a block starts at key */
    /* The block before the first one after key may hold it. */
    if (block_at(cur, rc == 0 ? MDB_PREV : MDB_LAST, pre, &k, b, bad)) {
        if ((*i = seg_block_lower(b, key, len)) < b->n)
            return true;
        *i = 0;
        return block_at(cur, MDB_NEXT, pre, &k, b, bad);
    }
    k = (MDB_val){4 + len, buf};
    return !*bad && block_at(cur, MDB_SET_RANGE, pre, &k, b, bad);
}

bool seg_seek_next(MDB_cursor *cur, const unsigned char *pre, struct seg_block *b, bool *bad)
{
    MDB_val k;
    return block_at(cur, MDB_NEXT, pre, &k, b, bad);
}

int seg_find(MDB_cursor *cur, uint32_t seg, const void *key, size_t len, MDB_val *val)
{
    unsigned char pre[4];
    struct seg_block b;
    size_t i;
    bool bad = false;
    MDB_val k;
    put_be32(pre, seg);
    if (!seg_seek(cur, pre, key, len, &b, &i, &bad))
        return bad ? MDB_CORRUPTED : MDB_NOTFOUND;
    seg_block_entry(&b, i, &k, val);
    return k.mv_size == len && memcmp(k.mv_data, key, len) == 0 ? 0 : MDB_NOTFOUND;
}

int seg_writer_begin(struct seg_writer *w, MDB_txn *txn, const struct index_dbs *d, uint32_t seg,
                     unsigned flags)
{
    memset(w, 0, sizeof *w);
    w->seg = seg;
    w->flags = flags;
    return mdb_cursor_open(txn, d->segs, &w->cur);
}

/* Writes the block of the first n entries, ents[0..len), reserved in the
 * map and filled there (one copy). */
static int block_put(struct seg_writer *w, uint16_t n, size_t len)
{
    size_t head = 2 + 2 * (size_t)n;
    unsigned char sk[SEG_KEY_MAX];
    const unsigned char *first = (const unsigned char *)w->ents.data;
    MDB_val k = {seg_key(w->seg, first + 2, get_u16(first), sk), sk}, v = {head + len, NULL};
    int rc = mdb_cursor_put(w->cur, &k, &v, w->flags | MDB_RESERVE);
    if (rc)
        return rc;
    unsigned char *p = v.mv_data;
    memcpy(p, &n, 2);
    for (size_t i = 0; i < n; i++) {
        uint16_t off = (uint16_t)(head + w->offs[i]);
        memcpy(p + 2 + 2 * i, &off, 2);
    }
    memcpy(p + head, w->ents.data, len);
    return 0;
}

int seg_writer_flush(struct seg_writer *w)
{
    int rc = w->n ? block_put(w, w->n, w->ents.len) : 0;
    w->n = 0;
    tbuf_reset(&w->ents);
    return rc;
}

struct tbuf *seg_writer_open_entry(struct seg_writer *w, const void *key, size_t klen)
{
    uint16_t kl = (uint16_t)klen;
    uint32_t vl = 0;
    w->open = w->ents.len;
    tbuf_add(&w->ents, &kl, 2);
    tbuf_add(&w->ents, key, klen);
    tbuf_add(&w->ents, &vl, 4);
    return &w->ents;
}

int seg_writer_close_entry(struct seg_writer *w)
{
    uint16_t kl = get_u16((const unsigned char *)w->ents.data + w->open);
    uint32_t vl = (uint32_t)(w->ents.len - w->open - 6 - kl);
    memcpy(w->ents.data + w->open + 2 + kl, &vl, 4);
    /* Below SEG_BLOCK_BYTES, or the entry is moved to 0 below. */
    w->offs[w->n++] = (uint16_t)w->open;
    if (w->n == 1 || 2 + 2 * (size_t)w->n + w->ents.len <= SEG_BLOCK_BYTES)
        return 0;
    /* Past the size: the entries before this one are the block, and this
     * one starts the next. */
    int rc = block_put(w, (uint16_t)(w->n - 1), w->open);
    memmove(w->ents.data, w->ents.data + w->open, w->ents.len - w->open);
    w->ents.len -= w->open;
    w->offs[0] = 0;
    w->n = 1;
    return rc;
}

int seg_writer_add(struct seg_writer *w, const void *key, size_t klen, const void *val,
                   size_t vlen)
{
    tbuf_add(seg_writer_open_entry(w, key, klen), val, vlen);
    return seg_writer_close_entry(w);
}

int seg_writer_end(struct seg_writer *w, int rc)
{
    if (!rc && w->cur)
        rc = seg_writer_flush(w);
    if (w->cur)
        mdb_cursor_close(w->cur);
    tbuf_free(&w->ents);
    memset(w, 0, sizeof *w);
    return rc;
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

static bool side_before(const void *ctx, size_t a, size_t b);

int key_walk_open(struct key_walk *w, MDB_txn *txn, const struct index_dbs *d, bool base,
                  const struct seg_info *segs, size_t nsegs)
{
    w->n = 0;
    w->bad = false;
    w->s = xcalloc(nsegs + 1, sizeof *w->s);
    w->q = (struct input_heap){xmalloc((nsegs + 1) * sizeof *w->q.h), 0, side_before, w};
    w->at = xmalloc((nsegs + 1) * sizeof *w->at);
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

/* Sets the side's key and value: the base's at its cursor, a segment's
 * entry i of its block. */
static void side_entry(struct walk_side *s)
{
    if (s->live)
        seg_block_entry(&s->b, s->i, &s->k, &s->v);
}

static void side_base(struct walk_side *s, MDB_cursor_op op)
{
    s->live = mdb_cursor_get(s->cur, &s->k, &s->v, op) == 0;
}

static void side_next(struct key_walk *w, struct walk_side *s)
{
    if (!s->plen)
        return side_base(s, MDB_NEXT);
    if (++s->i == s->b.n) {
        s->i = 0;
        s->live = seg_seek_next(s->cur, s->pre, &s->b, &w->bad);
    }
    side_entry(s);
}

/* Side a before side b: by key, then by place (a key's parts go in side
 * order: the base, then the segments oldest first). */
static bool side_before(const void *ctx, size_t a, size_t b)
{
    const struct key_walk *w = ctx;
    const MDB_val *x = &w->s[a].k, *y = &w->s[b].k;
    int c = cmp_keys(x->mv_data, x->mv_size, y->mv_data, y->mv_size);
    return c < 0 || (c == 0 && a < b);
}

void key_walk_seek(struct key_walk *w, const void *key, size_t len)
{
    for (size_t i = 0; i < w->n; i++) {
        struct walk_side *s = &w->s[i];
        if (s->plen) {
            s->live = seg_seek(s->cur, s->pre, key, len, &s->b, &s->i, &w->bad);
            side_entry(s);
        } else if (!len) { /* the base from its start */
            side_base(s, MDB_FIRST);
        } else {
            s->k = (MDB_val){len, (void *)key};
            side_base(s, MDB_SET_RANGE);
        }
    }
    w->q.n = 0;
    for (size_t i = 0; i < w->n; i++)
        if (w->s[i].live)
            w->q.h[w->q.n++] = i;
    input_heap_build(&w->q);
}

bool key_walk_min(const struct key_walk *w, MDB_val *key)
{
    if (w->q.n)
        *key = w->s[w->q.h[0]].k;
    return w->q.n > 0;
}

static bool side_at(const struct walk_side *s, const MDB_val *key)
{
    return s->live && s->k.mv_size == key->mv_size &&
           memcmp(s->k.mv_data, key->mv_data, key->mv_size) == 0;
}

static int cmp_side(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* The sides at key into w->at, in side order; returns how many. They are
 * the heap's subtree from its root where the key is key (none unless key
 * is the smallest): found through the heap, w->at serving as the queue. */
static size_t sides_at(const struct key_walk *w, const MDB_val *key)
{
    size_t n = 0;
    const size_t *h = w->q.h;
    if (w->q.n && side_at(&w->s[h[0]], key))
        w->at[n++] = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t c = 2 * w->at[i] + 1; c <= 2 * w->at[i] + 2 && c < w->q.n; c++)
            if (side_at(&w->s[h[c]], key))
                w->at[n++] = c;
    for (size_t i = 0; i < n; i++)
        w->at[i] = h[w->at[i]];
    if (n > 1)
        qsort(w->at, n, sizeof *w->at, cmp_side);
    return n;
}

int key_walk_posting(const struct key_walk *w, const MDB_val *key, struct posting *out)
{
    struct delta_parts parts = {0};
    memset(out, 0, sizeof *out);
    bool ok = !w->bad;
    for (size_t j = 0, n = ok ? sides_at(w, key) : 0; j < n && ok; j++) {
        const struct walk_side *s = &w->s[w->at[j]];
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

int key_walk_parts(const struct key_walk *w, const MDB_val *key, struct delta_parts *parts,
                   size_t *bytes)
{
    parts->n = 0;
    *bytes = 0;
    bool ok = !w->bad;
    for (size_t j = 0, n = ok ? sides_at(w, key) : 0; j < n && ok; j++) {
        const struct walk_side *s = &w->s[w->at[j]];
        if (s->plen) {
            ok = delta_parts_add(parts, &s->v);
            *bytes += s->v.mv_size;
        }
    }
    return ok ? 0 : MDB_CORRUPTED;
}

void key_walk_next(struct key_walk *w, const MDB_val *key)
{
    unsigned char copy[SEG_KEY_MAX]; /* key may be a side's own, which moves */
    size_t len = key->mv_size < sizeof copy ? key->mv_size : sizeof copy;
    memcpy(copy, key->mv_data, len);
    MDB_val k = {len, copy};
    /* The root while it is at key: moved on, it sinks to its new place,
     * or leaves the heap when its side is done. */
    while (w->q.n && side_at(&w->s[w->q.h[0]], &k)) {
        struct walk_side *s = &w->s[w->q.h[0]];
        side_next(w, s);
        input_heap_top_moved(&w->q, s->live);
    }
}

void key_walk_close(struct key_walk *w)
{
    for (size_t i = 0; i < w->n; i++)
        mdb_cursor_close(w->s[i].cur);
    free(w->s);
    free(w->q.h);
    free(w->at);
    w->s = NULL;
    w->q.h = w->at = NULL;
    w->n = w->q.n = 0;
}
