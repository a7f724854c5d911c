/* index_pos — term positions, so that phrases are answered from the index.
 *
 * As Lucene's .pos and Tantivy's positions: beside each posting, the
 * positions of the term in each of its documents, in the posting's order.
 * One document's list is a blob (varint byte length, then the positions as
 * varint gaps: a blob is skipped without reading it). A base value
 * keeps an offset per POS_BLOCK documents, so the list of the document of
 * rank r costs one jump and at most POS_BLOCK - 1 skipped blobs. Documents
 * added live keep their lists under (doc, term) in dpos until the merge
 * folds them into the base value with the posting. */
#include <stdlib.h>
#include <string.h>

#include "index_internal.h"

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

void pos_value_encode(const unsigned char *blobs, size_t len, uint32_t n, struct tbuf *out)
{
    uint32_t nblk = (n + POS_BLOCK - 1) / POS_BLOCK;
    tbuf_reset(out);
    tbuf_reserve(out, 8 + (size_t)nblk * 4 + len);
    tbuf_add(out, &n, 4);
    tbuf_add(out, &nblk, 4);
    const unsigned char *p = blobs, *end = blobs + len;
    for (uint32_t i = 0; i < n; i++) {
        if (i % POS_BLOCK == 0) {
            uint32_t off = (uint32_t)(p - blobs);
            tbuf_add(out, &off, 4);
        }
        size_t b = pos_blob_len(p, end);
        p += b ? b : (size_t)(end - p); /* a malformed tail: later ranks read nothing */
    }
    tbuf_add(out, blobs, len);
}

const unsigned char *pos_value_blob(const unsigned char *v, size_t vlen, uint32_t r)
{
    if (vlen < 8)
        return NULL;
    uint32_t n = get_u32(v), nblk = get_u32(v + 4);
    size_t data = 8 + (size_t)nblk * 4;
    if (r >= n || data > vlen || (size_t)nblk * POS_BLOCK < n)
        return NULL;
    const unsigned char *p = v + data + get_u32(v + 8 + (size_t)(r / POS_BLOCK) * 4),
                        *end = v + vlen;
    for (uint32_t i = 0; i < r % POS_BLOCK && p < end; i++) {
        size_t b = pos_blob_len(p, end);
        if (!b)
            return NULL;
        p += b;
    }
    return p < end ? p : NULL;
}

size_t dpos_key(uint32_t doc, const void *key, size_t klen, unsigned char *out)
{
    out[0] = (unsigned char)(doc >> 24);
    out[1] = (unsigned char)(doc >> 16);
    out[2] = (unsigned char)(doc >> 8);
    out[3] = (unsigned char)doc;
    memcpy(out + 4, key, klen);
    return 4 + klen;
}

int index_term_positions(MDB_txn *txn, const struct index_dbs *d, uint8_t field,
                         const void *term, size_t len, const struct posting *post,
                         struct term_positions *tp)
{
    memset(tp, 0, sizeof *tp);
    tp->post = post;
    if (len > TERM_MAX_BYTES)
        return MDB_NOTFOUND;
    tp->key[4] = field;
    memcpy(tp->key + 5, term, len);
    tp->keylen = 5 + len;
    MDB_val k = {1 + len, tp->key + 4}, v;
    int rc = mdb_get(txn, d->pos, &k, &v);
    if (rc == 0) {
        tp->base = v.mv_data;
        tp->baselen = v.mv_size;
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

size_t term_positions_of(MDB_txn *txn, const struct index_dbs *d, struct term_positions *tp,
                         uint32_t doc, uint32_t **buf, size_t *cap)
{
    const struct posting *p = tp->post;
    if (p->delta && roaring_bitmap_contains(p->delta, doc)) {
        dpos_key(doc, tp->key + 4, tp->keylen - 4, tp->key);
        MDB_val k = {tp->keylen, tp->key}, v;
        if (mdb_get(txn, d->dpos, &k, &v))
            return 0;
        const unsigned char *b = v.mv_data;
        return pos_blob_decode(b, b + v.mv_size, buf, cap);
    }
    if (!tp->base || !p->docs)
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
    const unsigned char *end = tp->base + tp->baselen;
    if (!tp->at || r < tp->at_rank || r / POS_BLOCK != tp->at_rank / POS_BLOCK) {
        tp->at = pos_value_blob(tp->base, tp->baselen, r - r % POS_BLOCK); /* its block */
        tp->at_rank = r - r % POS_BLOCK;
    }
    for (; tp->at && tp->at_rank < r; tp->at_rank++) {
        size_t b = pos_blob_len(tp->at, end);
        tp->at = b ? tp->at + b : NULL;
    }
    return tp->at ? pos_blob_decode(tp->at, end, buf, cap) : 0;
}
