/* pd — the TiDB registry in PD's etcd, through etcd's JSON gateway (libcurl). */
#define _GNU_SOURCE
#include "tisfs/pd.h"

#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tisfs/util.h"

/* ---- addresses ---- */

int pd_split_hostport(const char *addr, int default_port, char **host, int *port)
{
    const char *colon = NULL;
    const char *h = addr;
    size_t hlen;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close)
            return -1;
        h = addr + 1;
        hlen = (size_t)(close - h);
        if (close[1] == ':')
            colon = close + 1;
        else if (close[1])
            return -1;
    } else {
        colon = strrchr(addr, ':');
        if (colon && strchr(addr, ':') != colon)
            colon = NULL; /* a bare IPv6 address */
        hlen = colon ? (size_t)(colon - addr) : strlen(addr);
    }
    *port = default_port;
    if (colon) {
        char *end;
        errno = 0;
        long p = strtol(colon + 1, &end, 10);
        if (errno || *end || end == colon + 1 || p < 1 || p > 65535)
            return -1;
        *port = (int)p;
    }
    if (hlen == 0)
        return -1;
    *host = xstrndup(h, hlen);
    return 0;
}

/* ---- range request and response ---- */

char *pd_range_request(const char *prefix)
{
    size_t n = strlen(prefix);
    char *end = xstrdup(prefix);
    end[n - 1]++; /* the first key after every key with this prefix */
    char *k = base64_encode(prefix, n), *e = base64_encode(end, n);
    struct tbuf b = {0};
    tbuf_printf(&b, "{\"key\": \"%s\", \"range_end\": \"%s\"}", k, e);
    free(k);
    free(e);
    free(end);
    return tbuf_take(&b);
}

static struct pd_tidb *find_or_add(struct pd_topology *t, const char *addr, size_t len)
{
    for (size_t i = 0; i < t->n; i++)
        if (strlen(t->tidb[i].addr) == len && memcmp(t->tidb[i].addr, addr, len) == 0)
            return &t->tidb[i];
    t->tidb = xrealloc(t->tidb, (t->n + 1) * sizeof *t->tidb);
    struct pd_tidb *d = &t->tidb[t->n++];
    memset(d, 0, sizeof *d);
    d->addr = xstrndup(addr, len);
    if (pd_split_hostport(d->addr, TIDB_DEFAULT_PORT, &d->host, &d->port)) {
        d->host = xstrdup(d->addr);
        d->port = 0; /* not usable */
    }
    return d;
}

static int cmp_tidb(const void *a, const void *b)
{
    return strcmp(((const struct pd_tidb *)a)->addr, ((const struct pd_tidb *)b)->addr);
}

int pd_parse_range(const char *json, size_t len, struct pd_topology *t, char *err, size_t errlen)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *o = json_tokener_parse_ex(tok, json, (int)len);
    json_tokener_free(tok);
    if (!o || !json_object_is_type(o, json_type_object)) {
        snprintf(err, errlen, "the answer is not an etcd range response: %.200s", json);
        json_object_put(o);
        return -1;
    }
    struct json_object *kvs = NULL, *e = NULL;
    if (json_object_object_get_ex(o, "error", &e) || json_object_object_get_ex(o, "message", &e)) {
        if (!json_object_object_get_ex(o, "kvs", &kvs)) {
            snprintf(err, errlen, "etcd error: %s",
                     json_object_get_string(e) ? json_object_get_string(e) : "(no message)");
            json_object_put(o);
            return -1;
        }
    }
    size_t plen = strlen(PD_TOPOLOGY_PREFIX);
    if (json_object_object_get_ex(o, "kvs", &kvs) && json_object_is_type(kvs, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(kvs); i++) {
            struct json_object *kv = json_object_array_get_idx(kvs, i), *jk, *jv = NULL;
            if (!json_object_object_get_ex(kv, "key", &jk))
                continue;
            /* An impostor (or a broken gateway) may send anything: a key or
             * value that is not a string is an error, never a crash. */
            json_object_object_get_ex(kv, "value", &jv);
            if (!json_object_is_type(jk, json_type_string) ||
                (jv && !json_object_is_type(jv, json_type_string))) {
                snprintf(err, errlen, "the answer is not an etcd range response: kvs[%zu] has a "
                                      "%s that is not a string", i,
                         json_object_is_type(jk, json_type_string) ? "value" : "key");
                json_object_put(o);
                return -1;
            }
            size_t klen = 0, vlen = 0;
            char *key = base64_decode(json_object_get_string(jk), &klen);
            char *val = jv ? base64_decode(json_object_get_string(jv), &vlen) : NULL;
            const char *slash;
            if (key && klen > plen && memcmp(key, PD_TOPOLOGY_PREFIX, plen) == 0 &&
                (slash = strrchr(key + plen, '/')) && slash > key + plen) {
                const char *leaf = slash + 1;
                struct pd_tidb *d = find_or_add(t, key + plen, (size_t)(slash - (key + plen)));
                if (strcmp(leaf, "ttl") == 0) {
                    d->alive = true;
                } else if (strcmp(leaf, "info") == 0 && val) {
                    struct json_object *info = json_tokener_parse(val), *ver;
                    if (info && json_object_object_get_ex(info, "version", &ver) &&
                        json_object_is_type(ver, json_type_string)) {
                        free(d->version);
                        d->version = xstrdup(json_object_get_string(ver));
                    }
                    json_object_put(info);
                }
            }
            free(key);
            free(val);
        }
    }
    json_object_put(o);
    if (t->n)
        qsort(t->tidb, t->n, sizeof *t->tidb, cmp_tidb);
    return 0;
}

void pd_topology_free(struct pd_topology *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->tidb[i].addr);
        free(t->tidb[i].host);
        free(t->tidb[i].version);
    }
    free(t->tidb);
    free(t->pd);
    free(t->api);
    memset(t, 0, sizeof *t);
}

struct pd_tidb **pd_live(const struct pd_topology *t, size_t *n, char *err, size_t errlen)
{
    *n = 0;
    if (t->n == 0) {
        snprintf(err, errlen, "no TiDB registered in PD %s (no keys under %s)", t->pd,
                 PD_TOPOLOGY_PREFIX);
        return NULL;
    }
    struct pd_tidb **live = xcalloc(t->n, sizeof *live);
    struct tbuf dead = {0};
    for (size_t i = 0; i < t->n; i++) {
        if (t->tidb[i].alive && t->tidb[i].port > 0)
            live[(*n)++] = &t->tidb[i];
        else
            tbuf_printf(&dead, "%s%s", dead.len ? ", " : "", t->tidb[i].addr);
    }
    if (*n == 0) {
        snprintf(err, errlen,
                 "no live TiDB: PD %s lists %s, none alive (no %s<addr>/ttl key: a running "
                 "TiDB keeps it)",
                 t->pd, dead.data, PD_TOPOLOGY_PREFIX);
        free(live);
        live = NULL;
    }
    tbuf_free(&dead);
    return live;
}

/* ---- HTTP ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    struct tbuf *b = arg;
    if (b->len + size * n > (16u << 20))
        return 0; /* a registry is small; refuse floods */
    tbuf_add(b, p, size * n);
    return size * n;
}

/* POSTs body to url. Returns the HTTP status (0 when nothing answered, with
 * the cause in err); the answer's body in *out. */
static long post(const char *url, const char *body, struct tbuf *out, char *err, size_t errlen)
{
    pthread_once(&curl_once, curl_init);
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, errlen, "cannot start libcurl");
        return 0;
    }
    char cerr[CURL_ERROR_SIZE] = "";
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)PD_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)PD_REQUEST_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    /* Straight to the address the user gave: no proxy from the environment. */
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(err, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

/* One PD: 0 when it answered (t filled), -1 with the cause in err. */
static int ask_pd(const char *pd, const char *body, struct pd_topology *t, char *err,
                  size_t errlen)
{
    static const char *const apis[] = {"/v3", "/v3beta"};
    const char *scheme = strstr(pd, "://") ? "" : "http://";
    struct tbuf why = {0};
    int rc = -1;
    for (size_t i = 0; i < sizeof apis / sizeof apis[0]; i++) {
        char url[1024];
        size_t l = strlen(pd);
        while (l && pd[l - 1] == '/')
            l--;
        snprintf(url, sizeof url, "%s%.*s%s/kv/range", scheme, (int)l, pd, apis[i]);
        struct tbuf out = {0};
        char e[CURL_ERROR_SIZE + 64] = "";
        long status = post(url, body, &out, e, sizeof e);
        if (status == 200) {
            rc = pd_parse_range(out.data ? out.data : "", out.len, t, e, sizeof e);
            if (rc == 0)
                t->api = xstrdup(apis[i]);
        }
        if (rc != 0) {
            if (status && status != 200)
                snprintf(e, sizeof e, "HTTP %ld: %.120s", status, out.data ? out.data : "");
            tbuf_printf(&why, "%s%s/kv/range: %s", why.len ? "; " : "", apis[i], e);
        }
        tbuf_free(&out);
        /* Nothing answered at all: no point asking the other path. */
        if (rc == 0 || status == 0)
            break;
    }
    if (rc)
        snprintf(err, errlen, "%s", why.data);
    tbuf_free(&why);
    return rc;
}

int pd_discover(const char *pd_addrs, struct pd_topology *out, source_log_fn log, void *log_arg,
                char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char *body = pd_range_request(PD_TOPOLOGY_PREFIX);
    char *list = xstrdup(pd_addrs ? pd_addrs : "");
    struct tbuf failed = {0};
    size_t tried = 0;
    int rc = -1;
    char *save = NULL;
    for (char *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
        while (*a == ' ' || *a == '\t')
            a++;
        size_t l = strlen(a);
        while (l && (a[l - 1] == ' ' || a[l - 1] == '\t'))
            a[--l] = 0;
        if (!l)
            continue;
        tried++;
        char e[1024] = "";
        struct pd_topology t = {0};
        char *shown = url_mask_credentials(a); /* never a password in a log or a status */
        if (ask_pd(a, body, &t, e, sizeof e) == 0) {
            t.pd = shown;
            *out = t;
            rc = 0;
            source_logf(log, log_arg, "PD %s answered (%s/kv/range): %zu TiDB registered", shown,
                        t.api, t.n);
            break;
        }
        pd_topology_free(&t);
        source_logf(log, log_arg, "PD %s unreachable: %s", shown, e);
        tbuf_printf(&failed, "%s%s (%s)", failed.len ? ", " : "", shown, e);
        free(shown);
    }
    if (rc) {
        if (!tried)
            snprintf(err, errlen, "datasource.pdAddrs: no PD address given");
        else
            snprintf(err, errlen, "every PD unreachable: %s", failed.data);
    }
    tbuf_free(&failed);
    free(list);
    free(body);
    return rc;
}
