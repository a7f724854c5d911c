/* rowsum — a row's verification hash, and the sums of a chunk of rows.
 *
 * verify compares a table with its collection by chunks of a single
 * integer primary key (pk DIV ROWSUM_CHUNK_WIDTH): the server sums a hash
 * of every row of each chunk in one GROUP BY, the daemon the same hash of
 * its documents, and only chunks whose sums differ are looked into. The
 * hash is over each value as the text protocol sends it (what a build
 * stores): every field's byte length first (-1 for NULL), then the values
 * that are not NULL, all joined by '|' -- the lengths say where each value
 * ends, so no two rows read alike -- and CRC-32 of that; on the server
 *   CRC32(CONCAT_WS('|', IFNULL(OCTET_LENGTH(a), -1), ..., a, ...))
 * over bytes, so it depends on no SQL mode, collation or client character
 * set. A mismatch of the two hashes can only cost time: the rows are then
 * compared exactly.
 *
 * A generation keeps the daemon's side (gen.h: gen_rowsums_read): the build
 * sums its rows, and every live change takes the old row's hash out of its
 * chunk and puts the new one in, in the transaction that writes the
 * document. A verification then reads a few thousand sums instead of every
 * document (as Riak's active anti-entropy keeps its hash trees). */
#ifndef TISFS_ROWSUM_H
#define TISFS_ROWSUM_H

#include <stdbool.h>
#include <stdint.h>
#include <roaring/roaring.h>

#include "tisfs/schema.h"
#include "tisfs/util.h"

/* Key values a chunk: small, so that changes spread over a table send a
 * small part of it further (a repair of 0.1 % of 500 000 rows hashes 25 000
 * rows of its 500 differing chunks again, 50 000 with chunks of 100), but
 * not so small that the server's GROUP BY and the kept sums grow large. A
 * generation records the width its sums were kept with. */
#define ROWSUM_CHUNK_WIDTH 50

/* What a chunk XORs is each row's hash times an odd constant (mod 2^32),
 * not the hash itself: CRC-32 is linear over XOR, so two rows of a chunk
 * with the same change at the same place of texts of one length changed
 * both CRCs by the same bits, and their XOR cancelled (SUM alone was left
 * to notice, failing once in ~65 000 such pairs). The product is not
 * linear. The server computes the same (ROWSUM_XOR_SQL). */
#define ROWSUM_XOR_MIX 2654435761u
#define ROWSUM_XOR_SQL "BIT_XOR(h * 2654435761 & 4294967295)"

/* A chunk's rows: how many, the SUM and the mixed XOR of their hashes.
 * Arithmetic wraps, so a change (rows out, rows in) is a rowsum too. */
struct rowsum {
    uint64_t count, sum;
    uint32_t x;
};

static inline void rowsum_add(struct rowsum *s, uint32_t h)
{
    s->count++;
    s->sum += h;
    s->x ^= h * ROWSUM_XOR_MIX;
}

static inline void rowsum_sub(struct rowsum *s, uint32_t h)
{
    s->count--;
    s->sum -= h;
    s->x ^= h * ROWSUM_XOR_MIX;
}

static inline void rowsum_merge(struct rowsum *s, const struct rowsum *d)
{
    s->count += d->count;
    s->sum += d->sum;
    s->x ^= d->x;
}

static inline bool rowsum_empty(const struct rowsum *s)
{
    return !s->count && !s->sum && !s->x;
}

static inline bool rowsum_equal(const struct rowsum *a, const struct rowsum *b)
{
    return a->count == b->count && a->sum == b->sum && a->x == b->x;
}

/* Whether a table of schema sc goes by chunks: a single integer key. */
bool rowsum_chunkable(const struct tis_schema *sc);
/* An integer primary key's text as a number (*u for VT_UINT, else *s);
 * false when it is not one. */
bool rowsum_pk_number(const struct tis_field *f, const struct tis_value *v, int64_t *s,
                      uint64_t *u);
/* The chunk of a key value (int64_t bits when signed), as the server's pk
 * DIV ROWSUM_CHUNK_WIDTH has it: DIV truncates toward zero. */
int64_t rowsum_chunk_of(const struct tis_field *f, uint64_t bits);
/* The chunk of a key value's text; false when it is not an integer. */
bool rowsum_chunk_key(const struct tis_field *f, const struct tis_value *v, int64_t *key);
/* The lowest and highest key values of chunk key (int64_t bits when
 * signed): with a width of 50, chunk 0 of a signed key holds -49..49,
 * chunk -k holds -(50k+49)..-50k. */
void rowsum_chunk_bounds(const struct tis_field *f, int64_t key, uint64_t *lo, uint64_t *hi);
/* The row hash of vals (every field of sc), put together in b. */
uint32_t rowsum_hash(const struct tis_schema *sc, const struct tis_value *vals, struct tbuf *b);

/* Chunks by key: an open-addressing table, at most half full. */
struct rowsum_chunk {
    int64_t key;
    struct rowsum s;
    bool used;
    roaring_bitmap_t *ids; /* its documents, when a caller keeps them (else NULL) */
};

struct rowsum_map {
    struct rowsum_chunk *t;
    size_t cap, n;
};

/* A table slot for an integer key (the chunk map's, and callers' own). */
size_t rowsum_key_hash(int64_t k);
/* Chunk key, added (zero sums, no ids) when absent. */
struct rowsum_chunk *rowsum_map_get(struct rowsum_map *m, int64_t key);
struct rowsum_chunk *rowsum_map_find(const struct rowsum_map *m, int64_t key);
/* The keys of m's chunks, sorted (malloc'd, m->n of them). */
int64_t *rowsum_map_keys(const struct rowsum_map *m);
/* Frees the table and the chunks' ids; m is empty afterwards. */
void rowsum_map_free(struct rowsum_map *m);

#endif
