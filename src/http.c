/* http — the HTTP adapter over libmicrohttpd. */
#define _GNU_SOURCE
#include "tisfs/http.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <json-c/json.h>

#include "tisfs/api.h"
#include "tisfs/rest.h"
#include "tisfs/solr.h"
#include "tisfs/util.h"

/* Requests are answered by a pool of workers, not by libmicrohttpd's
 * I/O thread: a connection is suspended while a worker computes its
 * answer, so one slow query holds one worker, never the connections that
 * happen to share a thread, and every client waits its turn in one queue. */
struct http_server {
    struct MHD_Daemon *d;
    char *token;
    pthread_t *workers;
    unsigned nworkers;
    pthread_mutex_t mu;   /* guards everything below */
    pthread_cond_t work;  /* a job came, or the workers must go */
    pthread_cond_t idle;  /* a job finished */
    struct request *head, *tail;
    unsigned inflight;    /* suspended connections */
    bool stopping, exit_workers;
};

/* One request: what the I/O thread copied out of it for a worker, and the
 * answer the worker leaves for the I/O thread to send. */
struct request {
    char *uri; /* raw, with the query string as sent */
    struct tbuf body;
    bool started, too_big, queued, done;
    struct MHD_Connection *con;
    char *url, *method, *emethod, *action, *core;
    unsigned code;
    const char *type;
    struct tbuf out;
    struct request *next;
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

/* ---- answers ---- */

static const char JSON[] = "application/json; charset=utf-8";

static void answer(struct request *rq, unsigned code, const char *type, struct tbuf *body)
{
    rq->code = code;
    rq->type = type;
    tbuf_free(&rq->out);
    rq->out = *body;
    memset(body, 0, sizeof *body);
}

static void refuse(struct request *rq, const char *url, unsigned code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A refusal of the listener itself (401, 404, 405, 413). At config.ajax
 * it has the seed's envelope, which its clients read; elsewhere under
 * /solr/ Solr's error layout, since Solr clients read error.msg from any
 * error; elsewhere (/metrics) a plain {"error": "...", "code": N}. */
static void refuse(struct request *rq, const char *url, unsigned code, const char *fmt, ...)
{
    struct tbuf msg = {0}, body = {0};
    va_list ap;
    va_start(ap, fmt);
    tbuf_vprintf(&msg, fmt, ap);
    va_end(ap);
    if (strcmp(url, "/solr/config/config.ajax") == 0) {
        struct json_object *o = json_object_new_object(), *errs = json_object_new_array();
        json_object_array_add(errs, json_object_new_string(msg.data));
        json_object_object_add(o, "success", json_object_new_boolean(false));
        json_object_object_add(o, "errormsg", errs);
        json_object_object_add(o, "bizresult", NULL);
        tbuf_adds(&body, json_object_to_json_string(o));
        tbuf_adds(&body, "\n");
        json_object_put(o);
    } else if (strncmp(url, "/solr/", 6) == 0)
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
    answer(rq, code, JSON, &body);
}

/* Sends rq's answer (on libmicrohttpd's thread). */
static enum MHD_Result send_answer(struct MHD_Connection *con, struct request *rq)
{
    size_t len = rq->out.len;
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, len ? tbuf_take(&rq->out) : (void *)"", len ? MHD_RESPMEM_MUST_FREE
                                                        : MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rq->type ? rq->type : JSON);
    if (rq->code == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result rc = MHD_queue_response(con, rq->code, r);
    MHD_destroy_response(r);
    return rc;
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

/* ---- routes (on a worker) ---- */

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

static void select_route(struct request *rq, const char *name)
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
    answer(rq, http_code(st), JSON, &out);
}

static void route(struct request *rq)
{
    char name[TIS_NAME_MAX + 2];
    const char *url = rq->url, *method = rq->method;
    struct tbuf out = {0};
    bool get = is(method, "GET") || is(method, "HEAD");
    if (strcmp(url, "/solr/config/config.ajax") == 0) {
        if (!is(method, "POST"))
            return refuse(rq, url, MHD_HTTP_METHOD_NOT_ALLOWED, "config.ajax takes POST");
        rest_call(rq->emethod, rq->body.data, rq->body.len, &out);
        answer(rq, MHD_HTTP_OK, JSON, &out);
    } else if (strcmp(url, "/metrics") == 0 && get) {
        api_metrics(&out);
        answer(rq, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", &out);
    } else if ((!strcmp(url, "/solr/admin/cores") || !strcmp(url, "/solr/admin/cores/")) && get) {
        if (rq->action && strcasecmp(rq->action, "STATUS") != 0)
            return refuse(rq, url, MHD_HTTP_BAD_REQUEST, "cores: action %s is not supported; "
                          "tisfs answers action=STATUS", rq->action);
        api_cores_status(rq->core, &out);
        answer(rq, MHD_HTTP_OK, JSON, &out);
    } else if (solr_path(url, "select", name, sizeof name) && (get || is(method, "POST")))
        select_route(rq, name);
    else if (solr_path(url, "admin/ping", name, sizeof name) && get) {
        enum api_status st = api_ping(name, &out);
        answer(rq, http_code(st), JSON, &out);
    } else
        refuse(rq, url, MHD_HTTP_NOT_FOUND, "no endpoint %s %s", method, url);
}

/* ---- the worker pool ---- */

static void *worker(void *arg)
{
    struct http_server *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->exit_workers)
            pthread_cond_wait(&s->work, &s->mu);
        if (!s->head)
            break;
        struct request *rq = s->head;
        s->head = rq->next;
        if (!s->head)
            s->tail = NULL;
        pthread_mutex_unlock(&s->mu);
        route(rq);
        rq->done = true;
        MHD_resume_connection(rq->con); /* the I/O thread sends the answer */
        pthread_mutex_lock(&s->mu);
        s->inflight--;
        pthread_cond_broadcast(&s->idle);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static char *dup_value(struct MHD_Connection *con, const char *key)
{
    const char *v = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, key);
    return v ? xstrdup(v) : NULL;
}

/* Hands a complete request to the workers; false when the server stops. */
static bool dispatch(struct http_server *s, struct MHD_Connection *con, struct request *rq,
                     const char *url, const char *method)
{
    pthread_mutex_lock(&s->mu);
    bool go = !s->stopping;
    if (go)
        s->inflight++;
    pthread_mutex_unlock(&s->mu);
    if (!go)
        return false;
    rq->con = con;
    rq->url = xstrdup(url);
    rq->method = xstrdup(method);
    rq->emethod = dup_value(con, "emethod");
    rq->action = dup_value(con, "action");
    rq->core = dup_value(con, "core");
    rq->queued = true;
    MHD_suspend_connection(con); /* before a worker may resume it */
    pthread_mutex_lock(&s->mu);
    if (s->tail)
        s->tail->next = rq;
    else
        s->head = rq;
    s->tail = rq;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    return true;
}

/* ---- libmicrohttpd's callbacks (its I/O thread) ---- */

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
    free(rq->url);
    free(rq->method);
    free(rq->emethod);
    free(rq->action);
    free(rq->core);
    tbuf_free(&rq->body);
    tbuf_free(&rq->out);
    free(rq);
    *con_cls = NULL;
}

/* The first call for a request: refusals that need no body are sent now,
 * before the body is read (a 16 MiB upload is never buffered). */
static enum MHD_Result first_call(struct http_server *s, struct MHD_Connection *con,
                                  struct request *rq, const char *url)
{
    const char *auth = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_AUTHORIZATION);
    const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (s->token && !token_ok(s->token, auth))
        refuse(rq, url, MHD_HTTP_UNAUTHORIZED, "%s: send Authorization: Bearer <token>",
               auth ? "wrong token" : "this server needs a token");
    else if (cl && strtoull(cl, NULL, 10) > HTTP_MAX_BODY)
        refuse(rq, url, MHD_HTTP_CONTENT_TOO_LARGE, "request body of %s bytes: the limit is %d",
               cl, HTTP_MAX_BODY);
    else
        return MHD_YES;
    return send_answer(con, rq);
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
        return first_call(s, con, rq, url);
    }
    if (rq->done) /* resumed: the worker's answer */
        return send_answer(con, rq);
    if (*upload_size) { /* a piece of the body */
        if (rq->body.len + *upload_size > HTTP_MAX_BODY)
            rq->too_big = true; /* chunked: no length was announced */
        else
            tbuf_add(&rq->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (rq->queued)
        return MHD_YES; /* suspended: a worker is at it */
    if (rq->too_big) {
        refuse(rq, url, MHD_HTTP_CONTENT_TOO_LARGE, "request body over %d bytes", HTTP_MAX_BODY);
        return send_answer(con, rq);
    }
    if (!dispatch(s, con, rq, url, method)) {
        refuse(rq, url, MHD_HTTP_SERVICE_UNAVAILABLE, "tisfs is shutting down");
        return send_answer(con, rq);
    }
    return MHD_YES;
}

static void stop_workers(struct http_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->exit_workers = true;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    for (unsigned i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i], NULL);
    s->nworkers = 0;
}

static void server_free(struct http_server *s)
{
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->idle);
    free(s->workers);
    free(s->token);
    free(s);
}

struct http_server *http_start(int fd, const char *token, char *err, size_t errlen)
{
    struct http_server *s = xcalloc(1, sizeof *s);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned pool = cpus > 2 ? (unsigned)cpus * 2 : 4;
    s->token = token ? xstrdup(token) : NULL;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->idle, NULL);
    s->workers = xcalloc(pool, sizeof *s->workers);
    for (; s->nworkers < pool; s->nworkers++)
        pthread_create(&s->workers[s->nworkers], NULL, worker, s);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
                                MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
                            0, NULL, NULL, on_request, s,
                            MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
                            MHD_OPTION_CONNECTION_TIMEOUT, 120u,
                            MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
                            MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
                            MHD_OPTION_END);
    if (!s->d) {
        snprintf(err, errlen, "cannot start the HTTP listener (libmicrohttpd)");
        stop_workers(s);
        server_free(s);
        return NULL;
    }
    return s;
}

void http_stop(struct http_server *s)
{
    if (!s)
        return;
    /* New requests get 503; those the workers hold finish first, since a
     * daemon must not stop with suspended connections. */
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    while (s->inflight)
        pthread_cond_wait(&s->idle, &s->mu);
    pthread_mutex_unlock(&s->mu);
    MHD_stop_daemon(s->d);
    stop_workers(s);
    server_free(s);
}
