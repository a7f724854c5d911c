/* cdc — what the TiCDC message decoders share: names, versions, DDL
 * classification, protocol detection, the event list and its arena, JSON
 * access with located errors, and the value codecs.
 *
 * The arena is a chain of chunks that never move: a decoder hands out
 * pointers as soon as it copies a string, and events of earlier messages
 * stay valid when later ones need more room. Only reset frees. */
#include "cdc_internal.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- names ------------------------------------------------------------ */

static const char *const proto_names[] = {"", "open-protocol", "canal-json", "debezium", "simple"};
static const char *const domain_names[] = {"none", "tso", "binlog", "ms"};

const char *cdc_protocol_name(enum cdc_protocol p)
{
    return (unsigned)p <= CDC_SIMPLE ? proto_names[p] : "?";
}

/* The empty name is CDC_UNKNOWN's, never a protocol a spec can ask for. */
enum cdc_protocol cdc_protocol_from_name(const char *s)
{
    for (int p = CDC_OPEN; s && p <= CDC_SIMPLE; p++)
        if (strcmp(s, proto_names[p]) == 0)
            return (enum cdc_protocol)p;
    return CDC_UNKNOWN;
}

const char *ver_domain_name(enum ver_domain d)
{
    return (unsigned)d <= VER_MS ? domain_names[d] : "?";
}

/* 20 bits of file sequence, 32 of position, 12 of row: MySQL numbers its
 * binlogs with six digits and a binlog file stays far below 4 GiB, so the
 * packing orders every real coordinate; anything else gets no version
 * rather than one that would compare wrongly. */
struct version cdc_binlog_version(const char *file, uint64_t pos, uint32_t row)
{
    struct version none = {VER_NONE, 0}, v = {VER_BINLOG, 0};
    const char *dot = file ? strrchr(file, '.') : NULL;
    uint64_t seq = 0;

    if (!dot || !dot[1] || pos >= (UINT64_C(1) << 32))
        return none;
    for (const char *p = dot + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return none;
        seq = seq * 10 + (uint64_t)(*p - '0');
        if (seq >= (UINT64_C(1) << 20))
            return none;
    }
    v.v = (seq << 44) | (pos << 12) | (row < 4095 ? row : 4095);
    return v;
}

/* ---- DDL classification ----------------------------------------------- */

/* Leading blanks and comments: TiDB keeps the client's statement text,
 * comments included, and an executable comment body is not worth parsing. */
static const char *sql_skip(const char *p)
{
    for (;;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            p = end ? end + 2 : p + strlen(p);
        } else if (*p == '#' ||
                   (p[0] == '-' && p[1] == '-' && (isspace((unsigned char)p[2]) || !p[2]))) {
            p += strcspn(p, "\n");
        } else {
            return p;
        }
    }
}

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '$' || (unsigned char)c >= 0x80;
}

/* Consumes keyword kw (any case, whole word) and what follows it. */
static bool sql_kw(const char **p, const char *kw)
{
    size_t n = strlen(kw);
    if (strncasecmp(*p, kw, n) != 0 || ident_char((*p)[n]))
        return false;
    *p = sql_skip(*p + n);
    return true;
}

static bool sql_any_kw(const char *p, const char *const *kws)
{
    for (; *kws; kws++)
        if (sql_kw(&p, *kws))
            return true;
    return false;
}

/* One identifier, `quoted` (with `` inside) or bare. */
static const char *sql_ident(const char *p)
{
    if (*p == '`') {
        for (p++; *p; p++)
            if (*p == '`' && *++p != '`')
                return p;
        return p;
    }
    while (ident_char(*p))
        p++;
    return p;
}

/* [db.]table after ALTER TABLE, with MariaDB's IF EXISTS before it and
 * WAIT n or NOWAIT after it. */
static const char *sql_table_name(const char *p)
{
    if (sql_kw(&p, "IF"))
        sql_kw(&p, "EXISTS");
    p = sql_skip(sql_ident(p));
    if (*p == '.')
        p = sql_skip(sql_ident(sql_skip(p + 1)));
    if (sql_kw(&p, "WAIT"))
        p = sql_skip(sql_ident(p));
    else
        sql_kw(&p, "NOWAIT");
    return p;
}

/* The next ALTER clause: commas inside parentheses, quotes and comments do
 * not separate clauses (ADD COLUMN (a int, b int), DEFAULT 'x,y'). */
static const char *sql_next_clause(const char *p)
{
    int depth = 0;
    while (*p) {
        char c = *p;
        if (c == '\'' || c == '"' || c == '`') {
            for (p++; *p && *p != c; p++)
                if (*p == '\\' && c != '`' && p[1])
                    p++;
            p += *p != 0;
        } else if (c == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            p = end ? end + 2 : p + strlen(p);
        } else {
            depth += (c == '(') - (c == ')');
            p++;
            if (c == ',' && depth <= 0)
                return sql_skip(p);
        }
    }
    return p;
}

/* ADD/DROP without COLUMN name a column unless an index-like word follows.
 * A partition's rows go (or come) whole, without row events. */
static enum cdc_ddl sql_alter_clause(const char *p)
{
    static const char *const partition_ops[] = {"TRUNCATE", "EXCHANGE", "DISCARD", "IMPORT",
                                                NULL};
    for (const char *const *op = partition_ops; *op; op++)
        if (sql_kw(&p, *op))
            return sql_kw(&p, "PARTITION") ? DDL_PARTITION_ROWS : DDL_OTHER;
    /* MariaDB: CONVERT PARTITION p TO TABLE t takes its rows out, CONVERT
     * TABLE t TO PARTITION p brings t's in. */
    if (sql_kw(&p, "CONVERT"))
        return sql_kw(&p, "PARTITION") || sql_kw(&p, "TABLE") ? DDL_PARTITION_ROWS : DDL_OTHER;
    static const char *const add_not[] = {"INDEX", "KEY", "UNIQUE", "PRIMARY", "CONSTRAINT",
                                          "FOREIGN", "FULLTEXT", "SPATIAL", "PARTITION", "CHECK",
                                          "VECTOR", "COLUMNAR", "STATS_EXTENDED", NULL};
    static const char *const drop_not[] = {"INDEX", "KEY", "PRIMARY", "FOREIGN", "CONSTRAINT",
                                           "PARTITION", "CHECK", "STATS_EXTENDED", NULL};
    bool add = sql_kw(&p, "ADD");
    if (!add && !sql_kw(&p, "DROP"))
        return DDL_OTHER;
    if (sql_kw(&p, "COLUMN"))
        return add ? DDL_ADD_COLUMN : DDL_DROP_COLUMN;
    if (!add && sql_kw(&p, "PARTITION"))
        return DDL_PARTITION_ROWS;
    if (sql_any_kw(p, add ? add_not : drop_not) || !(*p == '`' || *p == '(' || ident_char(*p)))
        return DDL_OTHER;
    return add ? DDL_ADD_COLUMN : DDL_DROP_COLUMN;
}

/* Every clause counts, a dropped column or a partition's rows first: they
 * are the changes that leave documents the table no longer has. */
static enum cdc_ddl sql_alter_table(const char *p)
{
    enum cdc_ddl r = DDL_OTHER;
    for (p = sql_table_name(p); *p; p = sql_next_clause(p)) {
        enum cdc_ddl c = sql_alter_clause(p);
        if (c == DDL_DROP_COLUMN || c == DDL_PARTITION_ROWS)
            return c;
        if (c == DDL_ADD_COLUMN)
            r = c;
    }
    return r;
}

/* ALTER [ONLINE] [IGNORE] TABLE at *p, consumed. */
static bool sql_alter_table_head(const char **p)
{
    if (!sql_kw(p, "ALTER"))
        return false;
    sql_kw(p, "ONLINE");
    sql_kw(p, "IGNORE");
    return sql_kw(p, "TABLE");
}

/* Only the statements that change what a collection holds are told apart;
 * everything else (CREATE, RENAME, indexes...) is OTHER. */
enum cdc_ddl cdc_ddl_classify(const char *sql)
{
    const char *p = sql_skip(sql ? sql : "");

    if (sql_kw(&p, "TRUNCATE"))
        return DDL_TRUNCATE;
    if (sql_kw(&p, "DROP"))
        return sql_kw(&p, "TABLE") || sql_kw(&p, "TABLES") || sql_kw(&p, "DATABASE") ||
                       sql_kw(&p, "SCHEMA")
                   ? DDL_DROP
                   : DDL_OTHER;
    return sql_alter_table_head(&p) ? sql_alter_table(p) : DDL_OTHER;
}

/* The identifier at p into out, unquoted (`a``b` is a`b); the end of it. */
static const char *ident_copy(const char *p, char *out, size_t outlen)
{
    const char *end = sql_ident(p);
    size_t n = 0;
    for (const char *q = p + (*p == '`'); q < end && n + 1 < outlen; q++) {
        if (*q == '`' && (q + 1 >= end || q[1] != '`'))
            break; /* the closing quote */
        out[n++] = *q;
        q += *q == '`'; /* `` is one ` */
    }
    out[n] = 0;
    return end;
}

bool cdc_ddl_exchange_table(const char *sql, char *db, size_t dblen, char *table, size_t tlen)
{
    const char *p = sql_skip(sql ? sql : "");
    if (!sql_alter_table_head(&p))
        return false;
    for (p = sql_table_name(p); *p; p = sql_next_clause(p)) {
        const char *q = p;
        if (!sql_kw(&q, "EXCHANGE") || !sql_kw(&q, "PARTITION"))
            continue;
        q = sql_skip(sql_ident(q));
        if (!sql_kw(&q, "WITH") || !sql_kw(&q, "TABLE"))
            return false;
        db[0] = 0;
        q = sql_skip(ident_copy(q, table, tlen));
        if (*q == '.') {
            snprintf(db, dblen, "%s", table);
            ident_copy(sql_skip(q + 1), table, tlen);
        }
        return table[0] != 0;
    }
    return false;
}

/* ---- detection and dispatch ------------------------------------------- */

/* Version 1, then a first key length that fits and a JSON object: no JSON
 * text starts with seven zero bytes, so this cannot take another protocol. */
static bool open_key_plausible(const unsigned char *key, size_t klen)
{
    if (!key || klen < 18 || get_be64(key) != 1)
        return false;
    uint64_t n = get_be64(key + 8);
    return n >= 2 && n <= klen - 16 && key[16] == '{';
}

static bool has(const struct jval *o, const char *key)
{
    return jv_get(o, key) != NULL;
}

/* The JSON protocols by their distinctive fields; a bare Debezium payload
 * (schemas disabled) is known by op and its images. */
static enum cdc_protocol json_detect(const struct jval *o)
{
    if (!jv_is(o, JV_OBJ))
        return CDC_UNKNOWN;
    if (has(o, "payload"))
        return CDC_DEBEZIUM;
    if (has(o, "pkNames") || has(o, "isDdl") || has(o, "sqlType"))
        return CDC_CANAL;
    if (has(o, "version") && has(o, "type") &&
        (has(o, "commitTs") || has(o, "checkpointTs") || has(o, "schemaVersion") ||
         has(o, "buildTs")))
        return CDC_SIMPLE;
    if (has(o, "op") && (has(o, "before") || has(o, "after") || has(o, "source")))
        return CDC_DEBEZIUM;
    return CDC_UNKNOWN;
}

/* The whole value is parsed: detection runs once per channel, and fields
 * are only trustworthy in a value that parsed. */
enum cdc_protocol cdc_detect(const void *key, size_t klen, const void *val, size_t vlen)
{
    struct cdc_ctx c = {NULL, NULL, 0, "detect", NULL};
    const struct jval *o;
    enum cdc_protocol p = CDC_UNKNOWN;

    if (open_key_plausible(key, klen))
        return CDC_OPEN;
    if (val && vlen && cdc_json_parse(&c, 0, "value", val, vlen, &o) == 0)
        p = json_detect(o);
    if (c.doc) {
        jdoc_free(c.doc);
        free(c.doc);
    }
    return p;
}

/* A failed message leaves out as it found it (its events are dropped; their
 * arena bytes wait for the next reset), so the channel can skip it whole. */
int cdc_decode(enum cdc_protocol p, const void *key, size_t klen, const void *val, size_t vlen,
               struct cdc_events *out, char *err, size_t errlen)
{
    struct cdc_ctx c = {out, err, errlen, cdc_protocol_name(p), NULL};
    size_t n0 = out->n;
    int rc;

    if (err && errlen)
        err[0] = 0;
    out->repeated = 0;
    klen = key ? klen : 0;
    vlen = val ? vlen : 0;
    switch (p) {
    case CDC_OPEN:
        rc = cdc_open_decode(&c, key, klen, val, vlen);
        break;
    case CDC_CANAL:
        rc = cdc_canal_decode(&c, val, vlen);
        break;
    case CDC_DEBEZIUM:
        rc = cdc_debezium_decode(&c, val, vlen);
        break;
    case CDC_SIMPLE:
        rc = cdc_simple_decode(&c, val, vlen);
        break;
    default:
        c.proto = "cdc";
        rc = cdc_fail(&c, "unknown protocol %d", (int)p);
    }
    if (rc < 0)
        out->n = n0;
    return rc;
}

/* The protocol prefix tells the channel's report which decoder refused. */
int cdc_fail(struct cdc_ctx *c, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!c->err || !c->errlen)
        return -1;
    n = snprintf(c->err, c->errlen, "%s: ", c->proto);
    if (n >= 0 && (size_t)n < c->errlen) {
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- arena and events ------------------------------------------------- */

/* Each chunk starts with a pointer to the one before it. */
#define CHUNK_HDR 16
#define CHUNK_MIN 4096

static char *chunk_prev(const char *chunk)
{
    char *prev;
    memcpy(&prev, chunk, sizeof prev);
    return prev;
}

/* A new chunk instead of realloc: what was handed out must not move. */
static void arena_grow(struct tbuf *a, size_t n)
{
    size_t cap = a->cap ? a->cap * 2 : CHUNK_MIN;
    char *chunk;

    while (cap < n + CHUNK_HDR)
        cap *= 2;
    chunk = xmalloc(cap);
    memcpy(chunk, &a->data, sizeof a->data);
    a->data = chunk;
    a->cap = cap;
    a->len = CHUNK_HDR;
}

/* 8-aligned so column arrays share the chunks with the strings. */
void *cdc_alloc(struct cdc_events *e, size_t n)
{
    struct tbuf *a = e->shared ? e->shared : &e->arena;
    size_t off = (a->len + 7) & ~(size_t)7;

    if (!a->data || n > a->cap - off) {
        arena_grow(a, n);
        off = a->len;
    }
    a->len = off + n;
    return a->data + off;
}

const char *cdc_copy(struct cdc_events *e, const void *p, size_t n)
{
    char *s = cdc_alloc(e, n + 1);
    if (n)
        memcpy(s, p, n);
    s[n] = 0;
    return s;
}

/* Keeps the newest (largest) chunk so a steady stream stops allocating. */
void cdc_arena_reset(struct tbuf *a)
{
    char *prev, *next;

    if (!a->data)
        return;
    for (prev = chunk_prev(a->data); prev; prev = next) {
        next = chunk_prev(prev);
        free(prev);
    }
    prev = NULL;
    memcpy(a->data, &prev, sizeof prev);
    a->len = CHUNK_HDR;
}

/* tables survives: what simple's bootstraps taught outlives a message. */
void cdc_events_reset(struct cdc_events *e)
{
    e->n = 0;
    cdc_arena_reset(&e->arena);
    tbuf_reset(&e->scratch);
}

void cdc_arena_free(struct tbuf *a)
{
    cdc_arena_reset(a);
    free(a->data);
    *a = (struct tbuf){0};
}

/* Leaves e zeroed, so freeing twice or reusing after free is harmless. */
void cdc_events_free(struct cdc_events *e)
{
    cdc_arena_free(&e->arena);
    e->shared = NULL;
    tbuf_free(&e->scratch);
    cdc_docs_free(e->docs);
    e->docs = NULL;
    free(e->ev);
    e->ev = NULL;
    e->n = e->cap = 0;
    json_object_put(e->tables);
    e->tables = NULL;
}

void cdc_docs_free(struct jdoc *docs)
{
    if (!docs)
        return;
    struct cdc_docs *k = (struct cdc_docs *)docs; /* docs is its doc[0] */
    for (int i = 0; i < 3; i++)
        jdoc_free(&k->doc[i]);
    tbuf_free(&k->schema);
    tbuf_free(&k->rest);
    free(k->fields);
    free(k);
}

/* Strings default to "" so a consumer never meets NULL for a name. */
struct cdc_event *cdc_add_event(struct cdc_events *e, enum cdc_kind k)
{
    struct cdc_event *ev;

    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 2; /* most messages hold one event */
        e->ev = xrealloc(e->ev, e->cap * sizeof *e->ev);
    }
    ev = &e->ev[e->n++];
    memset(ev, 0, sizeof *ev);
    ev->kind = k;
    ev->db = ev->table = ev->sql = "";
    return ev;
}

/* Callers know the column count up front (a JSON object's length), so the
 * array is allocated once, in the arena, at its final size. */
void cdc_row_init(struct cdc_events *e, struct cdc_row *r, size_t cap)
{
    r->cols = cap ? cdc_alloc(e, cap * sizeof *r->cols) : NULL;
    r->n = 0;
    r->untyped = false;
}

/* The value starts as NULL so a column a decoder gives up on is no garbage. */
struct tis_value *cdc_row_add(struct cdc_events *e, struct cdc_row *r, const char *name)
{
    struct cdc_col *col = &r->cols[r->n++];
    col->name = cdc_copy(e, name, strlen(name));
    col->plain_string = false;
    cdc_value_null(&col->v);
    return &col->v;
}

void cdc_value_set(struct cdc_events *e, struct tis_value *v, const void *p, size_t n)
{
    v->p = cdc_copy(e, p, n);
    v->len = n;
    v->null = false;
}

/* p stays a valid empty string so a careless memcpy(dst, p, len) is safe. */
void cdc_value_null(struct tis_value *v)
{
    v->p = "";
    v->len = 0;
    v->null = true;
}

/* ---- JSON ------------------------------------------------------------- */

/* The document is the event list's own, reused from message to message
 * (slot 0 for a message's value, 1 for open-protocol's keys). */
static struct jdoc *doc_of(struct cdc_ctx *c, int slot)
{
    if (!c->out) {
        if (!c->doc)
            c->doc = xcalloc(1, sizeof *c->doc);
        return c->doc;
    }
    return &cdc_docs_of(c)->doc[slot];
}

struct cdc_docs *cdc_docs_of(struct cdc_ctx *c)
{
    if (!c->out)
        return NULL;
    if (!c->out->docs)
        c->out->docs = ((struct cdc_docs *)xcalloc(1, sizeof(struct cdc_docs)))->doc;
    return (struct cdc_docs *)c->out->docs;
}

int cdc_json_message(struct cdc_ctx *c, const void *val, size_t vlen,
                     int (*fn)(struct cdc_ctx *c, const struct jval *m))
{
    const struct jval *m;
    if (cdc_json_parse(c, 0, "value", val, vlen, &m) < 0)
        return -1;
    return fn(c, m);
}

int cdc_json_parse(struct cdc_ctx *c, int slot, const char *what, const void *p, size_t n,
                   const struct jval **o)
{
    *o = NULL;
    struct jdoc *d = doc_of(c, slot);
    const struct jval *v = jdoc_parse(d, n ? p : "", n, CDC_JSON_DEPTH);
    if (!v)
        return cdc_fail(c, "%s: invalid JSON at byte %zu: %s", what, d->err_at, d->err);
    *o = v->type == JV_NULL ? NULL : v; /* as json-c gave null */
    return 0;
}

struct json_object *cdc_json_c(const struct cdc_events *e, const struct jval *v)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *o =
        tok ? json_tokener_parse_ex(tok, e->docs[0].src + v->start, (int)(v->end - v->start))
            : NULL;
    json_tokener_free(tok);
    return o;
}

const struct jval *cdc_get(const struct jval *o, const char *key)
{
    const struct jval *v = jv_get(o, key);
    return jv_is(v, JV_NULL) ? NULL : v;
}

const char *cdc_get_str(const struct jval *o, const char *key)
{
    const struct jval *v = cdc_get(o, key);
    return jv_is(v, JV_STR) ? v->s : NULL;
}

bool cdc_get_bool(const struct jval *o, const char *key)
{
    const struct jval *v = cdc_get(o, key);
    return jv_is(v, JV_BOOL) && v->b;
}

/* Digits only, no sign, no overflow. */
static bool parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

/* An integer's own text tells its sign; some encoders write 64-bit
 * integers as strings. */
bool cdc_json_u64(const struct jval *v, uint64_t *out)
{
    if (jv_is(v, JV_NUM) && v->integer)
        return v->s[0] != '-' && parse_u64(v->s, out);
    return jv_is(v, JV_STR) && parse_u64(v->s, out);
}

/* Day counts and epoch offsets may be negative; same sources as above. */
bool cdc_json_i64(const struct jval *v, int64_t *out)
{
    uint64_t u;

    if ((jv_is(v, JV_NUM) && v->integer) || jv_is(v, JV_STR)) {
        if (v->s[0] == '-') {
            if (!parse_u64(v->s + 1, &u) || u > (uint64_t)INT64_MAX + 1)
                return false;
            *out = u ? -(int64_t)(u - 1) - 1 : 0;
            return true;
        }
    }
    if (!cdc_json_u64(v, &u) || u > INT64_MAX)
        return false;
    *out = (int64_t)u;
    return true;
}

bool cdc_get_u64(const struct jval *o, const char *key, uint64_t *v)
{
    return cdc_json_u64(cdc_get(o, key), v);
}

/* Numbers keep the digits they were written with, so an unsigned BIGINT
 * never passes through a double. */
int cdc_scalar(struct cdc_ctx *c, const struct jval *v, struct tis_value *out, const char *where)
{
    switch (v ? (enum jv_type)v->type : JV_NULL) {
    case JV_NULL:
        cdc_value_null(out);
        return 0;
    case JV_STR:
    case JV_NUM:
        cdc_value_set(c->out, out, v->s, v->len);
        return 0;
    case JV_BOOL:
        cdc_value_set(c->out, out, v->b ? "1" : "0", 1);
        return 0;
    default:
        return cdc_fail(c, "%s: expected a string, number or null, not %s", where,
                        jv_type_name((enum jv_type)v->type));
    }
}

/* ---- value codecs ----------------------------------------------------- */

/* The standard alphabet's values, 64 for every other byte. */
static const unsigned char b64_value[256] = {
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 62, 64, 64, 64, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 64, 64, 64, 64, 64, 64,
    64,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 64, 64, 64, 64, 64,
    64, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
};

/* Whole groups of four digits, three bytes each, while there are some (the
 * text values of open-protocol's rows are all base64: this was 7 % of the
 * decoding thread a digit at a time). Returns the digits taken. */
static size_t b64_quads(struct tbuf *b, const unsigned char *s, size_t n)
{
    size_t i = 0;
    char *o = b->data + b->len;
    for (; i + 4 <= n; i += 4) {
        unsigned a = b64_value[s[i]], c = b64_value[s[i + 1]], d = b64_value[s[i + 2]],
                 e = b64_value[s[i + 3]];
        if ((a | c | d | e) & 64)
            break;
        uint32_t v = a << 18 | c << 12 | d << 6 | e;
        o[0] = (char)(v >> 16);
        o[1] = (char)(v >> 8);
        o[2] = (char)v;
        o += 3;
    }
    b->len = (size_t)(o - b->data);
    return i;
}

/* Standard alphabet; padding optional (some encoders drop it) but nothing
 * may follow it; line breaks are skipped as Go's decoder does. */
bool cdc_base64(struct tbuf *b, const char *s, size_t n)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t digits, pad = 0;

    tbuf_reserve(b, n / 4 * 3 + 3);
    digits = b64_quads(b, (const unsigned char *)s, n);
    for (size_t i = digits; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        unsigned d = b64_value[ch];
        if (ch == '\r' || ch == '\n')
            continue;
        if (ch == '=' && ++pad <= 2)
            continue;
        if (d == 64 || pad)
            return false;
        acc = (acc << 6) | d;
        digits++;
        if ((bits += 6) >= 8) {
            bits -= 8;
            b->data[b->len++] = (char)((acc >> bits) & 0xff);
        }
    }
    b->data[b->len] = 0;
    return digits % 4 != 1 && (!pad || (digits + pad) % 4 == 0);
}

/* n digits of base (8 or 16) at s, or -1. */
static int64_t digits_val(const char *s, size_t n, int base)
{
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int c = tolower((unsigned char)s[i]);
        int d = isdigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : 99;
        if (d >= base)
            return -1;
        v = v * base + d;
    }
    return v;
}

/* One escape after the backslash at s[0] (n bytes left); returns the bytes
 * consumed, 0 for an escape Go's strconv.Unquote rejects. */
static size_t go_escape(const char *s, size_t n, char *out, size_t *olen)
{
    static const char simple_from[] = "abfnrtv\\\"", simple_to[] = "\a\b\f\n\r\t\v\\\"";
    const char *hit;
    size_t w;
    int64_t v;

    if (n < 2)
        return 0;
    hit = s[1] ? strchr(simple_from, s[1]) : NULL;
    w = s[1] == 'x' ? 2 : s[1] == 'u' ? 4 : s[1] == 'U' ? 8 : 0;
    if (hit) {
        out[0] = simple_to[hit - simple_from];
        *olen = 1;
        return 2;
    }
    if (n >= 4 && s[1] >= '0' && s[1] <= '7') {
        if ((v = digits_val(s + 1, 3, 8)) < 0 || v > 255)
            return 0;
        out[0] = (char)v;
        *olen = 1;
        return 4;
    }
    if (!w || n < 2 + w || (v = digits_val(s + 2, w, 16)) < 0)
        return 0;
    if (w == 2) {
        out[0] = (char)v;
        *olen = 1;
    } else if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        return 0;
    } else {
        *olen = utf8_encode((uint32_t)v, out);
    }
    return 2 + w;
}

/* The inside of a strconv.Quote'd string: open-protocol's binary CHAR and
 * VARCHAR values. Every escape is at least as long as what it stands for,
 * so the output fits in n bytes. */
bool cdc_go_unquote(struct tbuf *b, const char *s, size_t n)
{
    tbuf_reserve(b, n);
    for (size_t i = 0; i < n;) {
        size_t used, olen;
        if (s[i] != '\\') {
            b->data[b->len++] = s[i++];
            continue;
        }
        if (!(used = go_escape(s + i, n - i, b->data + b->len, &olen)))
            return false;
        b->len += olen;
        i += used;
    }
    b->data[b->len] = 0;
    return true;
}

/* canal-json's binary columns: each byte was sent as the code point of the
 * same number, so only U+0000..U+00FF may appear. */
bool cdc_latin1(struct tbuf *b, const char *s, size_t n)
{
    tbuf_reserve(b, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            unsigned char c2 = i + 1 < n ? (unsigned char)s[i + 1] : 0;
            if ((c != 0xC2 && c != 0xC3) || (c2 & 0xC0) != 0x80)
                return false;
            c = (unsigned char)(((c & 0x1F) << 6) | (c2 & 0x3F));
            i++;
        }
        b->data[b->len++] = (char)c;
    }
    b->data[b->len] = 0;
    return true;
}

/* Through scratch: the decoded length is known only at the end, and the
 * arena cannot give back what a worst-case reservation did not use. */
bool cdc_decode_into(struct cdc_events *e, struct tis_value *v,
                     bool (*codec)(struct tbuf *, const char *, size_t), const char *s, size_t n)
{
    tbuf_reset(&e->scratch);
    if (!codec(&e->scratch, s, n))
        return false;
    cdc_value_set(e, v, e->scratch.len ? e->scratch.data : "", e->scratch.len);
    return true;
}
