/* index_norms — BM25's document lengths as a dense column per field.
 *
 * Scoring a common term visits every matching document; a B-tree lookup
 * per document for its length cost more than the rest of the score. As in
 * Lucene's norms, the lengths of a field sit in one array by document id,
 * cut into blocks of NORMS_BLOCK ids (one LMDB value each, read through the
 * map): a reader walking ids in order does one lookup per block. Lengths
 * are exact u16 counts (saturating at 65535 tokens, past which BM25 gives
 * next to nothing anyway); a block of 256 is 512 bytes, seven to a leaf
 * page (a value over ~2 KiB would take whole overflow pages). Keys are
 * (block, field), so the build writes them in key order, pages full. */
#include <stdlib.h>
#include <string.h>

#include "index_internal.h"

#define BLOCK_BYTES (NORMS_BLOCK * sizeof(uint16_t))

static uint32_t block_key(uint8_t field, uint32_t doc)
{
    return doc / NORMS_BLOCK << 8 | field; /* block-major: the build appends */
}

uint32_t norms_read(MDB_txn *txn, const struct index_dbs *d, struct norms_reader *r,
                    uint8_t field, uint32_t doc)
{
    uint32_t key = block_key(field, doc);
    uint16_t len = 0;
    if (key != r->block) {
        MDB_val k = {sizeof key, &key}, v;
        r->block = key;
        r->lens = mdb_get(txn, d->norms, &k, &v) == 0 && v.mv_size == BLOCK_BYTES
                      ? v.mv_data : NULL;
    }
    if (r->lens)
        memcpy(&len, r->lens + (doc % NORMS_BLOCK) * sizeof len, sizeof len);
    return len;
}

uint32_t index_field_len(MDB_txn *txn, const struct index_dbs *d, uint32_t doc, uint8_t field)
{
    struct norms_reader r;
    norms_reader_init(&r);
    return norms_read(txn, d, &r, field, doc);
}

/* ---- a write batch's blocks ----
 * A batch of new documents has consecutive ids: read, changed and written
 * back for each document, one block cost two B-tree operations and a copy
 * per document and field. The batch keeps its blocks and writes each once. */

struct norms_block {
    uint32_t key;
    bool used;
    uint16_t lens[NORMS_BLOCK];
};

struct norms_cache {
    struct norms_block *b;
    size_t n, cap;
    uint32_t *slots; /* open addressing over b (index + 1) */
    size_t nslots;
};

struct norms_cache *norms_cache_new(void)
{
    return xcalloc(1, sizeof(struct norms_cache));
}

void norms_cache_reset(struct norms_cache *c)
{
    c->n = 0;
    if (c->slots)
        memset(c->slots, 0, c->nslots * sizeof *c->slots);
}

void norms_cache_free(struct norms_cache *c)
{
    if (!c)
        return;
    free(c->b);
    free(c->slots);
    free(c);
}

static size_t slot_of(uint32_t key, size_t nslots)
{
    return (key * 2654435761u) & (nslots - 1);
}

static void cache_grow(struct norms_cache *c)
{
    size_t n = c->nslots ? c->nslots * 2 : 64;
    free(c->slots);
    c->slots = xcalloc(n, sizeof *c->slots);
    c->nslots = n;
    for (size_t i = 0; i < c->n; i++) {
        size_t h = slot_of(c->b[i].key, n);
        while (c->slots[h])
            h = (h + 1) & (n - 1);
        c->slots[h] = (uint32_t)i + 1;
    }
}

/* The slot of key's block in the batch's copies: its own or the free one
 * where it goes. */
static size_t cache_slot(const struct norms_cache *c, uint32_t key)
{
    size_t h = slot_of(key, c->nslots);
    for (uint32_t s; (s = c->slots[h]); h = (h + 1) & (c->nslots - 1))
        if (c->b[s - 1].key == key)
            break;
    return h;
}

/* The batch's copy of the block of key, read from the index when new. */
static struct norms_block *cache_block(struct norms_cache *c, MDB_txn *txn,
                                       const struct index_dbs *d, uint32_t key, int *rc)
{
    if ((c->n + 1) * 2 > c->nslots)
        cache_grow(c);
    size_t h = cache_slot(c, key);
    if (c->slots[h])
        return &c->b[c->slots[h] - 1];
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->b = xrealloc(c->b, c->cap * sizeof *c->b);
    }
    struct norms_block *b = &c->b[c->n];
    MDB_val k = {sizeof key, &key}, v;
    *rc = mdb_get(txn, d->norms, &k, &v);
    if (*rc == 0 && v.mv_size == BLOCK_BYTES)
        memcpy(b->lens, v.mv_data, BLOCK_BYTES);
    else if (*rc == 0 || *rc == MDB_NOTFOUND)
        memset(b->lens, 0, BLOCK_BYTES), *rc = 0;
    else
        return NULL;
    b->key = key;
    b->used = false;
    c->slots[h] = (uint32_t)++c->n;
    return b;
}

uint32_t norms_cache_peek(struct norms_cache *c, MDB_txn *txn, const struct index_dbs *d,
                          uint8_t field, uint32_t doc)
{
    uint32_t key = block_key(field, doc);
    size_t h = c->nslots ? cache_slot(c, key) : 0;
    if (c->nslots && c->slots[h])
        return c->b[c->slots[h] - 1].lens[doc % NORMS_BLOCK];
    struct norms_reader r;
    norms_reader_init(&r);
    return norms_read(txn, d, &r, field, doc);
}

int norms_cache_put(struct norms_cache *c, MDB_txn *txn, const struct index_dbs *d,
                    uint8_t field, uint32_t doc, uint32_t len)
{
    int rc = 0;
    struct norms_block *b = cache_block(c, txn, d, block_key(field, doc), &rc);
    if (!b)
        return rc;
    b->lens[doc % NORMS_BLOCK] = (uint16_t)(len < NORM_MAX ? len : NORM_MAX);
    b->used = true;
    return 0;
}

static int cmp_block(const void *x, const void *y)
{
    const struct norms_block *a = x, *b = y;
    return (a->key > b->key) - (a->key < b->key);
}

int norms_cache_flush(struct norms_cache *c, MDB_txn *txn, const struct index_dbs *d)
{
    int rc = 0;
    if (c->n) /* (qsort of no array: NULL) */
        qsort(c->b, c->n, sizeof *c->b, cmp_block); /* keys in order: pages in order */
    for (size_t i = 0; i < c->n && !rc; i++) {
        struct norms_block *b = &c->b[i];
        if (!b->used)
            continue;
        bool empty = true; /* as the build writes them: no block of zeros */
        for (size_t j = 0; j < NORMS_BLOCK && empty; j++)
            empty = b->lens[j] == 0;
        MDB_val k = {sizeof b->key, &b->key}, v = {BLOCK_BYTES, b->lens};
        rc = empty ? mdb_del(txn, d->norms, &k, NULL) : mdb_put(txn, d->norms, &k, &v, 0);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    norms_cache_reset(c);
    return rc;
}

/* ---- the bulk writer ---- */

struct norms_writer {
    size_t nf;
    bool *searched;
    uint32_t block; /* id / NORMS_BLOCK of the buffered lengths */
    uint16_t *lens; /* nf blocks */
    bool *used;     /* a field's block holds a non-zero length */
};

struct norms_writer *norms_writer_new(size_t nfields, const bool *searched)
{
    struct norms_writer *w = xcalloc(1, sizeof *w);
    w->nf = nfields;
    w->searched = xcalloc(nfields ? nfields : 1, sizeof *w->searched);
    memcpy(w->searched, searched, nfields * sizeof *searched);
    w->lens = xcalloc((nfields ? nfields : 1) * NORMS_BLOCK, sizeof *w->lens);
    w->used = xcalloc(nfields ? nfields : 1, sizeof *w->used);
    return w;
}

static int flush_block(struct norms_writer *w, MDB_txn *txn, const struct index_dbs *d)
{
    int rc = 0;
    for (size_t f = 0; f < w->nf && !rc; f++) {
        if (!w->used[f])
            continue;
        uint32_t key = w->block << 8 | (uint32_t)f;
        MDB_val k = {sizeof key, &key}, v = {BLOCK_BYTES, w->lens + f * NORMS_BLOCK};
        rc = mdb_put(txn, d->norms, &k, &v, MDB_APPEND);
        memset(w->lens + f * NORMS_BLOCK, 0, BLOCK_BYTES);
        w->used[f] = false;
    }
    return rc;
}

int norms_writer_add(struct norms_writer *w, MDB_txn *txn, const struct index_dbs *d,
                     uint32_t doc, const uint32_t *lens)
{
    int rc = 0;
    if (doc / NORMS_BLOCK != w->block) {
        rc = flush_block(w, txn, d);
        w->block = doc / NORMS_BLOCK;
    }
    for (size_t f = 0; f < w->nf; f++)
        if (w->searched[f] && lens[f]) {
            w->lens[f * NORMS_BLOCK + doc % NORMS_BLOCK] =
                (uint16_t)(lens[f] < NORM_MAX ? lens[f] : NORM_MAX);
            w->used[f] = true;
        }
    return rc;
}

int norms_writer_finish(struct norms_writer *w, MDB_txn *txn, const struct index_dbs *d)
{
    return flush_block(w, txn, d);
}

void norms_writer_free(struct norms_writer *w)
{
    if (!w)
        return;
    free(w->searched);
    free(w->lens);
    free(w->used);
    free(w);
}
