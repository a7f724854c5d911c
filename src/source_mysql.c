/* source_mysql — the MySQL plugin over libmariadb. */
#define _GNU_SOURCE
#include <errno.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/socket.h>

#include "tisfs/source.h"
#include "tisfs/util.h"

struct source {
    MYSQL *my;
    char *db;
    source_log_fn log;
    void *log_arg;
};

static void my_err(struct source *s, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %s (MySQL error %u)", what, mysql_error(s->my), mysql_errno(s->my));
}

struct source *source_connect(const struct tis_datasource *ds, source_log_fn log, void *log_arg,
                              char *err, size_t errlen)
{
    struct source *s = xcalloc(1, sizeof *s);
    s->log = log;
    s->log_arg = log_arg;
    unsigned int connect_timeout = 10, read_timeout = 3600;
    s->my = mysql_init(NULL);
    mysql_options(s->my, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    mysql_options(s->my, MYSQL_OPT_READ_TIMEOUT, &read_timeout);
    mysql_options(s->my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (!mysql_real_connect(s->my, ds->host, ds->user, ds->password, ds->db,
                            (unsigned)ds->port, NULL, 0)) {
        char what[300];
        snprintf(what, sizeof what, "connect to %s@%s:%d/%s", ds->user, ds->host, ds->port,
                 ds->db);
        my_err(s, what, err, errlen);
        source_close(s);
        return NULL;
    }
    s->db = xstrdup(ds->db);
    return s;
}

void source_close(struct source *s)
{
    if (!s)
        return;
    mysql_close(s->my);
    free(s->db);
    free(s);
}

const char *source_server_version(const struct source *s)
{
    return mysql_get_server_info(s->my);
}

/* Appends `name` with backquotes doubled: identifiers cannot be bound as
 * parameters in the text protocol. */
static void add_ident(struct tbuf *b, const char *name)
{
    tbuf_add(b, "`", 1);
    for (const char *p = name; *p; p++) {
        if (*p == '`')
            tbuf_add(b, "`", 1);
        tbuf_add(b, p, 1);
    }
    tbuf_add(b, "`", 1);
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
    for (MYSQL_ROW row; (row = mysql_fetch_row(r)); (*n)++) {
        c[*n].name = xstrdup(row[0]);
        c[*n].data_type = xstrdup(row[1]);
        c[*n].column_type = xstrdup(row[2]);
    }
    mysql_free_result(r);
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
    for (MYSQL_ROW row; (row = mysql_fetch_row(r));)
        pk[(*n)++] = xstrdup(row[0]);
    mysql_free_result(r);
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
    return n;
}

int source_begin_snapshot(struct source *s, struct json_object **info, char *err, size_t errlen)
{
    char when[32];
    if (mysql_query(s->my, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ") ||
        mysql_query(s->my, "START TRANSACTION WITH CONSISTENT SNAPSHOT")) {
        my_err(s, "start consistent snapshot", err, errlen);
        return -1;
    }
    iso_now(when, true);
    *info = json_object_new_object();
    json_object_object_add(*info, "method",
                           json_object_new_string("START TRANSACTION WITH CONSISTENT SNAPSHOT"));
    json_object_object_add(*info, "server", json_object_new_string(source_server_version(s)));
    json_object_object_add(*info, "taken", json_object_new_string(when));
    return 0;
}

static void select_sql(const struct source *s, const struct tis_spec *spec,
                       const struct tis_schema *sc, struct tbuf *q)
{
    tbuf_adds(q, "SELECT ");
    for (size_t i = 0; i < sc->nfields; i++) {
        if (i)
            tbuf_adds(q, ", ");
        add_ident(q, sc->fields[i].name);
    }
    tbuf_adds(q, " FROM ");
    add_ident(q, s->db);
    tbuf_adds(q, ".");
    add_ident(q, spec->table);
}

int source_stream(struct source *s, const struct tis_spec *spec, const struct tis_schema *sc,
                  source_row_fn fn, void *arg, const atomic_bool *cancel, char *err,
                  size_t errlen)
{
    struct tbuf q = {0};
    select_sql(s, spec, sc, &q);
    int rc = mysql_real_query(s->my, q.data, q.len);
    tbuf_free(&q);
    MYSQL_RES *r = rc ? NULL : mysql_use_result(s->my);
    if (!r) {
        my_err(s, "select rows", err, errlen);
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
