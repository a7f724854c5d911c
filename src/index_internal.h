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
    size_t cap;
    uint8_t field;
};

void doc_terms_init(struct doc_terms *dt, const struct tis_schema *sc);
void doc_terms_free(struct doc_terms *dt);
void doc_terms_collect(struct doc_terms *dt, struct analyzer *an, const struct analysis_opts *o,
                       const struct tis_value *vals);
/* Sorts and merges the keys: refs[0..n) distinct with their tf. Returns n. */
size_t doc_terms_sorted(struct doc_terms *dt);

#endif
