/* solr — Solr's HTTP contract, without the HTTP: the select parameters of a
 * query string, and the JSON layouts of answers and errors (Solr 8's, which
 * stock clients such as pysolr parse). Both adapters use it through api.h:
 * the mount serves these documents as files, the HTTP listener as bodies. */
#ifndef TISFS_SOLR_H
#define TISFS_SOLR_H

#include <json-c/json.h>

#include "tisfs/search.h"
#include "tisfs/util.h"

/* Parses a URL query string or a form body (q=...&rows=5; %XX and '+'
 * decoded; a repeated fq adds a filter). Returns 0, or -1 with a message (a
 * bad number, an unknown q.op, a wt other than json). r->params echoes
 * every parameter either way. */
int solr_request_parse(const char *qs, struct search_request *r, char *err, size_t errlen);
void solr_request_free(struct search_request *r);

/* {"responseHeader":{status 0, QTime, params}, "response":{numFound, start,
 * maxScore (when scored), numFoundExact, docs}} */
void solr_answer(const struct search_request *r, const struct search_result *res,
                 double qtime_ms, struct tbuf *out);
/* Solr's error layout for HTTP status code and msg (params may be NULL). */
void solr_error(int code, const char *msg, struct json_object *params, struct tbuf *out);
/* The ping handler's answer: {"responseHeader":..., "status":"OK"}. */
void solr_ping(struct json_object *params, struct tbuf *out);

struct solr_core {
    const char *name;
    uint64_t docs;
    const char *data_dir;
    uint64_t size_bytes;
};
/* The core admin STATUS answer over n cores. */
void solr_cores(const struct solr_core *cores, size_t n, struct tbuf *out);

#endif
