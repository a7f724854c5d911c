/* http — the HTTP adapter over libmicrohttpd. */
#define _GNU_SOURCE
#include "tisfs/http.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tisfs/api.h"
#include "tisfs/rest.h"
#include "tisfs/solr.h"
#include "tisfs/util.h"

struct http_server {
    struct MHD_Daemon *d;
    char *token;
};

/* One request: its raw URI (with the query string, as sent) and its body. */
struct request {
    char *uri;
    struct tbuf body;
    bool started;
    bool too_big;
};

/* ---- listening ---- */

int http_listen(const char *spec, char *err, size_t errlen)
{
    char host[256] = "127.0.0.1", port[16];
    const char *colon = strrchr(spec, ':');
    if (colon) {
        size_t n = (size_t)(colon - spec);
        if (n >= 2 && spec[0] == '[' && spec[n - 1] == ']')
            spec++, n -= 2;
        if (n == 0 || n >= sizeof host)
            return snprintf(err, errlen, "--http %s: expected [ADDR:]PORT", spec), -1;
        memcpy(host, spec, n);
        host[n] = 0;
    }
    snprintf(port, sizeof port, "%s", colon ? colon + 1 : spec);
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 1 || p > 65535)
        return snprintf(err, errlen, "--http: port \"%s\" is not a number from 1 to 65535", port), -1;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc)
        return snprintf(err, errlen, "--http %s:%s: %s", host, port, gai_strerror(rc)), -1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 128)) {
        snprintf(err, errlen, "--http %s:%s: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

char *http_read_token(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[4096] = "";
    if (!f)
        return snprintf(err, errlen, "--token-file %s: %s", path, strerror(errno)), NULL;
    if (!fgets(line, sizeof line, f))
        line[0] = 0;
    fclose(f);
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0])
        return snprintf(err, errlen, "--token-file %s: the first line holds no token", path), NULL;
    return xstrdup(line);
}

/* ---- answering ---- */

static enum MHD_Result reply(struct MHD_Connection *con, unsigned code, const char *type,
                             struct tbuf *body)
{
    size_t len = body->len;
    struct MHD_Response *r = MHD_create_response_from_buffer(len, len ? tbuf_take(body) : (void *)"",
                                                             len ? MHD_RESPMEM_MUST_FREE
                                                                 : MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (code == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result rc = MHD_queue_response(con, code, r);
    MHD_destroy_response(r);
    return rc;
}

static const char JSON[] = "application/json; charset=utf-8";

static enum MHD_Result reply_error(struct MHD_Connection *con, const char *url, unsigned code,
                                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A refusal of the listener itself (401, 404, 405, 413). Under /solr/ it
 * has Solr's error layout, since Solr clients read error.msg from any
 * error; elsewhere (/metrics) a plain {"error": "...", "code": N}. */
static enum MHD_Result reply_error(struct MHD_Connection *con, const char *url, unsigned code,
                                   const char *fmt, ...)
{
    struct tbuf msg = {0}, body = {0};
    va_list ap;
    va_start(ap, fmt);
    tbuf_vprintf(&msg, fmt, ap);
    va_end(ap);
    if (strncmp(url, "/solr/", 6) == 0)
        solr_error((int)code, msg.data, NULL, &body);
    else {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "error", json_object_new_string(msg.data));
        json_object_object_add(o, "code", json_object_new_int((int)code));
        tbuf_adds(&body, json_object_to_json_string(o));
        tbuf_adds(&body, "\n");
        json_object_put(o);
    }
    tbuf_free(&msg);
    return reply(con, code, JSON, &body);
}

static unsigned http_code(enum api_status st)
{
    switch (st) {
    case API_OK:
        return MHD_HTTP_OK;
    case API_INVALID:
    case API_NAME_TOO_LONG:
        return MHD_HTTP_BAD_REQUEST;
    case API_NOT_FOUND:
        return MHD_HTTP_NOT_FOUND;
    case API_EXISTS:
    case API_BUSY:
        return MHD_HTTP_CONFLICT;
    case API_NOT_READY:
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    case API_FAILED:
        break;
    }
    return MHD_HTTP_INTERNAL_SERVER_ERROR;
}

/* Constant-time: how long the match runs tells nothing about the token. */
static bool token_ok(const char *want, const char *header)
{
    static const char prefix[] = "Bearer ";
    if (!header || strncmp(header, prefix, sizeof prefix - 1) != 0)
        return false;
    const char *got = header + sizeof prefix - 1;
    size_t wl = strlen(want), gl = strlen(got);
    unsigned char diff = wl != gl;
    for (size_t i = 0; i < wl; i++)
        diff |= (unsigned char)want[i] ^ (unsigned char)(i < gl ? got[i] : 0);
    return diff == 0;
}

/* ---- routes ---- */

static bool is(const char *method, const char *m)
{
    return strcmp(method, m) == 0;
}

/* /solr/NAME/REST: NAME into name, and whether REST is what follows,
 * with or without a trailing slash (pysolr asks for select/?). */
static bool solr_path(const char *url, const char *rest, char *name, size_t len)
{
    if (strncmp(url, "/solr/", 6) != 0)
        return false;
    const char *n = url + 6, *slash = strchr(n, '/');
    if (!slash || slash == n || (size_t)(slash - n) >= len)
        return false;
    size_t rl = strlen(rest);
    if (strncmp(slash + 1, rest, rl) != 0 || (slash[1 + rl] && strcmp(slash + 1 + rl, "/")))
        return false;
    memcpy(name, n, (size_t)(slash - n));
    name[slash - n] = 0;
    return true;
}

static enum MHD_Result select_route(struct MHD_Connection *con, struct request *rq,
                                    const char *name)
{
    const char *q = strchr(rq->uri, '?');
    struct tbuf qs = {0}, out = {0};
    tbuf_adds(&qs, q ? q + 1 : "");
    if (rq->body.len) { /* a form-encoded POST: parameters in the body */
        if (qs.len)
            tbuf_adds(&qs, "&");
        tbuf_add(&qs, rq->body.data, rq->body.len);
    }
    enum api_status st = api_select(name, qs.data ? qs.data : "", &out);
    tbuf_free(&qs);
    return reply(con, http_code(st), JSON, &out);
}

static enum MHD_Result route(struct MHD_Connection *con, struct request *rq, const char *url,
                             const char *method)
{
    char name[TIS_NAME_MAX + 2];
    struct tbuf out = {0};
    bool get = is(method, "GET") || is(method, "HEAD");
    if (strcmp(url, "/solr/config/config.ajax") == 0) {
        if (!is(method, "POST"))
            return reply_error(con, url, MHD_HTTP_METHOD_NOT_ALLOWED, "config.ajax takes POST");
        const char *m = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "emethod");
        rest_call(m, rq->body.data, rq->body.len, &out);
        return reply(con, MHD_HTTP_OK, JSON, &out);
    }
    if (strcmp(url, "/metrics") == 0 && get) {
        api_metrics(&out);
        return reply(con, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", &out);
    }
    if ((strcmp(url, "/solr/admin/cores") == 0 || strcmp(url, "/solr/admin/cores/") == 0) && get) {
        const char *action = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "action");
        if (action && strcasecmp(action, "STATUS") != 0)
            return reply_error(con, url, MHD_HTTP_BAD_REQUEST, "cores: action %s is not supported; "
                               "tisfs answers action=STATUS", action);
        api_cores_status(MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "core"), &out);
        return reply(con, MHD_HTTP_OK, JSON, &out);
    }
    if (solr_path(url, "select", name, sizeof name) && (get || is(method, "POST")))
        return select_route(con, rq, name);
    if (solr_path(url, "admin/ping", name, sizeof name) && get)
        return reply(con, http_code(api_ping(name, &out)), JSON, &out);
    return reply_error(con, url, MHD_HTTP_NOT_FOUND, "no endpoint %s %s", method, url);
}

/* ---- libmicrohttpd's callbacks ---- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
    (void)cls;
    (void)con;
    struct request *rq = xcalloc(1, sizeof *rq);
    rq->uri = xstrdup(uri);
    return rq;
}

static void on_done(void *cls, struct MHD_Connection *con, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)con;
    (void)toe;
    struct request *rq = *con_cls;
    if (!rq)
        return;
    free(rq->uri);
    tbuf_free(&rq->body);
    free(rq);
    *con_cls = NULL;
}

/* The first call for a request: refusals that need no body are sent now,
 * before the body is read (a 16 MiB upload is never buffered). */
static enum MHD_Result first_call(struct http_server *s, struct MHD_Connection *con,
                                  const char *url)
{
    const char *auth = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_AUTHORIZATION);
    if (s->token && !token_ok(s->token, auth))
        return reply_error(con, url, MHD_HTTP_UNAUTHORIZED, "%s: send Authorization: Bearer <token>",
                           auth ? "wrong token" : "this server needs a token");
    const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > HTTP_MAX_BODY)
        return reply_error(con, url, MHD_HTTP_CONTENT_TOO_LARGE, "request body of %s bytes: the limit "
                           "is %d", cl, HTTP_MAX_BODY);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    struct http_server *s = cls;
    struct request *rq = *con_cls;
    if (!rq->started) {
        rq->started = true;
        return first_call(s, con, url);
    }
    if (*upload_size) { /* a piece of the body */
        if (rq->body.len + *upload_size > HTTP_MAX_BODY)
            rq->too_big = true; /* chunked: no length was announced */
        else
            tbuf_add(&rq->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (rq->too_big)
        return reply_error(con, url, MHD_HTTP_CONTENT_TOO_LARGE, "request body over %d bytes",
                           HTTP_MAX_BODY);
    return route(con, rq, url, method);
}

struct http_server *http_start(int fd, const char *token, char *err, size_t errlen)
{
    struct http_server *s = xcalloc(1, sizeof *s);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned pool = cpus > 2 ? (unsigned)cpus * 2 : 4;
    s->token = token ? xstrdup(token) : NULL;
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG,
                            0, NULL, NULL, on_request, s,
                            MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_THREAD_POOL_SIZE, pool,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
                            MHD_OPTION_CONNECTION_TIMEOUT, 120u,
                            MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
                            MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
                            MHD_OPTION_END);
    if (!s->d) {
        snprintf(err, errlen, "cannot start the HTTP listener (libmicrohttpd)");
        free(s->token);
        free(s);
        return NULL;
    }
    return s;
}

void http_stop(struct http_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d);
    free(s->token);
    free(s);
}
