/* index_posting — the stored form of a term's posting: its documents, their
 * term frequencies and their positions, in one LMDB value.
 *
 * As Lucene's .doc/.pos and Tantivy's postings, positions sit beside the
 * ids so that phrases are answered from the index, not from the text. One
 * document's positions are a blob (varint byte length, then varint gaps:
 * a blob is skipped without reading it).
 *
 *   small (at most SMALL_MAX documents: most terms, and every primary key):
 *     u8 0, varint n, n varint id gaps, n tf bytes, n blobs
 *   large:
 *     u8 1, u32 size, a portable CRoaring bitmap of the ids,
 *     ceil(n / 2) bytes of 4-bit tfs (15: see the exceptions),
 *     u32 m, m x (u32 rank, u8 tf) for the tfs of 15 and more, by rank,
 *     u32 blocks, u32 offset of each POS_BLOCK documents' first blob,
 *     n blobs (or u32 0 and nothing: a like field's grams keep no positions)
 * Nine tfs in ten are 1: four bits each keep them addressable by rank at
 * half the bytes. A small posting needs no container headers, no offsets
 * and no second key: a table's primary key, a term per row, costs a few
 * bytes a row.
 *
 *   segment (a live segment's posting, any size): u8 2, varint n, n varint
 *     id gaps, n tf bytes, n blobs
 * A segment's postings are written once per batch and read whole (never
 * seeked into by rank), so they skip the bitmap and the offsets. */
#include <stdlib.h>
#include <string.h>

#include "index_internal.h"

#define SMALL_MAX 16
enum { KIND_SMALL = 0, KIND_LARGE = 1, KIND_SEGMENT = 2 };

/* util's varint_read, inlined: most gaps and counts are one byte. */
static inline bool varint_next(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    if (*p < end && **p < 0x80) {
        *v = *(*p)++;
        return true;
    }
    return varint_read(p, end, v);
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void add_u32(struct tbuf *b, uint32_t v)
{
    tbuf_add(b, &v, 4);
}

/* ---- blobs ---- */

size_t pos_blob_len(const unsigned char *p, const unsigned char *end)
{
    const unsigned char *q = p;
    uint64_t n;
    if (!varint_next(&q, end, &n) || n > (size_t)(end - q))
        return 0;
    return (size_t)(q - p) + (size_t)n;
}

size_t pos_blob_decode(const unsigned char *p, const unsigned char *end, uint32_t **buf,
                       size_t *cap)
{
    uint64_t n, gap, at = 0;
    if (!varint_next(&p, end, &n) || n > (size_t)(end - p))
        return 0;
    end = p + n;
    if (n > *cap) { /* a gap takes a byte at least */
        *cap = n * 2;
        *buf = xrealloc(*buf, *cap * sizeof **buf);
    }
    size_t k = 0;
    while (p < end && varint_next(&p, end, &gap)) {
        at += gap;
        (*buf)[k++] = (uint32_t)at;
    }
    return k;
}

/* ---- encoding ---- */

/* The varint forms (small, segment): kind, varint n, n varint id gaps, n tf
 * bytes, the blobs. */
static void encode_varints(unsigned char kind, const uint32_t *docs, const uint8_t *tf,
                           uint32_t n, const unsigned char *blobs, size_t bloblen,
                           struct tbuf *out)
{
    uint32_t prev = 0;
    tbuf_reserve(out, 6 + (size_t)n * 3 + bloblen);
    tbuf_add(out, &kind, 1);
    tbuf_add_varint(out, n);
    for (uint32_t i = 0; i < n; i++) {
        tbuf_add_varint(out, docs[i] - prev);
        prev = docs[i];
    }
    tbuf_add(out, tf, n);
    tbuf_add(out, blobs, bloblen);
}

void segment_posting_encode(const uint32_t *docs, const uint8_t *tf, uint32_t n,
                            const unsigned char *blobs, size_t bloblen, struct tbuf *out)
{
    encode_varints(KIND_SEGMENT, docs, tf, n, blobs, bloblen, out);
}

bool segment_posting_decode(const MDB_val *v, struct segment_posting *out)
{
    const unsigned char *p = v->mv_data, *end = p + v->mv_size;
    uint64_t n;
    if (v->mv_size < 1 || *p++ != KIND_SEGMENT || !varint_next(&p, end, &n) ||
        n > (size_t)(end - p))
        return false;
    out->n = (uint32_t)n;
    out->gaps = p;
    for (uint64_t i = 0, gap; i < n; i++) /* to the tfs */
        if (!varint_next(&p, end, &gap))
            return false;
    if ((size_t)(end - p) < n)
        return false;
    out->tfs = p;
    out->pos = p + n;
    out->end = end;
    return true;
}

static void encode_tfs(const uint8_t *tf, uint32_t n, struct tbuf *out)
{
    tbuf_reserve(out, (n + 1) / 2);
    unsigned char *w = (unsigned char *)out->data + out->len;
    memset(w, 0, (n + 1) / 2);
    uint32_t exc = 0;
    for (uint32_t i = 0; i < n; i++) {
        w[i / 2] |= (unsigned char)((tf[i] < 15 ? tf[i] : 15) << (i % 2 * 4));
        exc += tf[i] >= 15;
    }
    out->len += (n + 1) / 2;
    add_u32(out, exc);
    for (uint32_t i = 0; i < n; i++)
        if (tf[i] >= 15) {
            add_u32(out, i);
            tbuf_add(out, &tf[i], 1);
        }
}

static void encode_positions(const unsigned char *blobs, size_t len, uint32_t n,
                             struct tbuf *out)
{
    uint32_t nblk = len ? (n + POS_BLOCK - 1) / POS_BLOCK : 0; /* 0: no positions */
    add_u32(out, nblk);
    const unsigned char *p = blobs, *end = blobs + len;
    for (uint32_t i = 0; i < n; i++) {
        if (i % POS_BLOCK == 0)
            add_u32(out, (uint32_t)(p - blobs));
        size_t b = pos_blob_len(p, end);
        p += b ? b : (size_t)(end - p); /* a malformed tail: later ranks read nothing */
    }
    tbuf_add(out, blobs, len);
}

void posting_encode(const uint32_t *docs, const uint8_t *tf, uint32_t n,
                    const unsigned char *blobs, size_t bloblen, struct tbuf *out)
{
    tbuf_reset(out);
    if (n <= SMALL_MAX) {
        encode_varints(KIND_SMALL, docs, tf, n, blobs, bloblen, out);
        return;
    }
    roaring_bitmap_t *r = roaring_bitmap_create_with_capacity(n);
    roaring_bitmap_add_many(r, n, docs);
    /* Runs only pay off for long postings (words in most documents); most
     * postings are short and stay arrays, so skip the scan for them. */
    if (n >= 4096)
        roaring_bitmap_run_optimize(r);
    uint32_t size = (uint32_t)roaring_bitmap_portable_size_in_bytes(r);
    tbuf_reserve(out, 5 + size + n / 2 + 16 + bloblen + n / POS_BLOCK * 4 + 8);
    tbuf_add(out, &(unsigned char){KIND_LARGE}, 1);
    add_u32(out, size);
    roaring_bitmap_portable_serialize(r, out->data + out->len);
    out->len += size;
    roaring_bitmap_free(r);
    encode_tfs(tf, n, out);
    encode_positions(blobs, bloblen, n, out);
}

/* ---- decoding ---- */

static bool decode_small(const unsigned char *p, const unsigned char *end, struct posting *out)
{
    uint64_t n, gap, id = 0;
    if (!varint_next(&p, end, &n) || n > SMALL_MAX)
        return false;
    uint32_t ids[SMALL_MAX];
    for (uint64_t i = 0; i < n; i++) {
        if (!varint_next(&p, end, &gap))
            return false;
        ids[i] = (uint32_t)(id += gap);
    }
    if ((size_t)(end - p) < n)
        return false;
    out->docs = roaring_bitmap_of_ptr((size_t)n, ids);
    out->n = (uint32_t)n;
    out->tfs = p;
    out->small = true;
    out->pos = p + n;
    out->poslen = (size_t)(end - out->pos);
    return true;
}

static bool decode_large(const unsigned char *p, const unsigned char *end, struct posting *out)
{
    if (end - p < 4 || get_u32(p) > (size_t)(end - p) - 4)
        return false;
    uint32_t size = get_u32(p);
    out->docs = roaring_bitmap_portable_deserialize_safe((const char *)p + 4, size);
    if (!out->docs)
        return false;
    p += 4 + size;
    uint64_t n = roaring_bitmap_get_cardinality(out->docs);
    out->n = (uint32_t)n;
    out->tfs = p;
    if ((size_t)(end - p) < (n + 1) / 2 + 4)
        return false;
    p += (n + 1) / 2;
    out->nexc = get_u32(p);
    out->exc = p + 4;
    if (out->nexc > n || (size_t)(end - out->exc) < (size_t)out->nexc * 5 + 4)
        return false;
    out->pos = out->exc + (size_t)out->nexc * 5;
    out->poslen = (size_t)(end - out->pos);
    uint32_t nblk = get_u32(out->pos);
    if (!nblk) { /* a term without positions */
        out->pos = NULL;
        out->poslen = 0;
        return true;
    }
    return nblk == (n + POS_BLOCK - 1) / POS_BLOCK && out->poslen >= 4 + (size_t)nblk * 4;
}

bool posting_decode(const MDB_val *v, struct posting *out)
{
    const unsigned char *p = v->mv_data, *end = p + v->mv_size;
    memset(out, 0, sizeof *out);
    bool ok = v->mv_size >= 1 && (p[0] == KIND_SMALL   ? decode_small(p + 1, end, out)
                                  : p[0] == KIND_LARGE ? decode_large(p + 1, end, out)
                                                       : false);
    if (!ok && out->docs) {
        roaring_bitmap_free(out->docs);
        out->docs = NULL;
    }
    return ok;
}

uint32_t posting_tf_exception(const struct posting *p, uint32_t rank)
{
    uint32_t lo = 0, hi = p->nexc;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (get_u32(p->exc + (size_t)mid * 5) < rank)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < p->nexc && get_u32(p->exc + (size_t)lo * 5) == rank ? p->exc[lo * 5 + 4] : 15;
}

const unsigned char *posting_blob(const struct posting *p, uint32_t r)
{
    if (r >= p->n || !p->pos)
        return NULL;
    const unsigned char *at, *end = p->pos + p->poslen;
    uint32_t skip = r;
    if (p->small)
        at = p->pos;
    else {
        uint32_t nblk = get_u32(p->pos);
        const unsigned char *data = p->pos + 4 + (size_t)nblk * 4;
        at = data + get_u32(p->pos + 4 + (size_t)(r / POS_BLOCK) * 4);
        skip = r % POS_BLOCK;
    }
    for (uint32_t i = 0; i < skip && at < end; i++) {
        size_t b = pos_blob_len(at, end);
        if (!b)
            return NULL;
        at += b;
    }
    return at < end ? at : NULL;
}

/* ---- positions at query time ---- */

int term_positions_init(struct term_positions *tp, uint8_t field, const void *term, size_t len,
                        const struct posting *post)
{
    memset(tp, 0, sizeof *tp);
    tp->post = post;
    if (len > TERM_MAX_BYTES)
        return MDB_NOTFOUND;
    tp->key[0] = field;
    memcpy(tp->key + 1, term, len);
    tp->keylen = 1 + len;
    return 0;
}

size_t term_positions_of(MDB_txn *txn, const struct index_dbs *d, struct term_positions *tp,
                         uint32_t doc, uint32_t **buf, size_t *cap)
{
    const struct posting *p = tp->post;
    (void)txn, (void)d;
    if (p->delta && roaring_bitmap_contains(p->delta, doc)) { /* a live one: its segment's */
        size_t r = (size_t)roaring_bitmap_rank(p->delta, doc) - 1;
        const unsigned char *b = p->dpos ? p->dpos[2 * r] : NULL;
        return b ? pos_blob_decode(b, p->dpos[2 * r + 1], buf, cap) : 0;
    }
    if (!p->pos || !p->docs)
        return 0;
    if (!tp->started) {
        id_cursor_start(&tp->cur, p->docs);
        tp->started = true;
    } else if (tp->cur.i < tp->cur.n && tp->cur.buf[tp->cur.i] > doc) {
        id_cursor_start(&tp->cur, p->docs); /* out of order: from the start */
        tp->at = NULL;
    }
    if (!id_cursor_seek(&tp->cur, doc) || tp->cur.buf[tp->cur.i] != doc)
        return 0;
    uint32_t r = tp->cur.rank;
    const unsigned char *end = p->pos + p->poslen;
    if (!tp->at || r < tp->at_rank || (r / POS_BLOCK != tp->at_rank / POS_BLOCK && !p->small)) {
        tp->at_rank = p->small ? 0 : r - r % POS_BLOCK; /* from its block's first blob */
        tp->at = posting_blob(p, tp->at_rank);
    }
    for (; tp->at && tp->at_rank < r; tp->at_rank++) {
        size_t b = pos_blob_len(tp->at, end);
        tp->at = b ? tp->at + b : NULL;
    }
    return tp->at ? pos_blob_decode(tp->at, end, buf, cap) : 0;
}
