/* Unit tests for pd (src/pd.c): base64, addresses, the etcd range request
 * and response, live-instance selection with its errors, and pd_discover
 * against in-process HTTP servers on loopback (a dead address, /v3, the
 * /v3beta fallback, HTTP errors). Real etcd is exercised by
 * tests/test_tikv.py. Ends with "N passed, M failed". */
#define _GNU_SOURCE
#include "tisfs/pd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tisfs/util.h"
#include "check.h"

/* ---- base64, addresses, request ---- */

static void test_base64(void)
{
    char *e = base64_encode("/topology/tidb/", 15);
    CHECK_STR(e, "L3RvcG9sb2d5L3RpZGIv");
    free(e);
    const char *vec[][2] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
                            {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        e = base64_encode(vec[i][0], strlen(vec[i][0]));
        CHECK_STR(e, vec[i][1]);
        free(e);
        size_t n = 99;
        char *d = base64_decode(vec[i][1], &n);
        CHECK(d && n == strlen(vec[i][0]) && memcmp(d, vec[i][0], n) == 0);
        free(d);
    }
    unsigned char bin[256];
    for (int i = 0; i < 256; i++)
        bin[i] = (unsigned char)(255 - i);
    e = base64_encode(bin, sizeof bin);
    size_t n = 0;
    char *d = base64_decode(e, &n);
    CHECK(d && n == 256 && memcmp(d, bin, 256) == 0);
    free(d);
    free(e);
    CHECK(base64_decode("a$bc", &n) == NULL);
    CHECK(base64_decode("abcde", &n) == NULL);
}

static void test_hostport(void)
{
    char *h = NULL;
    int p = 0;
    const struct {
        const char *in;
        int dflt;
        const char *host;
        int port;
    } ok[] = {{"127.0.0.1:4000", 1, "127.0.0.1", 4000},
              {"tidb.local", 4000, "tidb.local", 4000},
              {"[::1]:3306", 4000, "::1", 3306},
              {"::1", 4000, "::1", 4000}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (!CHECK(pd_split_hostport(ok[i].in, ok[i].dflt, &h, &p) == 0))
            printf("    input: %s\n", ok[i].in);
        CHECK_STR(h, ok[i].host);
        CHECK_INT(p, ok[i].port);
        free(h);
    }
    h = NULL;
    CHECK(pd_split_hostport("h:0", 4000, &h, &p) == -1);
    CHECK(pd_split_hostport("h:70000", 4000, &h, &p) == -1);
    CHECK(pd_split_hostport("h:x", 4000, &h, &p) == -1);
    CHECK(pd_split_hostport(":4000", 4000, &h, &p) == -1);
    CHECK(pd_split_hostport("[::1", 4000, &h, &p) == -1);
    CHECK(h == NULL);
}

static void test_request(void)
{
    char *r = pd_range_request("/topology/tidb/");
    /* range_end is the prefix with its last byte + 1: "/topology/tidb0". */
    CHECK_STR(r, "{\"key\": \"L3RvcG9sb2d5L3RpZGIv\", \"range_end\": \"L3RvcG9sb2d5L3RpZGIw\"}");
    free(r);
}

/* A recorded etcd 3.4 answer, keys and values base64: 127.0.0.1:4000 with
 * info and ttl, 127.0.0.1:4001 with info only, and an unrelated key. */
static char *recorded_range(void)
{
    struct tbuf b = {0};
    const char *kv[][2] = {
        {"/topology/tidb/127.0.0.1:4000/info",
         "{\"version\":\"5.7.25-TiDB-v7.5.0\",\"git_hash\":\"abc\",\"ip\":\"127.0.0.1\","
         "\"status_port\":10080,\"deploy_path\":\"/tidb\",\"start_timestamp\":1700000000}"},
        {"/topology/tidb/127.0.0.1:4000/ttl", "1700000045123456789"},
        {"/topology/tidb/127.0.0.1:4001/info", "{\"version\":\"5.7.25-TiDB-v6.5.0\"}"},
        {"/topology/tidb/junk", "x"},
    };
    tbuf_adds(&b, "{\"header\":{\"cluster_id\":\"14841639068965178418\",\"member_id\":"
                  "\"10276657743932975437\",\"revision\":\"7\",\"raft_term\":\"2\"},\"kvs\":[");
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        char *k = base64_encode(kv[i][0], strlen(kv[i][0]));
        char *v = base64_encode(kv[i][1], strlen(kv[i][1]));
        tbuf_printf(&b,
                    "%s{\"key\":\"%s\",\"create_revision\":\"5\",\"mod_revision\":\"5\","
                    "\"version\":\"1\",\"value\":\"%s\"%s}",
                    i ? "," : "", k, v, i == 1 ? ",\"lease\":\"7587869329829461508\"" : "");
        free(k);
        free(v);
    }
    tbuf_adds(&b, "],\"count\":\"4\"}");
    return tbuf_take(&b);
}

static void test_parse(void)
{
    char err[512] = "";
    char *json = recorded_range();
    struct pd_topology t = {0};
    CHECK(pd_parse_range(json, strlen(json), &t, err, sizeof err) == 0);
    CHECK(t.n == 2);
    if (t.n == 2) {
        CHECK_STR(t.tidb[0].addr, "127.0.0.1:4000");
        CHECK_STR(t.tidb[0].host, "127.0.0.1");
        CHECK(t.tidb[0].port == 4000 && t.tidb[0].alive);
        CHECK_STR(t.tidb[0].version, "5.7.25-TiDB-v7.5.0");
        CHECK_STR(t.tidb[1].addr, "127.0.0.1:4001");
        CHECK(t.tidb[1].port == 4001 && !t.tidb[1].alive);
    }
    t.pd = xstrdup("127.0.0.1:2379");
    size_t n = 0;
    struct pd_tidb **live = pd_live(&t, &n, err, sizeof err);
    CHECK(live && n == 1 && live[0] == &t.tidb[0]);
    free(live);
    /* Nothing alive. */
    t.tidb[0].alive = false;
    live = pd_live(&t, &n, err, sizeof err);
    CHECK(!live && n == 0);
    CHECK_HAS(err, "no live TiDB: PD 127.0.0.1:2379 lists 127.0.0.1:4000, 127.0.0.1:4001, "
                   "none alive");
    pd_topology_free(&t);
    free(json);

    /* An empty registry: the etcd answer has no kvs at all. */
    const char *empty = "{\"header\":{\"revision\":\"3\"}}";
    CHECK(pd_parse_range(empty, strlen(empty), &t, err, sizeof err) == 0 && t.n == 0);
    t.pd = xstrdup("10.0.0.1:2379");
    live = pd_live(&t, &n, err, sizeof err);
    CHECK(!live);
    CHECK_STR(err, "no TiDB registered in PD 10.0.0.1:2379 (no keys under /topology/tidb/)");
    pd_topology_free(&t);

    const char *bad = "<html>404</html>";
    CHECK(pd_parse_range(bad, strlen(bad), &t, err, sizeof err) == -1);
    CHECK_HAS(err, "not an etcd range response");
    const char *etcderr = "{\"error\":\"etcdserver: permission denied\",\"code\":7}";
    CHECK(pd_parse_range(etcderr, strlen(etcderr), &t, err, sizeof err) == -1);
    CHECK_HAS(err, "permission denied");
    pd_topology_free(&t);

    /* Shapes an impostor may send: clear errors, never a crash. */
    static const char *const hostile[] = {
        "{\"kvs\":[{\"key\":null,\"value\":null}]}",
        "{\"kvs\":[{\"key\":5}]}",
        "{\"kvs\":[{\"key\":\"eA==\",\"value\":[1]}]}",
        "{\"error\":null}",
    };
    for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
        memset(&t, 0, sizeof t);
        CHECK(pd_parse_range(hostile[i], strlen(hostile[i]), &t, err, sizeof err) == -1);
        CHECK(err[0] != 0);
        pd_topology_free(&t);
    }
    /* Entries that are not objects, and a null info value, are skipped. */
    const char *odd = "{\"kvs\":[1, \"x\", null,"
                      " {\"key\":\"L3RvcG9sb2d5L3RpZGIvYS9pbmZv\",\"value\":null}]}";
    memset(&t, 0, sizeof t);
    CHECK(pd_parse_range(odd, strlen(odd), &t, err, sizeof err) == 0);
    pd_topology_free(&t);
}

/* ---- a tiny HTTP server on loopback ---- */

struct httpd {
    int fd, port;
    pthread_t th;
    /* What to answer: status for /v3 and /v3beta (0: close without answering). */
    int v3_status, v3beta_status;
    const char *body;
    int requests;
    char last_body[1024];
};

static void *httpd_main(void *arg)
{
    struct httpd *h = arg;
    for (;;) {
        int c = accept(h->fd, NULL, NULL);
        if (c < 0)
            break;
        char req[8192];
        size_t n = 0;
        ssize_t r;
        char *hdr_end = NULL;
        while (n < sizeof req - 1 && (r = read(c, req + n, sizeof req - 1 - n)) > 0) {
            n += (size_t)r;
            req[n] = 0;
            if ((hdr_end = strstr(req, "\r\n\r\n"))) {
                const char *cl = strcasestr(req, "Content-Length:");
                size_t want = cl ? (size_t)atoi(cl + 15) : 0;
                if (n >= (size_t)(hdr_end + 4 - req) + want)
                    break;
            }
        }
        h->requests++;
        if (hdr_end)
            snprintf(h->last_body, sizeof h->last_body, "%s", hdr_end + 4);
        int status = strstr(req, "POST /v3beta/kv/range ") ? h->v3beta_status
                     : strstr(req, "POST /v3/kv/range ")   ? h->v3_status
                                                           : 404;
        if (status) {
            const char *body = status == 200 ? h->body : "{\"error\":\"Not Found\"}";
            char head[256];
            int hl = snprintf(head, sizeof head,
                              "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                              "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                              status, strlen(body));
            if (write(c, head, (size_t)hl) < 0 || write(c, body, strlen(body)) < 0)
                perror("write");
        }
        close(c);
    }
    return NULL;
}

static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 16) ||
        getsockname(fd, (struct sockaddr *)&a, &l)) {
        perror("listen");
        exit(2);
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static void httpd_start(struct httpd *h, int v3, int v3beta, const char *body)
{
    memset(h, 0, sizeof *h);
    h->v3_status = v3;
    h->v3beta_status = v3beta;
    h->body = body;
    h->fd = listen_loopback(&h->port);
    pthread_create(&h->th, NULL, httpd_main, h);
}

static void httpd_stop(struct httpd *h)
{
    shutdown(h->fd, SHUT_RDWR);
    pthread_join(h->th, NULL);
    close(h->fd);
}

/* A loopback port that nobody listens on. */
static int dead_port(void)
{
    int port;
    int fd = listen_loopback(&port);
    close(fd);
    return port;
}

static struct tbuf logs;
static void collect_log(void *arg, const char *line)
{
    (void)arg;
    tbuf_printf(&logs, "%s\n", line);
}

static void test_discover(void)
{
    char err[2048] = "", addrs[256];
    struct pd_topology t;
    char *json = recorded_range();
    int d1 = dead_port(), d2 = dead_port();

    /* Every PD dead: each is named. */
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d, 127.0.0.1:%d", d1, d2);
    CHECK(pd_discover(addrs, &t, NULL, NULL, err, sizeof err) == -1);
    char want[128];
    snprintf(want, sizeof want, "every PD unreachable: 127.0.0.1:%d (", d1);
    CHECK_HAS(err, want);
    snprintf(want, sizeof want, "), 127.0.0.1:%d (", d2);
    CHECK_HAS(err, want);
    CHECK(pd_discover(" , ", &t, NULL, NULL, err, sizeof err) == -1);
    CHECK_HAS(err, "no PD address given");

    /* First dead, second answers on /v3. */
    struct httpd h;
    httpd_start(&h, 200, 200, json);
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d,http://127.0.0.1:%d/", d1, h.port);
    tbuf_reset(&logs);
    CHECK(pd_discover(addrs, &t, collect_log, NULL, err, sizeof err) == 0);
    snprintf(want, sizeof want, "http://127.0.0.1:%d/", h.port);
    CHECK_STR(t.pd, want);
    CHECK_STR(t.api, "/v3");
    CHECK(t.n == 2 && t.tidb[0].alive);
    CHECK(h.requests == 1);
    CHECK_HAS(h.last_body, "\"key\": \"L3RvcG9sb2d5L3RpZGIv\"");
    snprintf(want, sizeof want, "PD 127.0.0.1:%d unreachable: ", d1);
    CHECK_HAS(logs.data, want);
    CHECK_HAS(logs.data, "answered (/v3/kv/range): 2 TiDB registered");
    pd_topology_free(&t);
    httpd_stop(&h);

    /* Old etcd: /v3 is 404, /v3beta answers. */
    httpd_start(&h, 404, 200, json);
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d", h.port);
    CHECK(pd_discover(addrs, &t, NULL, NULL, err, sizeof err) == 0);
    CHECK_STR(t.api, "/v3beta");
    CHECK(t.n == 2 && h.requests == 2);
    pd_topology_free(&t);
    httpd_stop(&h);

    /* Both paths fail with HTTP errors: the PD counts as unreachable, and the
     * error says what it answered. */
    httpd_start(&h, 503, 404, json);
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d", h.port);
    CHECK(pd_discover(addrs, &t, NULL, NULL, err, sizeof err) == -1);
    CHECK_HAS(err, "every PD unreachable: ");
    CHECK_HAS(err, "/v3/kv/range: HTTP 503");
    CHECK_HAS(err, "/v3beta/kv/range: HTTP 404");
    httpd_stop(&h);

    /* Something answers 200 with garbage. */
    httpd_start(&h, 200, 200, "not json");
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d", h.port);
    CHECK(pd_discover(addrs, &t, NULL, NULL, err, sizeof err) == -1);
    CHECK_HAS(err, "not an etcd range response");
    httpd_stop(&h);
    free(json);
}

/* Credentials in PD addresses never reach a log, a status or a reply. */
static void test_mask_credentials(void)
{
    static const char *const cases[][2] = {
        {"http://root:hunter2@10.0.0.1:2379", "http://root:******@10.0.0.1:2379"},
        {"root:hunter2@10.0.0.1:2379", "root:******@10.0.0.1:2379"},
        {"10.0.0.1:2379,https://u:p:w@h:1, v:x@h2:2", "10.0.0.1:2379,https://u:******@h:1, v:******@h2:2"},
        {"user@10.0.0.1:2379", "user@10.0.0.1:2379"},
        {"10.0.0.1:2379", "10.0.0.1:2379"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *m = url_mask_credentials(cases[i][0]);
        CHECK_STR(m, cases[i][1]);
        free(m);
    }
}

int main(void)
{
    test_mask_credentials();
    test_base64();
    test_hostport();
    test_request();
    test_parse();
    test_discover();
    tbuf_free(&logs);
    return check_summary();
}
