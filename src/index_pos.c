/* index_pos — term positions, so that phrases are answered from the index.
 *
 * As Lucene's .pos and Tantivy's positions: beside each posting, the
 * positions of the term in each of its documents, in the posting's order.
 * One document's list is a blob (varint count, varint gaps). A base value
 * keeps an offset per POS_BLOCK documents, so the list of the document of
 * rank r costs one jump and at most POS_BLOCK - 1 skipped blobs. Documents
 * added live keep their lists under (doc, term) in dpos until the merge
 * folds them into the base value with the posting. */
#include <stdlib.h>
#include <string.h>

#include "index_internal.h"

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

size_t pos_blob_len(const unsigned char *p, const unsigned char *end)
{
    const unsigned char *q = p;
    uint64_t n, gap;
    if (!varint_read(&q, end, &n) || n > (size_t)(end - q))
        return 0;
    for (uint64_t i = 0; i < n; i++)
        if (!varint_read(&q, end, &gap))
            return 0;
    return (size_t)(q - p);
}

size_t pos_blob_decode(const unsigned char *p, const unsigned char *end, uint32_t **buf,
                       size_t *cap)
{
    uint64_t n, gap, at = 0;
    if (!varint_read(&p, end, &n) || n > (size_t)(end - p))
        return 0;
    if (n > *cap) {
        *cap = n * 2;
        *buf = xrealloc(*buf, *cap * sizeof **buf);
    }
    for (uint64_t i = 0; i < n; i++) {
        if (!varint_read(&p, end, &gap))
            return 0;
        at += gap;
        (*buf)[i] = (uint32_t)at;
    }
    return (size_t)n;
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
    const unsigned char *end = tp->base + tp->baselen;
    if (!tp->started || (tp->it.has_value && tp->it.current_value > doc)) {
        roaring_init_iterator(p->docs, &tp->it); /* first use, or out of order */
        tp->at = pos_value_blob(tp->base, tp->baselen, 0);
        tp->started = true;
    }
    while (tp->it.has_value && tp->it.current_value < doc && tp->at) {
        size_t b = pos_blob_len(tp->at, end);
        tp->at = b ? tp->at + b : NULL;
        roaring_advance_uint32_iterator(&tp->it);
    }
    if (!tp->it.has_value || tp->it.current_value != doc || !tp->at)
        return 0;
    return pos_blob_decode(tp->at, end, buf, cap);
}
