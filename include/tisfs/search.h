/* search — Solr's select contract over one generation: parameters, query
 * planning over the inverted index, BM25 scoring (Lucene's formula: k1 1.2,
 * b 0.75, idf = ln(1 + (N - n + 0.5) / (n + 0.5))), top-k with a heap,
 * sorting, and Solr's JSON response and error layouts. */
#ifndef TISFS_SEARCH_H
#define TISFS_SEARCH_H

#include <stdbool.h>
#include <json-c/json.h>

#include "tisfs/gen.h"
#include "tisfs/util.h"

#define SEARCH_MAX_ROWS 10000
#define SEARCH_MAX_START 1000000
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

/* Parses a URL query string (q=...&rows=5; %XX and '+' decoded). Returns
 * 0, or -1 with a message (a bad number, an unknown q.op, wt other than
 * json). */
int search_request_parse(const char *qs, struct search_request *r, char *err, size_t errlen);
void search_request_free(struct search_request *r);

/* Runs r against g and writes Solr's JSON to out. Returns 0, or 400 when the
 * request was bad (out then holds Solr's error layout). */
int search_run(struct gen *g, const struct search_request *r, struct tbuf *out);

/* Solr's error layout for code and msg (params may be NULL). */
void search_error(int code, const char *msg, struct json_object *params, struct tbuf *out);

#endif
