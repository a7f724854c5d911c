/* libFuzzer target for Solr's parameters and the query parser
 * (src/solr.c, src/query.c): any query string parses or fails with a
 * message, and every q and fq it carries goes through the Lucene-syntax
 * parser both with OR and AND as the default operator. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tisfs/query.h"
#include "tisfs/solr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *qs = malloc(size + 1), err[600];
    memcpy(qs, data, size);
    qs[size] = 0;
    struct search_request r;
    solr_request_parse(qs, &r, err, sizeof err);
    for (int and_op = 0; and_op < 2; and_op++) {
        struct qnode *n = query_parse(r.q ? r.q : qs, and_op, err, sizeof err);
        query_free(n);
        for (size_t i = 0; i < r.nfq; i++)
            query_free(query_parse(r.fq[i], and_op, err, sizeof err));
    }
    solr_request_free(&r);
    free(qs);
    return 0;
}
