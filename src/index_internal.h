/* index_internal.h — what index.c (format, reading, incremental changes)
 * and index_build.c (the bulk builder) share. Not a public interface. */
#ifndef TISFS_INDEX_INTERNAL_H
#define TISFS_INDEX_INTERNAL_H

#include "tisfs/index.h"
#include "tisfs/util.h"

/* memcmp order with the shorter key first on a tie: LMDB's key order. */
int cmp_keys(const void *a, size_t an, const void *b, size_t bn);

/* Encodes a posting (ids ascending, one tf each) as stored in terms. */
void posting_encode(const uint32_t *docs, const uint8_t *tf, uint32_t n, struct tbuf *out);

struct keyref {
    const unsigned char *p; /* field byte + term */
    uint16_t len;
};

/* The index terms of one document: every (field, term) key it yields, then
 * sorted and counted. Reusable from document to document. */
struct doc_terms {
    const struct tis_schema *sc;
    struct tbuf keys; /* u16 length + key, one after another */
    size_t n;         /* keys collected (with repeats) */
    uint32_t *lens;   /* tokens per field: BM25's dl */
    struct keyref *refs;
    uint32_t *tf;
    uint64_t *hash; /* of each distinct key: key_hash() */
    size_t cap;
    uint32_t *slots; /* hash table for doc_terms_distinct */
    size_t nslots;
    uint8_t field;
    size_t field_start;  /* n when the current value began */
    bool cut;            /* the current value was cut */
    uint64_t truncated;  /* values cut so far (tokens or bytes) */
};

void doc_terms_init(struct doc_terms *dt, const struct tis_schema *sc);
void doc_terms_free(struct doc_terms *dt);
void doc_terms_collect(struct doc_terms *dt, struct analyzer *an, const struct analysis_opts *o,
                       const struct tis_value *vals);
/* The hash the index's hash tables use for a key. */
uint64_t key_hash(const unsigned char *p, size_t n);

/* Merges repeated keys: refs[0..n) distinct, in no particular order, with
 * their tf. Returns n. */
size_t doc_terms_distinct(struct doc_terms *dt);

#endif
