/* search_internal.h — what the query compiler (search_plan.c) and the
 * ranking (search.c) share. Not a public interface. */
#ifndef TISFS_SEARCH_INTERNAL_H
#define TISFS_SEARCH_INTERNAL_H

#include <roaring/roaring.h>

#include "tisfs/analysis.h"
#include "tisfs/index.h"
#include "tisfs/query.h"
#include "tisfs/reader.h"
#include "tisfs/search.h"

/* This CRoaring (0.2) does not accept NULL in roaring_bitmap_free. */
static inline void bm_free(roaring_bitmap_t *b)
{
    if (b)
        roaring_bitmap_free(b);
}

#define BM25_K1 1.2
#define BM25_B 0.75

enum pkind { P_TERM, P_CONST, P_BOOL };

struct plan {
    enum pkind kind;
    roaring_bitmap_t *docs;
    double boost;
    /* P_TERM */
    struct posting post;
    uint8_t field;
    double idf;
    double norm_a, norm_b; /* BM25's k1 (1 - b + b dl / avgdl) as a + b dl */
    struct id_cursor *cursor; /* over post.docs, when scoring */
    /* P_BOOL */
    struct plan **kids;
    enum qoccur *occ;
    size_t n;
};

struct ctx {
    struct reader *rd; /* the generation as this query sees it */
    const struct tis_schema *sc;
    struct analyzer *an;
    const char *df;
    char *err;
    size_t errlen;
    bool failed;
    size_t expansions;
    struct tis_value *vals;
};

/* Records the first failure of a query in c->err; returns NULL. */
struct plan *search_fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A plan for the query text q (Lucene syntax); NULL with c->failed. */
struct plan *search_compile(struct ctx *c, const char *q, bool and_op);
void plan_free(struct plan *p);
/* The index of the field called name (case-insensitive), or -1. */
int search_find_field(const struct tis_schema *sc, const char *name);

#endif
