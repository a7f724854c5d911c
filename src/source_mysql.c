/* source_mysql — the MySQL and TiKV plugins over libmariadb.
 *
 * MySQL: one connection to host:port. TiKV: TiDB found through PD (pd.c) or
 * given as tidbAddr. Either way, when the server turns out to be TiDB, the
 * dump reads one TSO snapshot over several connections in parallel
 * (source_tidb.c); on any other server it reads one consistent-snapshot
 * transaction on one connection. This file also implements the sqlx
 * interface over libmariadb. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <mysql.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/socket.h>

#include "tisfs/pd.h"
#include "tisfs/source.h"
#include "tisfs/source_tidb.h"
#include "tisfs/sqlx.h"
#include "tisfs/tidb_sql.h"
#include "tisfs/tz.h"
#include "tisfs/util.h"

/* ---- sqlx over libmariadb ---- */

struct mysqlx {
    struct sqlx x;
    MYSQL *my;
    int fd; /* the socket, fixed once connected (for abort) */
};

static void mysqlx_err(struct mysqlx *m, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s (MySQL error %u)", mysql_error(m->my), mysql_errno(m->my));
}

static int mysqlx_exec(struct sqlx *x, const char *sql, struct sql_result *res, char *err,
                       size_t errlen)
{
    struct mysqlx *m = (struct mysqlx *)x;
    if (res)
        memset(res, 0, sizeof *res);
    if (mysql_query(m->my, sql)) {
        mysqlx_err(m, err, errlen);
        return -1;
    }
    MYSQL_RES *r = mysql_store_result(m->my);
    if (!r) {
        if (mysql_field_count(m->my)) {
            mysqlx_err(m, err, errlen);
            return -1;
        }
        return 0;
    }
    if (res) {
        res->ncols = mysql_num_fields(r);
        res->nrows = (size_t)mysql_num_rows(r);
        res->names = xcalloc(res->ncols, sizeof *res->names);
        res->cells = xcalloc(res->nrows * res->ncols, sizeof *res->cells);
        MYSQL_FIELD *f = mysql_fetch_fields(r);
        for (size_t c = 0; c < res->ncols; c++)
            res->names[c] = xstrdup(f[c].name);
        MYSQL_ROW row;
        for (size_t i = 0; i < res->nrows && (row = mysql_fetch_row(r)); i++) {
            unsigned long *lens = mysql_fetch_lengths(r);
            for (size_t c = 0; c < res->ncols; c++)
                res->cells[i * res->ncols + c] = row[c] ? xstrndup(row[c], lens[c]) : NULL;
        }
    }
    mysql_free_result(r);
    return 0;
}

static int mysqlx_stream(struct sqlx *x, const char *sql, sqlx_row_fn fn, void *arg, char *err,
                         size_t errlen)
{
    struct mysqlx *m = (struct mysqlx *)x;
    MYSQL_RES *r = mysql_real_query(m->my, sql, strlen(sql)) ? NULL : mysql_use_result(m->my);
    if (!r) {
        mysqlx_err(m, err, errlen);
        return -1;
    }
    size_t nf = mysql_num_fields(r);
    struct tis_value *vals = xcalloc(nf ? nf : 1, sizeof *vals);
    int stop = 0;
    MYSQL_ROW row;
    while (!stop && (row = mysql_fetch_row(r))) {
        unsigned long *lens = mysql_fetch_lengths(r);
        for (size_t i = 0; i < nf; i++)
            vals[i] = (struct tis_value){row[i], lens[i], row[i] == NULL};
        stop = fn(arg, vals, nf);
    }
    free(vals);
    int rc = 0;
    if (stop) {
        /* Freeing an unbuffered result reads the rest; cut the connection. */
        shutdown(m->fd, SHUT_RDWR);
        rc = 1;
    } else if (mysql_errno(m->my)) {
        mysqlx_err(m, err, errlen);
        rc = -1;
    }
    mysql_free_result(r);
    return rc;
}

static void mysqlx_abort(struct sqlx *x)
{
    struct mysqlx *m = (struct mysqlx *)x;
    if (m->fd >= 0)
        shutdown(m->fd, SHUT_RDWR);
}

static void mysqlx_close(struct sqlx *x)
{
    struct mysqlx *m = (struct mysqlx *)x;
    if (!m)
        return;
    mysql_close(m->my);
    free(m);
}

/* Connects; on failure returns NULL with the server's message in err. */
static struct mysqlx *mysqlx_connect(const char *host, int port, const char *user,
                                     const char *password, const char *db, char *err,
                                     size_t errlen)
{
    struct mysqlx *m = xcalloc(1, sizeof *m);
    m->x = (struct sqlx){mysqlx_exec, mysqlx_stream, mysqlx_abort, mysqlx_close};
    m->fd = -1;
    unsigned int connect_timeout = 10, read_timeout = 3600;
    m->my = mysql_init(NULL);
    mysql_options(m->my, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    mysql_options(m->my, MYSQL_OPT_READ_TIMEOUT, &read_timeout);
    mysql_options(m->my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    /* Always TCP to host:port: libmariadb would take "localhost" for its Unix
     * socket and ignore the port the spec gives. */
    unsigned proto = MYSQL_PROTOCOL_TCP;
    mysql_options(m->my, MYSQL_OPT_PROTOCOL, &proto);
    if (!mysql_real_connect(m->my, host, user, password, db, (unsigned)port, NULL, 0)) {
        mysqlx_err(m, err, errlen);
        mysqlx_close(&m->x);
        return NULL;
    }
    m->fd = (int)mysql_get_socket(m->my);
    return m;
}

struct sqlx *sqlx_mysql_open(const char *host, int port, const char *user, const char *password,
                             const char *db, char *err, size_t errlen)
{
    struct mysqlx *m = mysqlx_connect(host, port, user, password, db, err, errlen);
    return m ? &m->x : NULL;
}

const char *sqlx_mysql_server_version(struct sqlx *x)
{
    return mysql_get_server_info(((struct mysqlx *)x)->my);
}

/* ---- the source ---- */

struct endpoint {
    char *host;
    int port;
    char *desc; /* "TiDB 10.0.0.1:4000" or "10.0.0.1:3306" */
};

struct source {
    struct mysqlx *conn; /* the main connection */
    MYSQL *my;           /* conn->my */
    char *db;
    char *user, *password;
    bool tikv;
    char *pd; /* the PD that answered, NULL without discovery */
    /* Where connections go: the main connection's endpoint first, then any
     * other live TiDB (parallel readers spread over them). */
    struct endpoint *ep;
    size_t nep;
    source_log_fn log;
    void *log_arg;
    uint64_t est_rows;
    bool tidb; /* the snapshot is a TiDB TSO snapshot */
    struct tidb_snapshot snap;
    /* More connections inside transactions that see exactly the main
     * connection's snapshot (source_begin_snapshot_shared). */
    struct mysqlx **peers;
    size_t npeers;
    /* source_abort comes from another thread: it cuts the peers too, which
     * come and go under this lock; aborted cuts those made after it. */
    pthread_mutex_t abort_mu;
    bool aborted;
};

void source_abort(struct source *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->abort_mu);
    s->aborted = true;
    if (s->my)
        shutdown(mysql_get_socket(s->my), SHUT_RDWR);
    for (size_t i = 0; i < s->npeers; i++)
        s->peers[i]->x.abort(&s->peers[i]->x);
    pthread_mutex_unlock(&s->abort_mu);
}

static void conn_err(MYSQL *my, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %s (MySQL error %u)", what, mysql_error(my), mysql_errno(my));
}

static void my_err(struct source *s, const char *what, char *err, size_t errlen)
{
    conn_err(s->my, what, err, errlen);
}

static void add_endpoint(struct source *s, const char *host, int port, const char *desc)
{
    s->ep = xrealloc(s->ep, (s->nep + 1) * sizeof *s->ep);
    s->ep[s->nep].host = xstrdup(host);
    s->ep[s->nep].port = port;
    s->ep[s->nep].desc = xstrdup(desc);
    s->nep++;
}

static void free_endpoint(struct endpoint *e)
{
    free(e->host);
    free(e->desc);
}

/* The TiDB instances to use: tidbAddr, or the live ones PD lists. */
static int tikv_endpoints(struct source *s, const struct tis_datasource *ds, char *err,
                          size_t errlen)
{
    if (ds->tidb_addr && *ds->tidb_addr) {
        char *host;
        int port;
        if (pd_split_hostport(ds->tidb_addr, TIDB_DEFAULT_PORT, &host, &port)) {
            snprintf(err, errlen, "datasource.tidbAddr: \"%s\" is not host:port", ds->tidb_addr);
            return -1;
        }
        char desc[300];
        snprintf(desc, sizeof desc, "TiDB %s:%d", host, port);
        add_endpoint(s, host, port, desc);
        source_logf(s->log, s->log_arg, "tidbAddr given: using TiDB %s:%d, no discovery through PD",
                    host, port);
        free(host);
        return 0;
    }
    char *shown = url_mask_credentials(ds->pd_addrs);
    source_logf(s->log, s->log_arg, "finding TiDB through PD %s", shown);
    free(shown);
    struct pd_topology t;
    if (pd_discover(ds->pd_addrs, &t, s->log, s->log_arg, err, errlen))
        return -1;
    s->pd = xstrdup(t.pd);
    size_t n = 0;
    struct pd_tidb **live = pd_live(&t, &n, err, errlen);
    for (size_t i = 0; i < t.n; i++)
        source_logf(s->log, s->log_arg, "TiDB %s (%s): %s", t.tidb[i].addr,
                    t.tidb[i].version ? t.tidb[i].version : "version unknown",
                    t.tidb[i].alive ? "alive" : "registered, not alive (no ttl key): skipped");
    for (size_t i = 0; i < n; i++) {
        char desc[300];
        snprintf(desc, sizeof desc, "TiDB %s", live[i]->addr);
        add_endpoint(s, live[i]->host, live[i]->port, desc);
    }
    free(live);
    pd_topology_free(&t);
    return n ? 0 : -1;
}

/* Connects the main connection to the first endpoint that answers, which is
 * then moved first; endpoints that did not answer are dropped. */
static int connect_main(struct source *s, char *err, size_t errlen)
{
    struct tbuf why = {0};
    for (size_t i = 0; i < s->nep; i++) {
        char e[1024];
        s->conn = mysqlx_connect(s->ep[i].host, s->ep[i].port, s->user, s->password, s->db, e,
                                 sizeof e);
        if (s->conn) {
            s->my = s->conn->my;
            for (size_t j = 0; j < i; j++)
                free_endpoint(&s->ep[j]);
            memmove(s->ep, s->ep + i, (s->nep - i) * sizeof *s->ep);
            s->nep -= i;
            if (s->tikv)
                source_logf(s->log, s->log_arg, "connected to %s as %s, database %s", s->ep[0].desc,
                            s->user, s->db);
            tbuf_free(&why);
            return 0;
        }
        if (!s->pd) { /* MySQL, or tidbAddr: the one address given */
            snprintf(err, errlen, "connect to %s@%s:%d/%s: %s", s->user, s->ep[i].host,
                     s->ep[i].port, s->db, e);
            tbuf_free(&why);
            return -1;
        }
        source_logf(s->log, s->log_arg, "%s does not answer (%s): trying the next", s->ep[i].desc,
                    e);
        tbuf_printf(&why, "%s%s (%s)", why.len ? ", " : "", s->ep[i].desc, e);
    }
    snprintf(err, errlen, "no live TiDB answered: %s", why.data ? why.data : "none listed");
    tbuf_free(&why);
    return -1;
}

struct source *source_connect(const struct tis_datasource *ds, source_log_fn log, void *log_arg,
                              char *err, size_t errlen)
{
    struct source *s = xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->abort_mu, NULL);
    s->log = log;
    s->log_arg = log_arg;
    s->db = xstrdup(ds->db ? ds->db : "");
    s->user = xstrdup(ds->user ? ds->user : "root");
    s->password = xstrdup(ds->password ? ds->password : "");
    s->tikv = ds->plugin == PLUGIN_TIKV;
    if (s->tikv) {
        if (tikv_endpoints(s, ds, err, errlen)) {
            source_close(s);
            return NULL;
        }
    } else {
        char desc[300];
        snprintf(desc, sizeof desc, "%s:%d", ds->host, ds->port);
        add_endpoint(s, ds->host, ds->port, desc);
    }
    if (connect_main(s, err, errlen)) {
        source_close(s);
        return NULL;
    }
    return s;
}

/* A connection for worker i (or for a retry), spread over the endpoints,
 * failing over to the next when one does not answer. */
static struct sqlx *open_endpoint(void *arg, size_t i, char *desc, size_t desclen, char *err,
                                  size_t errlen)
{
    struct source *s = arg;
    struct tbuf why = {0};
    for (size_t k = 0; k < s->nep; k++) {
        const struct endpoint *e = &s->ep[(i + k) % s->nep];
        char e1[1024];
        struct sqlx *x = sqlx_mysql_open(e->host, e->port, s->user, s->password, s->db, e1,
                                         sizeof e1);
        if (x) {
            snprintf(desc, desclen, "%s", e->desc);
            tbuf_free(&why);
            return x;
        }
        tbuf_printf(&why, "%s%s: %s", why.len ? "; " : "", e->desc, e1);
    }
    snprintf(err, errlen, "cannot connect: %s", why.data ? why.data : "no endpoint");
    tbuf_free(&why);
    return NULL;
}

static void restore_gc(struct source *s)
{
    tidb_gc_restore_any(&s->conn->x, open_endpoint, s, &s->snap, s->log, s->log_arg);
}

static void drop_peers(struct source *s)
{
    pthread_mutex_lock(&s->abort_mu);
    for (size_t i = 0; i < s->npeers; i++)
        mysqlx_close(&s->peers[i]->x);
    free(s->peers);
    s->peers = NULL;
    s->npeers = 0;
    pthread_mutex_unlock(&s->abort_mu);
}

void source_close(struct source *s)
{
    if (!s)
        return;
    drop_peers(s);
    if (s->conn)
        restore_gc(s);
    tidb_snapshot_clear(&s->snap);
    if (s->conn)
        mysqlx_close(&s->conn->x);
    for (size_t i = 0; i < s->nep; i++)
        free_endpoint(&s->ep[i]);
    free(s->ep);
    free(s->db);
    free(s->user);
    free(s->password);
    free(s->pd);
    pthread_mutex_destroy(&s->abort_mu);
    free(s);
}

const char *source_server_version(const struct source *s)
{
    return mysql_get_server_info(s->my);
}

static void add_literal(struct source *s, struct tbuf *b, const char *v)
{
    size_t n = strlen(v);
    tbuf_reserve(b, 2 * n + 3);
    b->data[b->len++] = '\'';
    b->len += mysql_real_escape_string(s->my, b->data + b->len, v, n);
    b->data[b->len++] = '\'';
    b->data[b->len] = 0;
}

static MYSQL_RES *query(struct source *s, const char *sql, const char *what, char *err,
                        size_t errlen)
{
    if (mysql_query(s->my, sql)) {
        my_err(s, what, err, errlen);
        return NULL;
    }
    MYSQL_RES *r = mysql_store_result(s->my);
    if (!r && mysql_field_count(s->my))
        my_err(s, what, err, errlen);
    return r;
}

struct column_info {
    char *name, *data_type, *column_type;
};

static void columns_free(struct column_info *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].name);
        free(c[i].data_type);
        free(c[i].column_type);
    }
    free(c);
}

/* The table's columns in ordinal order; *n = 0 when the table is unknown. */
static struct column_info *table_columns(struct source *s, const char *table, size_t *n,
                                         char *err, size_t errlen)
{
    struct tbuf q = {0};
    tbuf_adds(&q, "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS "
                  "WHERE TABLE_SCHEMA = ");
    add_literal(s, &q, s->db);
    tbuf_adds(&q, " AND TABLE_NAME = ");
    add_literal(s, &q, table);
    tbuf_adds(&q, " ORDER BY ORDINAL_POSITION");
    MYSQL_RES *r = query(s, q.data, "read table columns", err, errlen);
    tbuf_free(&q);
    *n = 0;
    if (!r)
        return NULL;
    struct column_info *c = xcalloc(mysql_num_rows(r) + 1, sizeof *c);
    /* A server (or an impostor) may answer anything: a short row or a NULL
     * cell is an error, never a crash. */
    bool bad = mysql_num_fields(r) < 3;
    for (MYSQL_ROW row; !bad && (row = mysql_fetch_row(r)); (*n)++) {
        if ((bad = !row[0] || !row[1] || !row[2]))
            break;
        c[*n].name = xstrdup(row[0]);
        c[*n].data_type = xstrdup(row[1]);
        c[*n].column_type = xstrdup(row[2]);
    }
    mysql_free_result(r);
    if (bad) {
        snprintf(err, errlen, "the server's information_schema.COLUMNS answer for %s.%s has "
                              "missing or NULL cells", s->db, table);
        columns_free(c, *n);
        *n = 0;
        return NULL;
    }
    return c;
}

/* Primary key column names in key order; *n = 0 when there is none. */
static char **primary_key(struct source *s, const char *table, size_t *n, char *err,
                          size_t errlen)
{
    struct tbuf q = {0};
    tbuf_adds(&q, "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "
                  "WHERE CONSTRAINT_NAME = 'PRIMARY' AND TABLE_SCHEMA = ");
    add_literal(s, &q, s->db);
    tbuf_adds(&q, " AND TABLE_NAME = ");
    add_literal(s, &q, table);
    tbuf_adds(&q, " ORDER BY ORDINAL_POSITION");
    MYSQL_RES *r = query(s, q.data, "read primary key", err, errlen);
    tbuf_free(&q);
    *n = 0;
    if (!r)
        return NULL;
    char **pk = xcalloc(mysql_num_rows(r) + 1, sizeof *pk);
    bool bad = mysql_num_fields(r) < 1;
    for (MYSQL_ROW row; !bad && (row = mysql_fetch_row(r));) {
        if ((bad = !row[0]))
            break;
        pk[(*n)++] = xstrdup(row[0]);
    }
    mysql_free_result(r);
    if (bad) {
        snprintf(err, errlen, "the server's primary key answer for %s.%s has NULL cells", s->db,
                 table);
        for (size_t i = 0; i < *n; i++)
            free(pk[i]);
        free(pk);
        *n = 0;
        return NULL;
    }
    return pk;
}

static const struct column_info *find_column(const struct column_info *c, size_t n,
                                             const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(c[i].name, name) == 0)
            return &c[i];
    return NULL;
}

static void add_field(struct tis_schema *sc, const struct column_info *ci,
                      const struct tis_column_spec *cs)
{
    struct tis_field *f = &sc->fields[sc->nfields++];
    f->name = xstrdup(ci->name);
    f->source_type = xstrdup(ci->column_type);
    f->vt = vtype_from_sql(ci->data_type, ci->column_type);
    f->token = cs ? cs->token : TOK_STRING;
    if (f->token == TOK_DEFAULT && vtype_is_text(f->vt))
        f->token = TOK_IK;
    f->search = cs ? cs->search : true;
    f->store = cs ? cs->store : true;
}

static void column_list(const struct column_info *c, size_t n, struct tbuf *b)
{
    for (size_t i = 0; i < n; i++)
        tbuf_printf(b, "%s%s", i ? ", " : "", c[i].name);
}

static struct tis_schema *build_schema(const struct tis_spec *spec, const struct column_info *c,
                                       size_t nc, char **pk, size_t npk, const char *db,
                                       char *err, size_t errlen)
{
    struct tis_schema *sc = xcalloc(1, sizeof *sc);
    sc->fields = xcalloc(spec->ncols + npk, sizeof *sc->fields);
    sc->pk = xcalloc(npk, sizeof *sc->pk);
    for (size_t i = 0; i < spec->ncols; i++) {
        const struct column_info *ci = find_column(c, nc, spec->cols[i].name);
        if (!ci) {
            struct tbuf names = {0};
            column_list(c, nc, &names);
            snprintf(err, errlen, "column \"%s\" not found in table %s.%s (its columns: %s)",
                     spec->cols[i].name, db, spec->table, names.data);
            tbuf_free(&names);
            schema_free(sc);
            return NULL;
        }
        add_field(sc, ci, &spec->cols[i]);
    }
    for (size_t k = 0; k < npk; k++) {
        size_t i = 0;
        while (i < sc->nfields && strcasecmp(sc->fields[i].name, pk[k]) != 0)
            i++;
        if (i == sc->nfields)
            add_field(sc, find_column(c, nc, pk[k]), NULL);
        sc->fields[i].pk = true;
        sc->pk[sc->npk++] = i;
    }
    return sc;
}

/* The zone this session prints TIMESTAMP values in, which is every
 * connection's (each starts in the server's). A zone the session names
 * (time_zone: an offset, or a name from the server's zone tables) is kept
 * when the daemon can read it: DST and all. SYSTEM is the host's zone,
 * which TiDB names ("Asia/Shanghai") but MySQL only abbreviates ("CST" is
 * three zones, "+08" no name at all): a name with a '/' (or UTC) is kept,
 * anything else is taken as the offset it has now. NULL when the server
 * cannot say. */
static char *session_zone(struct source *s)
{
    char err[256], *zone = NULL;
    MYSQL_RES *r = query(s,
                         "SELECT @@session.time_zone, @@system_time_zone, "
                         "TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), NOW())",
                         "time zone", err, sizeof err);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    if (row && row[0] && row[2]) {
        bool system = strcasecmp(row[0], "SYSTEM") == 0;
        const char *z = system ? (row[1] ? row[1] : "") : row[0];
        if (tz_known(z) && (!system || strchr(z, '/') || !strcmp(z, "UTC"))) {
            zone = xstrdup(z);
        } else {
            long off = strtol(row[2], NULL, 10), a = off < 0 ? -off : off;
            zone = xstrdup("+00:00");
            snprintf(zone, 7, "%c%02ld:%02ld", off < 0 ? '-' : '+', a / 3600 % 100, a / 60 % 60);
        }
    }
    if (r)
        mysql_free_result(r);
    return zone;
}

struct tis_schema *source_describe(struct source *s, const struct tis_spec *spec, char *err,
                                   size_t errlen)
{
    size_t nc = 0, npk = 0;
    struct column_info *c = table_columns(s, spec->table, &nc, err, errlen);
    if (!c)
        return NULL;
    struct tis_schema *sc = NULL;
    char **pk = NULL;
    if (nc == 0)
        snprintf(err, errlen, "table %s.%s not found", s->db, spec->table);
    else if ((pk = primary_key(s, spec->table, &npk, err, errlen)) && npk == 0)
        snprintf(err, errlen,
                 "table %s.%s has no primary key; tisfs uses the primary key as the document id",
                 s->db, spec->table);
    else if (pk)
        sc = build_schema(spec, c, nc, pk, npk, s->db, err, errlen);
    if (sc)
        sc->time_zone = session_zone(s);
    for (size_t i = 0; pk && i < npk; i++)
        free(pk[i]);
    free(pk);
    columns_free(c, nc);
    return sc;
}

uint64_t source_estimate_rows(struct source *s, const struct tis_spec *spec)
{
    char err[256];
    struct tbuf q = {0};
    tbuf_adds(&q, "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ");
    add_literal(s, &q, s->db);
    tbuf_adds(&q, " AND TABLE_NAME = ");
    add_literal(s, &q, spec->table);
    MYSQL_RES *r = query(s, q.data, "estimate rows", err, sizeof err);
    tbuf_free(&q);
    uint64_t n = 0;
    MYSQL_ROW row;
    if (r && (row = mysql_fetch_row(r)) && row[0])
        n = strtoull(row[0], NULL, 10);
    if (r)
        mysql_free_result(r);
    s->est_rows = n;
    return n;
}

static void info_add_str(struct json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

/* The TiDB path: a TSO snapshot (see source_tidb.h). */
static int tidb_begin(struct source *s, const char *version, struct json_object **info, char *err,
                      size_t errlen)
{
    /* The cluster: its PD when found through one, else the TiDB it reached.
     * Dumps of one cluster share one extension of its GC life time. */
    memset(&s->snap, 0, sizeof s->snap);
    snprintf(s->snap.cluster, sizeof s->snap.cluster, "%s",
             s->pd ? s->pd : s->nep ? s->ep[0].desc : "");
    if (tidb_snapshot_begin(&s->conn->x, &s->snap, s->log, s->log_arg, err, errlen))
        return -1;
    s->tidb = true;
    char when[32], tso_time[32];
    iso_now(when, true);
    tidb_tso_time(s->snap.tso, tso_time);
    struct json_object *o = json_object_new_object();
    info_add_str(o, "method", "tidb_snapshot");
    json_object_object_add(o, "tso", json_object_new_int64((int64_t)s->snap.tso));
    info_add_str(o, "tso_time", tso_time);
    info_add_str(o, "server", version);
    info_add_str(o, "tidb", s->ep[0].desc);
    if (s->pd)
        info_add_str(o, "pd", s->pd);
    info_add_str(o, "gc_safe_point", s->snap.safe_point);
    if (s->snap.gc_changed) {
        char gc[160];
        snprintf(gc, sizeof gc, "%s during the dump (was %s)", TIDB_DUMP_GC_LIFE_TIME,
                 s->snap.gc_was);
        info_add_str(o, "tidb_gc_life_time", gc);
    }
    info_add_str(o, "taken", when);
    *info = o;
    return 0;
}

/* MariaDB names the binlog position that belongs to a consistent snapshot
 * (binlog_snapshot_file/position, read inside the transaction): the version
 * of every dumped row, comparable with the binlog coordinates of change
 * events. False when the server keeps no binlog (or, like MySQL, does not
 * name the position). */
static bool binlog_position(MYSQL *my, char *file, size_t filelen, long long *pos)
{
    const char *f = NULL, *p = NULL;
    MYSQL_RES *r = NULL;
    if (mysql_query(my, "SHOW STATUS LIKE 'binlog_snapshot_%'") == 0 &&
        (r = mysql_store_result(my)) != NULL && mysql_num_fields(r) >= 2) {
        for (MYSQL_ROW row; (row = mysql_fetch_row(r));)
            if (row[0] && row[1] && strcasecmp(row[0], "binlog_snapshot_file") == 0)
                f = row[1];
            else if (row[0] && row[1] && strcasecmp(row[0], "binlog_snapshot_position") == 0)
                p = row[1];
    }
    bool ok = f && *f && p;
    if (ok) {
        snprintf(file, filelen, "%s", f);
        *pos = strtoll(p, NULL, 10);
    }
    if (r)
        mysql_free_result(r);
    return ok;
}

static int start_consistent(MYSQL *my)
{
    return mysql_query(my, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ") ||
           mysql_query(my, "START TRANSACTION WITH CONSISTENT SNAPSHOT");
}

/* ---- connections that share the snapshot ----
 * MariaDB cannot hand one snapshot to a second connection, but a
 * consistent snapshot names the binlog position it is consistent with: it
 * sees exactly the transactions binlogged before it. Two snapshots started
 * back to back whose positions are equal therefore see the same commits
 * (not a change made with sql_log_bin=0 between them, which no binlog
 * reader sees either), and their rows carry the same version. A commit
 * that falls between the two STARTs moves the second position: both are
 * started again, a few times, then one connection reads alone. */
#define SHARE_TRIES 5

enum shared { SHARED, RETRY, ALONE, FAILED };

/* Starts the transactions of main and peers. SHARED when all name the same
 * binlog position (file:pos, the main connection's, is set whenever it
 * names one); RETRY when a commit fell between them; ALONE when they
 * cannot be compared (*why says why); FAILED when the main one did not
 * start (err). */
static enum shared start_all(struct source *s, char *file, size_t filelen, long long *pos,
                             bool *have_pos, const char **why, char *err, size_t errlen)
{
    if (start_consistent(s->my)) {
        my_err(s, "start consistent snapshot", err, errlen);
        return FAILED;
    }
    bool started = true;
    for (size_t i = 0; i < s->npeers; i++)
        started = started && !start_consistent(s->peers[i]->my);
    *have_pos = binlog_position(s->my, file, filelen, pos);
    if (!s->npeers)
        return SHARED;
    if (!started) {
        *why = "another connection could not start its transaction";
        return ALONE;
    }
    if (!*have_pos) {
        *why = "the server names no binlog position for a snapshot (no binlog, or not MariaDB)";
        return ALONE;
    }
    for (size_t i = 0; i < s->npeers; i++) {
        char f[256];
        long long p;
        if (!binlog_position(s->peers[i]->my, f, sizeof f, &p)) {
            *why = "another connection's snapshot names no binlog position";
            return ALONE;
        }
        if (strcmp(f, file) != 0 || p != *pos) {
            *why = "commits kept falling between the snapshots";
            return RETRY;
        }
    }
    return SHARED;
}

int source_begin_snapshot_shared(struct source *s, size_t n, struct json_object **info,
                                 char *err, size_t errlen)
{
    char e[512];
    struct sql_result r = {0};
    char *version = NULL;
    drop_peers(s);
    if (s->conn->x.exec(&s->conn->x, TIDB_SQL_VERSION, &r, e, sizeof e) == 0 && sql_cell(&r, 0, 0))
        version = xstrdup(sql_cell(&r, 0, 0));
    sql_result_free(&r);
    if (!version)
        version = xstrdup(source_server_version(s));
    if (tidb_is_tidb(version)) {
        source_logf(s->log, s->log_arg, "server %s is TiDB: one TSO snapshot, read in parallel",
                    version);
        int rc = tidb_begin(s, version, info, err, errlen);
        free(version);
        return rc;
    }
    if (s->tikv)
        source_logf(s->log, s->log_arg,
                    "server %s is not TiDB: falling back to one consistent-snapshot transaction "
                    "(START TRANSACTION WITH CONSISTENT SNAPSHOT) on one connection; no TSO",
                    version);
    free(version);
    /* Connected before the first START: the transactions then start a
     * round trip apart, which leaves little room for a commit between. */
    pthread_mutex_lock(&s->abort_mu);
    s->peers = n > 1 ? xcalloc(n - 1, sizeof *s->peers) : NULL;
    pthread_mutex_unlock(&s->abort_mu);
    for (size_t i = 1; i < n; i++) {
        struct mysqlx *c = mysqlx_connect(s->ep[0].host, s->ep[0].port, s->user, s->password,
                                          s->db, e, sizeof e);
        if (!c) {
            source_logf(s->log, s->log_arg, "one connection reads the snapshot: another "
                        "connection failed (%s)", e);
            drop_peers(s);
            break;
        }
        pthread_mutex_lock(&s->abort_mu);
        s->peers[s->npeers++] = c;
        if (s->aborted)
            c->x.abort(&c->x);
        pthread_mutex_unlock(&s->abort_mu);
    }
    char file[256] = "", when[32];
    long long pos = 0;
    bool have_pos = false;
    for (int try = 1;; try++) {
        const char *why = "";
        enum shared sh = start_all(s, file, sizeof file, &pos, &have_pos, &why, err, errlen);
        if (sh == FAILED)
            return -1;
        if (sh == SHARED)
            break;
        if (sh == RETRY && try < SHARE_TRIES) {
            mysql_query(s->my, "ROLLBACK");
            for (size_t i = 0; i < s->npeers; i++)
                mysql_query(s->peers[i]->my, "ROLLBACK");
            continue;
        }
        /* The main connection's transaction stands: a snapshot by itself. */
        if (sh == RETRY)
            source_logf(s->log, s->log_arg, "one connection reads the snapshot: %s (%d tries)",
                        why, try);
        else
            source_logf(s->log, s->log_arg, "one connection reads the snapshot: %s", why);
        drop_peers(s);
        break;
    }
    if (s->npeers)
        source_logf(s->log, s->log_arg, "%zu connections read the snapshot at binlog %s:%lld",
                    s->npeers + 1, file, pos);
    iso_now(when, true);
    *info = json_object_new_object();
    json_object_object_add(*info, "method",
                           json_object_new_string("START TRANSACTION WITH CONSISTENT SNAPSHOT"));
    json_object_object_add(*info, "server", json_object_new_string(source_server_version(s)));
    if (s->tikv) {
        info_add_str(*info, "tidb", s->ep[0].desc);
        if (s->pd)
            info_add_str(*info, "pd", s->pd);
    }
    json_object_object_add(*info, "tso", NULL);
    if (have_pos) {
        struct json_object *b = json_object_new_object();
        json_object_object_add(b, "file", json_object_new_string(file));
        json_object_object_add(b, "pos", json_object_new_int64(pos));
        json_object_object_add(*info, "binlog", b);
    }
    json_object_object_add(*info, "taken", json_object_new_string(when));
    return 0;
}

int source_begin_snapshot(struct source *s, struct json_object **info, char *err, size_t errlen)
{
    return source_begin_snapshot_shared(s, 1, info, err, errlen);
}

size_t source_snapshot_conns(const struct source *s)
{
    return 1 + s->npeers;
}

static int tidb_stream(struct source *s, const struct tis_spec *spec, const struct tis_schema *sc,
                       source_row_fn fn, void *arg, const atomic_bool *cancel, char *err,
                       size_t errlen)
{
    struct tbuf l = {0};
    for (size_t i = 0; i < s->nep; i++)
        tbuf_printf(&l, "%s%s", i ? ", " : "", s->ep[i].desc);
    source_logf(s->log, s->log_arg, "parallel readers spread over %zu TiDB instance%s: %s", s->nep,
                s->nep == 1 ? "" : "s", l.data);
    tbuf_free(&l);
    return tidb_read_snapshot(&s->conn->x, open_endpoint, s, s->db, spec->table, sc, s->est_rows,
                              &s->snap, fn, arg, cancel, s->log, s->log_arg, err, errlen);
}

bool source_is_tidb(const struct source *s)
{
    return s->tidb;
}

static int query_rows(MYSQL *my, const char *sql, size_t ncols, source_row_fn fn, void *arg,
                      const atomic_bool *cancel, char *err, size_t errlen)
{
    MYSQL_RES *r = mysql_real_query(my, sql, strlen(sql)) ? NULL : mysql_use_result(my);
    if (!r) {
        conn_err(my, "query", err, errlen);
        return -1;
    }
    if (mysql_num_fields(r) != ncols) {
        snprintf(err, errlen, "the server answered %u columns for the %zu asked",
                 mysql_num_fields(r), ncols);
        shutdown(mysql_get_socket(my), SHUT_RDWR);
        mysql_free_result(r);
        return -1;
    }
    struct tis_value *vals = xcalloc(ncols ? ncols : 1, sizeof *vals);
    int stop = 0;
    MYSQL_ROW row;
    for (uint64_t n = 0; !stop && (row = mysql_fetch_row(r)); n++) {
        unsigned long *lens = mysql_fetch_lengths(r);
        for (size_t i = 0; i < ncols; i++)
            vals[i] = (struct tis_value){row[i], lens[i], row[i] == NULL};
        stop = fn(arg, vals);
        if (!stop && (n & 1023) == 0 && cancel && atomic_load(cancel)) {
            stop = 1;
            snprintf(err, errlen, "cancelled");
        }
    }
    free(vals);
    if (stop) /* freeing an unbuffered result would read the rest: cut it */
        shutdown(mysql_get_socket(my), SHUT_RDWR);
    else if (mysql_errno(my)) {
        conn_err(my, "read rows", err, errlen);
        stop = 1;
    }
    mysql_free_result(r);
    return stop ? -1 : 0;
}

int source_query(struct source *s, const char *sql, size_t ncols, source_row_fn fn, void *arg,
                 const atomic_bool *cancel, char *err, size_t errlen)
{
    return query_rows(s->my, sql, ncols, fn, arg, cancel, err, errlen);
}

/* The queries of source_query_each and how far the connections got. */
struct queue {
    const char *const *sql;
    size_t n, ncols;
    source_row_fn fn;
    const atomic_bool *cancel;
    atomic_size_t next;
    atomic_bool failed;
    pthread_mutex_t mu; /* guards err */
    char err[512];
};

struct worker {
    struct queue *q;
    MYSQL *my;
    void *arg;
};

static void *worker_thread(void *arg)
{
    struct worker *w = arg;
    struct queue *q = w->q;
    for (size_t i; !atomic_load(&q->failed) && (i = atomic_fetch_add(&q->next, 1)) < q->n;) {
        char err[512];
        if (query_rows(w->my, q->sql[i], q->ncols, q->fn, w->arg, q->cancel, err, sizeof err)) {
            pthread_mutex_lock(&q->mu);
            if (!atomic_exchange(&q->failed, true))
                snprintf(q->err, sizeof q->err, "%s", err);
            pthread_mutex_unlock(&q->mu);
        }
    }
    return NULL;
}

int source_query_each(struct source *s, const char *const *sql, size_t n, size_t ncols,
                      source_row_fn fn, void *const *args, const atomic_bool *cancel, char *err,
                      size_t errlen)
{
    size_t conns = source_snapshot_conns(s);
    struct queue q = {.sql = sql, .n = n, .ncols = ncols, .fn = fn, .cancel = cancel};
    atomic_init(&q.next, 0);
    atomic_init(&q.failed, false);
    pthread_mutex_init(&q.mu, NULL);
    struct worker *w = xcalloc(conns, sizeof *w);
    pthread_t *th = xcalloc(conns, sizeof *th);
    bool *started = xcalloc(conns, sizeof *started);
    /* No more connections at work than queries: a connection whose query
     * failed is cut, and one left idle needs no thread. */
    for (size_t i = 0; i < conns && i < n; i++) {
        w[i] = (struct worker){&q, i ? s->peers[i - 1]->my : s->my, args[i]};
        if (i)
            started[i] = pthread_create(&th[i], NULL, worker_thread, &w[i]) == 0;
    }
    worker_thread(&w[0]);
    for (size_t i = 1; i < conns; i++)
        if (started[i])
            pthread_join(th[i], NULL);
    int rc = atomic_load(&q.failed) ? -1 : 0;
    if (rc)
        snprintf(err, errlen, "%s", q.err);
    pthread_mutex_destroy(&q.mu);
    free(started);
    free(th);
    free(w);
    return rc;
}

int source_stream(struct source *s, const struct tis_spec *spec, const struct tis_schema *sc,
                  source_row_fn fn, void *arg, const atomic_bool *cancel, char *err,
                  size_t errlen)
{
    if (s->tidb)
        return tidb_stream(s, spec, sc, fn, arg, cancel, err, errlen);
    struct tbuf q = {0};
    tidb_select_sql(&q, s->db, spec->table, sc, NULL);
    int rc = mysql_real_query(s->my, q.data, q.len);
    tbuf_free(&q);
    MYSQL_RES *r = rc ? NULL : mysql_use_result(s->my);
    if (!r) {
        my_err(s, "select rows", err, errlen);
        return -1;
    }
    if (mysql_num_fields(r) != sc->nfields) { /* never index past the row */
        snprintf(err, errlen, "the server answered %u columns for the %zu asked",
                 mysql_num_fields(r), sc->nfields);
        shutdown(mysql_get_socket(s->my), SHUT_RDWR);
        mysql_free_result(r);
        return -1;
    }
    struct tis_value *vals = xcalloc(sc->nfields, sizeof *vals);
    int stop = 0;
    bool cancelled = false;
    MYSQL_ROW row;
    for (uint64_t n = 0; !stop && (row = mysql_fetch_row(r)); n++) {
        unsigned long *lens = mysql_fetch_lengths(r);
        for (size_t i = 0; i < sc->nfields; i++)
            vals[i] = (struct tis_value){row[i], lens[i], row[i] == NULL};
        stop = fn(arg, vals);
        if (!stop && (n & 1023) == 0 && atomic_load(cancel))
            stop = cancelled = true;
    }
    free(vals);
    if (stop) {
        /* Freeing an unbuffered result reads the rest of the table; cut the
         * connection first so that a cancel takes effect at once. The
         * callback that stopped has already said why in err. */
        shutdown(mysql_get_socket(s->my), SHUT_RDWR);
        if (cancelled)
            snprintf(err, errlen, "cancelled");
    } else if (mysql_errno(s->my)) {
        my_err(s, "read rows", err, errlen);
        stop = 1;
    }
    mysql_free_result(r);
    return stop ? -1 : 0;
}
