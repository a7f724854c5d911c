/* solr — Solr's parameters and JSON layouts. */
#define _GNU_SOURCE
#include "tisfs/solr.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unicode/ustring.h>

/* ---- request ---- */

static char *url_decode(const char *s, size_t n)
{
    struct tbuf b = {0};
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+')
            c = ' ';
        else if (c == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
                 isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            c = (char)strtol(hex, NULL, 16);
            i += 2;
        }
        tbuf_add(&b, &c, 1);
    }
    return tbuf_take(&b);
}

static bool utf8_ok(const char *s)
{
    UErrorCode st = U_ZERO_ERROR;
    int32_t len;
    u_strFromUTF8(NULL, 0, &len, s, -1, &st);
    return st == U_BUFFER_OVERFLOW_ERROR || U_SUCCESS(st) || st == U_STRING_NOT_TERMINATED_WARNING;
}

static void echo_param(struct json_object *params, const char *k, const char *v)
{
    struct json_object *old;
    if (!json_object_object_get_ex(params, k, &old)) {
        json_object_object_add(params, k, json_object_new_string(v));
        return;
    }
    if (!json_object_is_type(old, json_type_array)) {
        struct json_object *a = json_object_new_array();
        json_object_array_add(a, json_object_get(old));
        json_object_object_add(params, k, a);
        old = a;
    }
    json_object_array_add(old, json_object_new_string(v));
}

static bool parse_long(const char *v, long lo, long hi, long *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo)
        return false;
    *out = n > hi ? hi : n;
    return true;
}

/* Parameters Solr clients send that change nothing in a tisfs answer. */
static bool harmless(const char *k)
{
    static const char *const names[] = {"indent", "json.nl", "_", "version", "echoParams",
                                        "timeAllowed", "omitHeader", NULL};
    for (size_t i = 0; names[i]; i++)
        if (!strcmp(k, names[i]))
            return true;
    return false;
}

static int unknown_param(const char *k, const char *v, char *err, size_t errlen)
{
    /* select/title:library: a query without q= parses as a parameter. */
    if (!*v && (strchr(k, ':') || strchr(k, ' ') || strchr(k, '"')))
        return snprintf(err, errlen, "unknown parameter '%s': to search, write q=%s", k, k), -1;
    return snprintf(err, errlen, "unknown parameter '%s' (tisfs reads q, fq, fl, rows, start, "
                                 "sort, q.op, df, wt)", k), -1;
}

static int set_param(struct search_request *r, const char *k, const char *v, bool again,
                     char *err, size_t errlen)
{
    char **slot = NULL;
    if (again && !strcmp(k, "fl") && r->fl) { /* fl=id&fl=name: both, as in Solr */
        char *both = xmalloc(strlen(r->fl) + strlen(v) + 2);
        sprintf(both, "%s,%s", r->fl, v);
        free(r->fl);
        r->fl = both;
        return 0;
    }
    if (again && strcmp(k, "fq"))
        return 0; /* any other parameter repeated: the first counts, as in Solr */
    if (!strcmp(k, "q"))
        slot = &r->q;
    else if (!strcmp(k, "fl"))
        slot = &r->fl;
    else if (!strcmp(k, "sort"))
        slot = &r->sort;
    else if (!strcmp(k, "df"))
        slot = &r->df;
    else if (!strcmp(k, "fq")) {
        r->fq = xrealloc(r->fq, (r->nfq + 1) * sizeof *r->fq);
        r->fq[r->nfq++] = xstrdup(v);
    } else if (!strcmp(k, "rows") || !strcmp(k, "start")) {
        bool rows = k[0] == 'r';
        if (!parse_long(v, 0, rows ? SEARCH_MAX_ROWS : SEARCH_MAX_START, rows ? &r->rows : &r->start))
            return snprintf(err, errlen, "Invalid value '%s' for %s", v, k), -1;
    } else if (!strcmp(k, "q.op")) {
        if (strcasecmp(v, "AND") && strcasecmp(v, "OR"))
            return snprintf(err, errlen, "q.op must be AND or OR, not '%s'", v), -1;
        r->and_op = !strcasecmp(v, "AND");
    } else if (!strcmp(k, "wt")) {
        if (strcmp(v, "json"))
            return snprintf(err, errlen, "wt=%s is not supported; tisfs answers wt=json", v), -1;
    } else if (!harmless(k))
        return unknown_param(k, v, err, errlen);
    if (slot) {
        free(*slot);
        *slot = xstrdup(v);
    }
    return 0;
}

int solr_request_parse(const char *qs, struct search_request *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->rows = 10;
    r->params = json_object_new_object();
    int rc = 0;
    for (const char *p = qs; *p && !rc;) {
        size_t n = strcspn(p, "&");
        const char *eq = memchr(p, '=', n);
        char *k = url_decode(p, eq ? (size_t)(eq - p) : n);
        char *v = eq ? url_decode(eq + 1, n - (size_t)(eq - p) - 1) : xstrdup("");
        if (*k && (!utf8_ok(k) || !utf8_ok(v))) {
            /* (not echoed: the answer is JSON, which holds UTF-8 only) */
            snprintf(err, errlen, "a parameter is not valid UTF-8 once %%-decoded");
            rc = -1;
        } else if (*k) {
            bool again = json_object_object_get_ex(r->params, k, NULL);
            echo_param(r->params, k, v);
            rc = set_param(r, k, v, again, err, errlen);
        }
        free(k);
        free(v);
        p += n;
        if (*p == '&')
            p++;
    }
    return rc;
}

void solr_request_free(struct search_request *r)
{
    free(r->q);
    for (size_t i = 0; i < r->nfq; i++)
        free(r->fq[i]);
    free(r->fq);
    free(r->fl);
    free(r->sort);
    free(r->df);
    json_object_put(r->params);
    memset(r, 0, sizeof *r);
}

/* ---- answers ---- */

static struct json_object *header(int status, double qtime_ms, struct json_object *params)
{
    struct json_object *h = json_object_new_object();
    json_object_object_add(h, "status", json_object_new_int(status));
    json_object_object_add(h, "QTime", json_object_new_int((int)qtime_ms));
    json_object_object_add(h, "params", params ? json_object_get(params) : json_object_new_object());
    return h;
}

static void emit(struct json_object *o, struct tbuf *out)
{
    tbuf_adds(out, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                        JSON_C_TO_STRING_NOSLASHESCAPE));
    tbuf_adds(out, "\n");
    json_object_put(o);
}

void solr_error(int code, const char *msg, struct json_object *params, struct tbuf *out)
{
    struct json_object *o = json_object_new_object(), *e = json_object_new_object(),
                       *md = json_object_new_array();
    json_object_array_add(md, json_object_new_string("error-class"));
    json_object_array_add(md, json_object_new_string("org.apache.solr.common.SolrException"));
    json_object_array_add(md, json_object_new_string("root-error-class"));
    json_object_array_add(md, json_object_new_string(code == 400 ? "org.apache.solr.search.SyntaxError"
                                                                 : "org.apache.solr.common.SolrException"));
    json_object_object_add(o, "responseHeader", header(code, 0, params));
    json_object_object_add(e, "metadata", md);
    json_object_object_add(e, "msg", json_object_new_string(msg));
    json_object_object_add(e, "code", json_object_new_int(code));
    json_object_object_add(o, "error", e);
    emit(o, out);
}

void solr_answer(const struct search_request *r, const struct search_result *res,
                 double qtime_ms, struct tbuf *out)
{
    struct json_object *o = json_object_new_object(), *resp = json_object_new_object();
    json_object_object_add(o, "responseHeader", header(0, qtime_ms, r->params));
    json_object_object_add(resp, "numFound", json_object_new_int64((int64_t)res->num_found));
    json_object_object_add(resp, "start", json_object_new_int64(r->start));
    if (res->scored)
        json_object_object_add(resp, "maxScore", json_object_new_double(res->max_score));
    json_object_object_add(resp, "numFoundExact", json_object_new_boolean(true));
    json_object_object_add(resp, "docs", json_object_get(res->docs));
    json_object_object_add(o, "response", resp);
    emit(o, out);
}

void solr_ping(struct json_object *params, struct tbuf *out)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "responseHeader", header(0, 0, params));
    json_object_object_add(o, "status", json_object_new_string("OK"));
    emit(o, out);
}

void solr_cores(const struct solr_core *cores, size_t n, struct tbuf *out)
{
    struct json_object *o = json_object_new_object(), *st = json_object_new_object();
    json_object_object_add(o, "responseHeader", header(0, 0, NULL));
    json_object_object_add(o, "initFailures", json_object_new_object());
    for (size_t i = 0; i < n; i++) {
        struct json_object *c = json_object_new_object(), *ix = json_object_new_object();
        json_object_object_add(c, "name", json_object_new_string(cores[i].name));
        json_object_object_add(c, "dataDir", json_object_new_string(cores[i].data_dir));
        json_object_object_add(ix, "numDocs", json_object_new_int64((int64_t)cores[i].docs));
        json_object_object_add(ix, "maxDoc", json_object_new_int64((int64_t)cores[i].docs));
        json_object_object_add(ix, "sizeInBytes",
                               json_object_new_int64((int64_t)cores[i].size_bytes));
        json_object_object_add(c, "index", ix);
        json_object_object_add(st, cores[i].name, c);
    }
    json_object_object_add(o, "status", st);
    emit(o, out);
}
