/* index_merge — the background merge of live segments (see index.h).
 *
 * As Lucene's TieredMergePolicy, segments of about one size are merged
 * together, INDEX_MERGE_FANIN at a time, so a stream of small batches
 * leaves a logarithmic number of segments and each entry is rewritten a
 * logarithmic number of times. Folding into the base rewrites whole base
 * postings (a common word's holds most documents), so it waits for the
 * stream to rest, or for the segments to grow large.
 *
 * A merge goes a term at a time in key order, in as many transactions as
 * it needs: each term's merged posting replaces its parts in the same
 * transaction, so a reader sees every term either merged or not, never
 * twice. Where it stands is stored in seglist under id 0 (u32 lo, u32 hi,
 * u32 level, u8 to_base, u64 written, then the next key), so it goes on
 * after a restart from the same place; redoing a term is harmless. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "index_internal.h"

struct merge {
    uint32_t lo, hi, level; /* segments lo..hi (ids) into lo, or into the base */
    bool to_base;
    uint64_t written;       /* entries the merged segment holds so far */
    unsigned char from[1 + TERM_MAX_BYTES + 1];
    size_t fromlen;         /* the next term key to merge (0: the first) */
};

#define MERGE_HEAD 21

static const unsigned char RECORD_KEY[4] = {0, 0, 0, 0};

static bool merge_load(MDB_txn *txn, const struct index_dbs *d, struct merge *m)
{
    MDB_val k = {4, (void *)RECORD_KEY}, v;
    if (mdb_get(txn, d->seglist, &k, &v) || v.mv_size < MERGE_HEAD ||
        v.mv_size - MERGE_HEAD > sizeof m->from)
        return false;
    const unsigned char *p = v.mv_data;
    memcpy(&m->lo, p, 4);
    memcpy(&m->hi, p + 4, 4);
    memcpy(&m->level, p + 8, 4);
    m->to_base = p[12];
    memcpy(&m->written, p + 13, 8);
    m->fromlen = v.mv_size - MERGE_HEAD;
    memcpy(m->from, p + MERGE_HEAD, m->fromlen);
    return true;
}

static int merge_save(MDB_txn *txn, const struct index_dbs *d, const struct merge *m)
{
    unsigned char b[MERGE_HEAD + sizeof m->from];
    memcpy(b, &m->lo, 4);
    memcpy(b + 4, &m->hi, 4);
    memcpy(b + 8, &m->level, 4);
    b[12] = m->to_base;
    memcpy(b + 13, &m->written, 8);
    memcpy(b + MERGE_HEAD, m->from, m->fromlen);
    MDB_val k = {4, (void *)RECORD_KEY}, v = {MERGE_HEAD + m->fromlen, b};
    return mdb_put(txn, d->seglist, &k, &v, 0);
}

/* The merge due now, if any. */
static bool merge_choose(const struct seg_info *segs, size_t n, enum index_merge_mode mode,
                         struct merge *m)
{
    uint64_t entries = 0;
    for (size_t i = 0; i < n; i++)
        entries += segs[i].entries;
    memset(m, 0, sizeof *m);
    uint64_t base_at = mode == INDEX_MERGE_BEHIND ? INDEX_MERGE_BASE_ENTRIES_BEHIND
                                                  : INDEX_MERGE_BASE_ENTRIES;
    if (n && (mode == INDEX_MERGE_ALL || entries >= base_at)) {
        *m = (struct merge){.lo = segs[0].id, .hi = segs[n - 1].id, .to_base = true};
        return true;
    }
    /* The oldest fan-in segments of one level in a row. */
    size_t fanin = mode == INDEX_MERGE_BEHIND ? INDEX_MERGE_FANIN_BEHIND : INDEX_MERGE_FANIN;
    for (size_t i = 0, run = 1; i + 1 < n; i++) {
        run = segs[i + 1].level == segs[i].level ? run + 1 : 1;
        if (run == fanin) {
            *m = (struct merge){.lo = segs[i + 2 - run].id, .hi = segs[i + 1].id,
                                .level = segs[i].level + 1};
            return true;
        }
    }
    return false;
}

/* The positions blob of rank r's successor, walking: b is rank r's. */
static const unsigned char *next_blob(const unsigned char *b, const unsigned char *end)
{
    size_t len = b ? pos_blob_len(b, end) : 0;
    return len ? b + len : NULL;
}

/* What a term's merged posting is made of, copied out of the map before
 * anything is written. */
struct merged {
    uint32_t *ids;
    uint8_t *tf;
    struct tbuf blobs, val;
    uint32_t n, cap;
    bool positions;
    struct delta_parts parts; /* a merge of segments: their parts, reused */
};

static void merged_add(struct merged *o, uint32_t id, uint8_t tf, const unsigned char *b,
                       const unsigned char *end)
{
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 1024;
        o->ids = xrealloc(o->ids, o->cap * sizeof *o->ids);
        o->tf = xrealloc(o->tf, o->cap);
    }
    o->ids[o->n] = id;
    o->tf[o->n++] = tf;
    size_t len = b ? pos_blob_len(b, end) : 0;
    o->positions |= len > 0;
    if (len)
        tbuf_add(&o->blobs, b, len);
    else
        tbuf_add(&o->blobs, "", 1); /* an empty list keeps the ranks in step */
}

/* (base | parts) - deleted, in id order, into o: base is the decoded base
 * posting (NULL: none), the parts the segments' entries as key_walk_parts
 * gathers them. Their ids must ascend, as they do from side to side (a
 * segment's are all above the ones before it): false when they do not,
 * the segments being then damaged. Straight from the parts, with no bitmap
 * of them nor an array of that: those were a third of a merge. */
static bool merge_posting(const struct posting *base, const struct delta_parts *a,
                          const roaring_bitmap_t *deleted, struct merged *o)
{
    for (size_t i = 1; i < a->n; i++)
        if (a->ids[i] <= a->ids[i - 1])
            return false;
    o->n = 0;
    o->positions = false;
    tbuf_reset(&o->blobs);
    roaring_uint32_iterator_t it = {0};
    const unsigned char *b = NULL, *bend = NULL;
    if (base) {
        roaring_init_iterator(base->docs, &it);
        b = posting_blob(base, 0);
        bend = base->pos ? base->pos + base->poslen : NULL;
    }
    for (uint32_t r = 0, j = 0; it.has_value || j < a->n;) {
        bool from_base = it.has_value && (j == a->n || it.current_value < a->ids[j]);
        uint32_t id = from_base ? it.current_value : a->ids[j];
        bool keep = !roaring_bitmap_contains(deleted, id);
        if (from_base) {
            if (keep)
                merged_add(o, id, (uint8_t)posting_base_tf(base, r), b, bend);
            b = next_blob(b, bend), r++;
            roaring_advance_uint32_iterator(&it);
        } else {
            if (keep)
                merged_add(o, id, a->tf[j], a->pos[2 * j], a->pos[2 * j + 1]);
            j++;
        }
    }
    if (!o->positions) /* a term without positions (a like field's): none stored */
        tbuf_reset(&o->blobs);
    return true;
}

static int del_if_there(MDB_txn *txn, MDB_dbi dbi, MDB_val *k)
{
    int rc = mdb_del(txn, dbi, k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* A chunk of merged terms, read before any of them is written (so that no
 * write moves a page under the walk's cursors): u16 key length, key, u32
 * entries, u32 value length, value (length 0: the term has no live
 * document left). */
struct chunk {
    struct tbuf buf;
    size_t terms;
    unsigned char last[1 + TERM_MAX_BYTES]; /* the chunk's last key */
    size_t lastlen;
    size_t read; /* bytes of the stored postings read for it */
};

#define CHUNK_BYTES ((size_t)4 << 20)
/* What one call writes, and reads, at most, its time left or not: a
 * transaction holds its dirty pages in the heap until the commit, and the
 * pages it read stay mapped until the caller releases them (a 50 ms step
 * at rest, with no bound but the time, peaked 20-30 MB above the
 * catch-up; bounded by what it wrote only, a faster merge that dropped
 * many deleted entries read more, and Debezium's fold at rest peaked at
 * 265-281 MB). */
#define STEP_BYTES ((size_t)8 << 20)

/* The merged posting of key into o: the segments' parts from the walk, and
 * the base's when folding into it. */
static int merge_key(MDB_txn *txn, const struct index_dbs *d, const struct merge *m,
                     const struct key_walk *w, const MDB_val *key,
                     const roaring_bitmap_t *deleted, struct merged *o, size_t *read)
{
    struct posting base = {0};
    MDB_val v, bk = *key;
    bool has_base = false;
    int rc = key_walk_parts(w, key, &o->parts, read);
    if (!rc && m->to_base && mdb_get(txn, d->terms, &bk, &v) == 0) {
        rc = (has_base = posting_decode(&v, &base)) ? 0 : MDB_CORRUPTED;
        *read += v.mv_size;
    }
    if (!rc && !merge_posting(has_base ? &base : NULL, &o->parts, deleted, o))
        rc = MDB_CORRUPTED;
    posting_free(&base);
    return rc;
}

/* Reads the merged posting of key into the chunk. */
static int chunk_add(MDB_txn *txn, const struct index_dbs *d, const struct merge *m,
                     const struct key_walk *w, const MDB_val *key,
                     const roaring_bitmap_t *deleted, struct merged *o, struct chunk *ch)
{
    size_t read = 0;
    int rc = merge_key(txn, d, m, w, key, deleted, o, &read);
    ch->read += read;
    if (rc)
        return rc;
    tbuf_reset(&o->val);
    if (o->n && m->to_base)
        posting_encode(o->ids, o->tf, o->n, (const unsigned char *)o->blobs.data, o->blobs.len,
                       &o->val);
    else if (o->n)
        segment_posting_encode(o->ids, o->tf, o->n, (const unsigned char *)o->blobs.data,
                               o->blobs.len, &o->val);
    uint16_t klen = (uint16_t)key->mv_size;
    uint32_t vlen = (uint32_t)o->val.len;
    tbuf_add(&ch->buf, &klen, 2);
    tbuf_add(&ch->buf, key->mv_data, klen);
    tbuf_add(&ch->buf, &o->n, 4);
    tbuf_add(&ch->buf, &vlen, 4);
    tbuf_add(&ch->buf, o->val.data, vlen);
    memcpy(ch->last, key->mv_data, klen);
    ch->lastlen = klen;
    ch->terms++;
    return 0;
}

/* Takes segment seg's entries from the term key from to the chunk's last
 * out of it: the blocks that hold only such entries are deleted; a block
 * that also holds others (the range's ends rarely fall between blocks) is
 * rewritten with those, its entries before the range under its own key and
 * those after under the first of them, so that a block still starts each
 * run of the segment's keys and the merged blocks fit between. */
static int drop_range(MDB_txn *txn, const struct index_dbs *d, uint32_t seg,
                      const unsigned char *from, size_t fromlen, const struct chunk *ch)
{
    unsigned char pre[4];
    struct seg_block b;
    struct seg_writer keep;
    struct tbuf gone = {0}, kept = {0}; /* block keys; entries to keep (u8 after, key, value) */
    size_t i;
    bool bad = false;
    put_be32(pre, seg);
    int rc = seg_writer_begin(&keep, txn, d, seg, 0);
    for (bool more = !rc && seg_seek(keep.cur, pre, from, fromlen, &b, &i, &bad); more;) {
        MDB_val bk, k, v;
        if (mdb_cursor_get(keep.cur, &bk, &v, MDB_GET_CURRENT) != 0)
            break;
        size_t j = i;
        for (; j < b.n; j++) {
            seg_block_entry(&b, j, &k, &v);
            if (cmp_keys(k.mv_data, k.mv_size, ch->last, ch->lastlen) > 0)
                break;
        }
        if (j == i) /* the block starts after the range */
            break;
        uint16_t kl = (uint16_t)bk.mv_size;
        tbuf_add(&gone, &kl, 2);
        tbuf_add(&gone, bk.mv_data, kl);
        for (size_t e = 0; e < b.n; e++) {
            if (e == i)
                e = j; /* past the range */
            if (e == b.n)
                break;
            seg_block_entry(&b, e, &k, &v);
            uint8_t after = e >= j;
            uint16_t klen = (uint16_t)k.mv_size;
            uint32_t vlen = (uint32_t)v.mv_size;
            tbuf_add(&kept, &after, 1);
            tbuf_add(&kept, &klen, 2);
            tbuf_add(&kept, k.mv_data, klen);
            tbuf_add(&kept, &vlen, 4);
            tbuf_add(&kept, v.mv_data, vlen);
        }
        i = 0;
        more = j == b.n && seg_seek_next(keep.cur, pre, &b, &bad);
    }
    if (!rc && bad)
        rc = MDB_CORRUPTED;
    for (size_t at = 0; !rc && at < gone.len;) { /* the blocks go ... */
        uint16_t kl;
        memcpy(&kl, gone.data + at, 2);
        MDB_val k = {kl, gone.data + at + 2};
        rc = mdb_del(txn, d->segs, &k, NULL);
        at += 2 + kl;
    }
    /* ... and what they held outside the range comes back. */
    for (size_t at = 0, after = 0; !rc && at < kept.len;) {
        const unsigned char *p = (const unsigned char *)kept.data + at;
        uint16_t klen;
        uint32_t vlen;
        memcpy(&klen, p + 1, 2);
        memcpy(&vlen, p + 3 + klen, 4);
        if (p[0] && !after++)
            rc = seg_writer_flush(&keep);
        if (!rc)
            rc = seg_writer_add(&keep, p + 3, klen, p + 7 + klen, vlen);
        at += 7 + klen + vlen;
    }
    tbuf_free(&gone);
    tbuf_free(&kept);
    return seg_writer_end(&keep, rc);
}

/* Writes a chunk: every part of its terms goes, and each merged posting
 * takes their place (in the base, or under segment lo). */
static int chunk_write(MDB_txn *txn, const struct index_dbs *d, struct merge *m,
                       const struct seg_info *run, size_t nrun, const struct chunk *ch)
{
    int rc = 0;
    for (size_t i = 0; i < nrun && !rc; i++)
        rc = drop_range(txn, d, run[i].id, m->from, m->fromlen, ch);
    const unsigned char *p = (const unsigned char *)ch->buf.data, *end = p + ch->buf.len;
    struct seg_writer out = {0}; /* the merged segment's blocks */
    if (!rc && !m->to_base)
        rc = seg_writer_begin(&out, txn, d, m->lo, 0);
    while (!rc && p < end) {
        uint16_t klen;
        uint32_t vlen, entries;
        memcpy(&klen, p, 2);
        const unsigned char *key = p + 2;
        memcpy(&entries, key + klen, 4);
        memcpy(&vlen, key + klen + 4, 4);
        MDB_val v = {vlen, (void *)(key + klen + 8)}, k = {klen, (void *)key};
        if (vlen && !m->to_base)
            rc = seg_writer_add(&out, key, klen, v.mv_data, vlen);
        else if (vlen)
            rc = mdb_put(txn, d->terms, &k, &v, 0);
        else if (m->to_base)
            rc = del_if_there(txn, d->terms, &k);
        m->written += vlen ? entries : 0;
        p = key + klen + 8 + vlen;
    }
    return out.cur ? seg_writer_end(&out, rc) : rc;
}

/* Folds the live exists marks into the base's sets. */
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

/* The merge is through: its segments go from the list (or become the
 * merged one) and the record goes. */
static int merge_finish(MDB_txn *txn, const struct index_dbs *d, const struct merge *m,
                        const struct seg_info *segs, size_t n, const roaring_bitmap_t *deleted)
{
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (segs[i].id < m->lo || segs[i].id > m->hi || (!m->to_base && segs[i].id == m->lo))
            continue;
        unsigned char kb[4];
        put_be32(kb, segs[i].id);
        MDB_val k = {4, kb};
        rc = del_if_there(txn, d->seglist, &k);
    }
    if (!rc && !m->to_base) {
        struct seg_info merged = {m->lo, m->level, m->written};
        rc = m->written ? segs_put_info(txn, d, &merged) : 0;
        if (!rc && !m->written) {
            unsigned char kb[4];
            put_be32(kb, m->lo);
            MDB_val k = {4, kb};
            rc = del_if_there(txn, d->seglist, &k);
        }
    }
    if (!rc && m->to_base)
        rc = fold_exists(txn, d, deleted);
    MDB_val k = {4, (void *)RECORD_KEY};
    return rc ? rc : del_if_there(txn, d->seglist, &k);
}

/* Merges terms of m, a chunk at a time, until the clock passes until; *done
 * at the end. */
static int merge_run(MDB_txn *txn, const struct index_dbs *d, struct merge *m,
                     const struct seg_info *segs, size_t n, double until,
                     const roaring_bitmap_t *deleted, bool *done)
{
    size_t first = 0, count = 0;
    while (first < n && segs[first].id < m->lo)
        first++;
    while (first + count < n && segs[first + count].id <= m->hi)
        count++;
    struct key_walk w;
    struct merged o = {0};
    struct chunk ch = {{0}, 0, {0}, 0, 0};
    int rc = key_walk_open(&w, txn, d, false, segs + first, count);
    MDB_val key;
    size_t wrote = 0;
    *done = false;
    for (bool one = false; !rc && !*done && (!one || (mono_now() < until && wrote < STEP_BYTES));
         one = true) {
        key_walk_seek(&w, m->from, m->fromlen);
        tbuf_reset(&ch.buf);
        ch.terms = 0;
        ch.read = 0;
        /* Read: a chunk's terms, while time and room last. */
        while (!rc && ch.buf.len < CHUNK_BYTES && ch.read < CHUNK_BYTES &&
               (!ch.terms || mono_now() < until)) {
            if (!key_walk_min(&w, &key)) {
                *done = !w.bad; /* sides cut short are no end */
                rc = w.bad ? MDB_CORRUPTED : 0;
                break;
            }
            rc = chunk_add(txn, d, m, &w, &key, deleted, &o, &ch);
            key_walk_next(&w, &key);
        }
        /* Write: the chunk's terms, then on from after its last. */
        if (!rc && ch.terms)
            rc = chunk_write(txn, d, m, segs + first, count, &ch);
        wrote += ch.buf.len > ch.read ? ch.buf.len : ch.read;
        if (!rc && ch.terms) {
            m->fromlen = ch.lastlen;
            memcpy(m->from, ch.last, ch.lastlen);
            m->from[m->fromlen++] = 0; /* the next key after it */
        }
    }
    key_walk_close(&w);
    free(o.ids);
    free(o.tf);
    delta_parts_free(&o.parts);
    tbuf_free(&o.blobs);
    tbuf_free(&o.val);
    tbuf_free(&ch.buf);
    return rc;
}

int index_fold(MDB_txn *txn, const struct index_dbs *d, enum index_merge_mode mode, double until,
               bool *ran, bool *left)
{
    struct seg_info *segs;
    size_t n = segs_list(txn, d, &segs);
    struct merge m;
    roaring_bitmap_t *deleted;
    int rc = index_deleted(txn, d, &deleted);
    bool done = false;
    if (rc) {
        free(segs);
        *ran = *left = false;
        return rc;
    }
    *ran = merge_load(txn, d, &m) || merge_choose(segs, n, mode, &m);
    if (*ran) {
        rc = merge_run(txn, d, &m, segs, n, until, deleted, &done);
        if (!rc)
            rc = done ? merge_finish(txn, d, &m, segs, n, deleted) : merge_save(txn, d, &m);
    } else if (mode == INDEX_MERGE_ALL) {
        MDB_stat st; /* marks of documents without terms, with no segment */
        if (mdb_stat(txn, d->dexists, &st) == 0 && st.ms_entries)
            rc = fold_exists(txn, d, deleted), *ran = true, done = true;
    }
    free(segs);
    roaring_bitmap_free(deleted);
    *left = false;
    if (!rc && *ran && !done)
        *left = true;
    else if (!rc && *ran) { /* another merge due now? */
        struct merge next;
        n = segs_list(txn, d, &segs);
        *left = merge_choose(segs, n, mode, &next);
        free(segs);
    }
    return rc;
}
