/* search — a select request over one generation: query planning over the
 * inverted index, BM25 scoring (Lucene's formula: k1 1.2, b 0.75,
 * idf = ln(1 + (N - n + 0.5) / (n + 0.5))), top-k with a heap, sorting,
 * and the documents of the requested page. Requests come from, and results
 * go to, Solr's layouts in solr.h. */
#ifndef TISFS_SEARCH_H
#define TISFS_SEARCH_H

#include <stdbool.h>
#include <json-c/json.h>

#include "tisfs/gen.h"
#include "tisfs/util.h"

#define SEARCH_MAX_ROWS 10000
#define SEARCH_MAX_START 1000000
/* The largest answer rendered; beyond it a query is a 400 naming the cap. */
#define SEARCH_MAX_ANSWER_BYTES (64 << 20)
/* Sort keys held while ranking start + rows hits; beyond it a 400. */
#define SEARCH_MAX_SORT_BYTES (128 << 20)
/* Terms a prefix, wildcard or range may expand to. */
#define SEARCH_MAX_EXPANSIONS 100000

struct search_request {
    char *q;
    char **fq;
    size_t nfq;
    char *fl;
    char *sort;
    char *df;
    long rows, start;
    bool and_op;
    struct json_object *params; /* echoed in responseHeader */
};

struct search_result {
    uint64_t num_found;
    bool scored; /* fl asked for score: max_score is meaningful */
    double max_score;
    struct json_object *docs; /* the page's documents, fields as fl asks */
};

/* Runs r against g. Returns 0 with res filled (free with
 * search_result_free), or -1 with the reason in err (a bad query). */
int search_run(struct gen *g, const struct search_request *r, struct search_result *res,
               char *err, size_t errlen);
void search_result_free(struct search_result *res);

#endif
