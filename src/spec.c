/* spec — relaxed JSON -> validated collection spec.
 *
 * Validation is strict about names (an unknown field is almost always a typo
 * that would otherwise silently change the index) and lenient about form
 * (the seed's relaxed JSON, two column layouts). */
#define _GNU_SOURCE
#include "tisfs/spec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tisfs/analysis.h"
#include "tisfs/rjson.h"
#include "tisfs/util.h"

static const char *const token_names[] = {"", "string", "ik", "like", "text_ws", "pinyin"};

const char *token_name(enum tis_token t)
{
    return t <= TOK_PINYIN ? token_names[t] : "?";
}

/* Error context: the first error wins, later calls are ignored. */
struct verr {
    char *buf;
    size_t len;
    bool set;
};

static bool fail(struct verr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(struct verr *e, const char *fmt, ...)
{
    if (!e->set && e->len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->buf, e->len, fmt, ap);
        va_end(ap);
    }
    e->set = true;
    return false;
}

static bool check_keys(struct json_object *obj, const char *where, const char *const *known,
                       struct verr *e)
{
    json_object_object_foreach(obj, key, val) {
        (void)val;
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++)
            ok = strcmp(*k, key) == 0;
        if (!ok)
            return fail(e, "%s: unknown field \"%s\"", where, key);
    }
    return true;
}

/* Optional string field; *out stays NULL when absent. */
static bool get_str(struct json_object *obj, const char *where, const char *key, char **out,
                    struct verr *e)
{
    struct json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null))
        return true;
    if (!json_object_is_type(v, json_type_string))
        return fail(e, "%s.%s: must be a string", where, key);
    *out = xstrdup(json_object_get_string(v));
    return true;
}

static bool req_str(struct json_object *obj, const char *where, const char *key, char **out,
                    struct verr *e)
{
    if (!get_str(obj, where, key, out, e))
        return false;
    if (!*out || !**out)
        return fail(e, "%s.%s: required", where, key);
    return true;
}

static bool get_bool(struct json_object *obj, const char *where, const char *key, bool *out,
                     struct verr *e)
{
    struct json_object *v;
    if (!json_object_object_get_ex(obj, key, &v))
        return true;
    if (!json_object_is_type(v, json_type_boolean))
        return fail(e, "%s.%s: must be true or false", where, key);
    *out = json_object_get_boolean(v);
    return true;
}

/* An integer given as a number or a numeric string, within [lo, hi]. */
static bool get_int(struct json_object *obj, const char *where, const char *key, int lo, int hi,
                    int *out, struct verr *e)
{
    struct json_object *v;
    if (!json_object_object_get_ex(obj, key, &v))
        return true;
    long long n;
    char *end = NULL;
    if (json_object_is_type(v, json_type_int))
        n = json_object_get_int64(v);
    else if (json_object_is_type(v, json_type_string)) {
        n = strtoll(json_object_get_string(v), &end, 10);
        if (!*json_object_get_string(v) || *end)
            return fail(e, "%s.%s: not a number: \"%s\"", where, key, json_object_get_string(v));
    } else
        return fail(e, "%s.%s: must be an integer", where, key);
    if (n < lo || n > hi)
        return fail(e, "%s.%s: %lld is out of range %d..%d", where, key, n, lo, hi);
    *out = (int)n;
    return true;
}

static bool parse_datasource(struct json_object *obj, struct tis_datasource *ds, struct verr *e)
{
    static const char *const known[] = {"plugin", "host",   "port",     "user", "password",
                                        "dbName", "pdAddrs", "tidbAddr", NULL};
    if (!obj || !json_object_is_type(obj, json_type_object))
        return fail(e, "datasource: required, an object with plugin, dbName, ...");
    if (!check_keys(obj, "datasource", known, e))
        return false;
    char *plugin = NULL;
    if (!req_str(obj, "datasource", "plugin", &plugin, e)) {
        free(plugin);
        return false;
    }
    bool known_plugin = true;
    if (strcasecmp(plugin, "TiKV") == 0)
        ds->plugin = PLUGIN_TIKV;
    else if (strcasecmp(plugin, "MySQL") == 0)
        ds->plugin = PLUGIN_MYSQL;
    else
        known_plugin = false;
    if (!known_plugin) {
        fail(e, "datasource.plugin: unknown plugin \"%s\" (known: TiKV, MySQL)", plugin);
        free(plugin);
        return false;
    }
    free(plugin);
    ds->port = 3306;
    if (!get_str(obj, "datasource", "host", &ds->host, e) ||
        !get_int(obj, "datasource", "port", 1, 65535, &ds->port, e) ||
        !get_str(obj, "datasource", "user", &ds->user, e) ||
        !get_str(obj, "datasource", "password", &ds->password, e) ||
        !req_str(obj, "datasource", "dbName", &ds->db, e) ||
        !get_str(obj, "datasource", "pdAddrs", &ds->pd_addrs, e) ||
        !get_str(obj, "datasource", "tidbAddr", &ds->tidb_addr, e))
        return false;
    if (ds->plugin == PLUGIN_MYSQL && (!ds->host || !*ds->host))
        return fail(e, "datasource.host: required by the MySQL plugin");
    if (ds->plugin == PLUGIN_TIKV && (!ds->pd_addrs || !*ds->pd_addrs) &&
        (!ds->tidb_addr || !*ds->tidb_addr))
        return fail(e, "datasource.pdAddrs: required by the TiKV plugin");
    if (!ds->user)
        ds->user = xstrdup("root");
    if (!ds->password)
        ds->password = xstrdup("");
    return true;
}

static bool parse_token(const char *where, const char *s, enum tis_token *out, struct verr *e)
{
    for (int t = TOK_STRING; t <= TOK_PINYIN; t++)
        if (strcmp(s, token_names[t]) == 0) {
            *out = (enum tis_token)t;
            return true;
        }
    return fail(e, "%s: unknown token \"%s\" (known: string, ik, like, text_ws, pinyin)", where,
                s);
}

/* MySQL limits identifiers to 64 characters, not bytes. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static bool parse_column(struct json_object *obj, size_t i, struct tis_column_spec *c,
                         struct verr *e)
{
    static const char *const known[] = {"name", "token", "parser", "search", "store", NULL};
    char where[48];
    snprintf(where, sizeof where, "columns[%zu]", i);
    if (!json_object_is_type(obj, json_type_object))
        return fail(e, "%s: must be an object {name, token, search}", where);
    if (!check_keys(obj, where, known, e))
        return false;
    c->search = true;
    c->store = true;
    char *tok = NULL, *parser = NULL;
    bool ok = req_str(obj, where, "name", &c->name, e) && get_str(obj, where, "token", &tok, e) &&
              get_str(obj, where, "parser", &parser, e) &&
              get_bool(obj, where, "search", &c->search, e) &&
              get_bool(obj, where, "store", &c->store, e);
    if (ok && tok && parser && strcmp(tok, parser) != 0)
        ok = fail(e, "%s: token \"%s\" and parser \"%s\" disagree", where, tok, parser);
    char tw[64];
    snprintf(tw, sizeof tw, "%s.token", where);
    if (ok && (tok || parser))
        ok = parse_token(tw, tok ? tok : parser, &c->token, e);
    if (ok && utf8_chars(c->name) > 64)
        ok = fail(e, "%s.name: longer than 64 characters", where);
    free(tok);
    free(parser);
    return ok;
}

static int cmp_col(const void *a, const void *b, void *cols)
{
    const struct tis_column_spec *c = cols;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int r = strcasecmp(c[i].name, c[j].name);
    return r ? r : (i > j) - (i < j);
}

/* Names sorted once (n log n: a spec of a million columns must not cost
 * seconds); the duplicate reported is the earliest second occurrence. */
static bool check_duplicates(const struct tis_spec *s, struct verr *e)
{
    size_t *ix = xmalloc(s->ncols * sizeof *ix), dup = SIZE_MAX, first = 0;
    for (size_t i = 0; i < s->ncols; i++)
        ix[i] = i;
    qsort_r(ix, s->ncols, sizeof *ix, cmp_col, s->cols);
    for (size_t k = 1, start = 0; k < s->ncols; k++) {
        if (strcasecmp(s->cols[ix[k]].name, s->cols[ix[start]].name) != 0)
            start = k;
        else if (k == start + 1 && ix[k] < dup) {
            dup = ix[k];
            first = ix[start];
        }
    }
    free(ix);
    if (dup == SIZE_MAX)
        return true;
    return fail(e, "columns[%zu]: duplicate column \"%s\" (also columns[%zu])", dup,
                s->cols[dup].name, first);
}

static bool parse_columns(struct json_object *arr, struct tis_spec *s, struct verr *e)
{
    if (!arr || !json_object_is_type(arr, json_type_array) || !json_object_array_length(arr))
        return fail(e, "columns: required, a non-empty array of {name, token, search}");
    if (json_object_array_length(arr) > SPEC_MAX_COLUMNS)
        return fail(e, "columns: %zu columns; a collection has at most %d (with its primary "
                       "key, every field needs one of 256 field ids)",
                    json_object_array_length(arr), SPEC_MAX_COLUMNS);
    s->ncols = json_object_array_length(arr);
    s->cols = xcalloc(s->ncols, sizeof *s->cols);
    for (size_t i = 0; i < s->ncols; i++)
        if (!parse_column(json_object_array_get_idx(arr, i), i, &s->cols[i], e))
            return false;
    return check_duplicates(s, e);
}

static bool parse_colmeta(struct json_object *cm, struct json_object **cols, struct tis_spec *s,
                          struct verr *e)
{
    static const char *const known[] = {"columns", "options", NULL};
    static const char *const known_opt[] = {"minGramSize", "maxGramSize", NULL};
    if (!json_object_is_type(cm, json_type_object))
        return fail(e, "colMeta: must be an object {columns, options}");
    if (!check_keys(cm, "colMeta", known, e))
        return false;
    json_object_object_get_ex(cm, "columns", cols);
    struct json_object *opt;
    if (!json_object_object_get_ex(cm, "options", &opt))
        return true;
    if (!json_object_is_type(opt, json_type_object))
        return fail(e, "colMeta.options: must be an object");
    if (!check_keys(opt, "colMeta.options", known_opt, e) ||
        !get_int(opt, "colMeta.options", "minGramSize", 1, 32, &s->min_gram, e) ||
        !get_int(opt, "colMeta.options", "maxGramSize", 1, 32, &s->max_gram, e))
        return false;
    /* Against the effective values: a minGramSize of 5 with the default
     * maxGramSize of 3 would index nothing at all. */
    int lo = s->min_gram ? s->min_gram : LIKE_MIN_GRAM_DEFAULT;
    int hi = s->max_gram ? s->max_gram : LIKE_MAX_GRAM_DEFAULT;
    if (lo > hi)
        return fail(e, "colMeta.options: minGramSize %d is larger than maxGramSize %d%s", lo, hi,
                    s->max_gram ? "" : " (the default): give maxGramSize too");
    return true;
}

static bool parse_incr(struct json_object *obj, const char *index, struct tis_incr_spec *in,
                       struct verr *e)
{
    static const char *const known[] = {"plugin",  "mqAddress",           "topic",
                                        "groupId", "offsetResetStrategy", "protocol", NULL};
    static const char *const resets[] = {"earliest", "latest", "none", NULL};
    static const char *const protos[] = {"open-protocol", "canal-json", "debezium", "simple",
                                         NULL};
    if (!json_object_is_type(obj, json_type_object))
        return fail(e, "incr: must be an object {plugin, mqAddress, topic, ...}");
    if (!check_keys(obj, "incr", known, e))
        return false;
    in->present = true;
    if (!req_str(obj, "incr", "plugin", &in->plugin, e) ||
        !req_str(obj, "incr", "mqAddress", &in->mq_address, e) ||
        !req_str(obj, "incr", "topic", &in->topic, e) ||
        !get_str(obj, "incr", "groupId", &in->group_id, e) ||
        !get_str(obj, "incr", "offsetResetStrategy", &in->offset_reset, e) ||
        !get_str(obj, "incr", "protocol", &in->protocol, e))
        return false;
    if (strcmp(in->plugin, "TiCDC-Kafka") != 0)
        return fail(e, "incr.plugin: unknown plugin \"%s\" (known: TiCDC-Kafka)", in->plugin);
    if (!in->group_id)
        asprintf(&in->group_id, "tisfs-%s", index);
    if (!in->offset_reset)
        in->offset_reset = xstrdup("earliest");
    bool ok = false;
    for (const char *const *r = resets; *r; r++)
        ok |= strcmp(*r, in->offset_reset) == 0;
    if (!ok)
        return fail(e, "incr.offsetResetStrategy: \"%s\" is not earliest, latest or none",
                    in->offset_reset);
    ok = !in->protocol;
    for (const char *const *p = protos; *p && in->protocol; p++)
        ok |= strcmp(*p, in->protocol) == 0;
    if (!ok)
        return fail(e,
                    "incr.protocol: unknown protocol \"%s\" (known: open-protocol, canal-json, "
                    "debezium, simple)",
                    in->protocol);
    return true;
}

static bool parse_top(const char *collection, struct json_object *obj, struct tis_spec *s,
                      struct verr *e)
{
    static const char *const known[] = {"datasource", "table",   "indexName",
                                        "columns",    "colMeta", "incr", NULL};
    if (!json_object_is_type(obj, json_type_object))
        return fail(e, "spec: must be an object {datasource, table, columns, ...}");
    if (!check_keys(obj, "spec", known, e))
        return false;
    struct json_object *ds = NULL, *cols = NULL, *cm = NULL, *incr = NULL;
    json_object_object_get_ex(obj, "datasource", &ds);
    if (!parse_datasource(ds, &s->ds, e) || !req_str(obj, "spec", "table", &s->table, e) ||
        !get_str(obj, "spec", "indexName", &s->index_name, e))
        return false;
    if (s->index_name && strcmp(s->index_name, collection) != 0)
        return fail(e, "indexName: \"%s\" does not match the collection \"%s\"", s->index_name,
                    collection);
    if (!s->index_name)
        s->index_name = xstrdup(collection);
    bool has_cols = json_object_object_get_ex(obj, "columns", &cols) && cols;
    if (json_object_object_get_ex(obj, "colMeta", &cm) && cm) {
        struct json_object *cm_cols = NULL;
        if (!parse_colmeta(cm, &cm_cols, s, e))
            return false;
        if (cm_cols && has_cols)
            return fail(e, "spec: give either columns or colMeta.columns, not both");
        if (cm_cols)
            cols = cm_cols;
    }
    if (!parse_columns(cols, s, e))
        return false;
    if (json_object_object_get_ex(obj, "incr", &incr) && !json_object_is_type(incr, json_type_null))
        return parse_incr(incr, s->index_name, &s->incr, e);
    return true;
}

struct tis_spec *spec_from_json(const char *collection, struct json_object *obj, char *err,
                                size_t errlen)
{
    struct verr e = {err, errlen, false};
    struct tis_spec *s = xcalloc(1, sizeof *s);
    s->refs = 1;
    if (!parse_top(collection, obj, s, &e)) {
        spec_free(s);
        return NULL;
    }
    return s;
}

struct tis_spec *spec_parse(const char *collection, const char *text, size_t len, char *err,
                            size_t errlen)
{
    char perr[200];
    struct json_object *obj = rjson_parse(text, len, perr, sizeof perr);
    if (!obj) {
        /* rjson returns NULL without an error for the literal null. */
        snprintf(err, errlen, perr[0] ? "malformed spec: %s" : "spec: must be an object%s", perr);
        return NULL;
    }
    struct tis_spec *s = spec_from_json(collection, obj, err, errlen);
    json_object_put(obj);
    return s;
}

static struct json_object *incr_json(const struct tis_incr_spec *in);

int spec_parse_incr(const char *collection, const char *text, size_t len,
                    struct tis_incr_spec *out, char *err, size_t errlen)
{
    char perr[200];
    struct verr e = {err, errlen, false};
    struct json_object *obj = rjson_parse(text, len, perr, sizeof perr), *v;
    memset(out, 0, sizeof *out);
    if (!obj || !json_object_is_type(obj, json_type_object)) {
        /* A bare number or string is valid JSON, not a channel spec (and
         * json-c asserts on object calls to it: a crash, found by fuzzing). */
        snprintf(err, errlen, !obj && perr[0] ? "malformed channel spec: %s"
                                              : "channel spec: must be an object%s",
                 !obj ? perr : "");
        json_object_put(obj);
        return -1;
    }
    bool ok = true;
    if (json_object_object_get_ex(obj, "indexName", &v) &&
        (!json_object_is_type(v, json_type_string) ||
         strcmp(json_object_get_string(v), collection) != 0))
        ok = fail(&e, "indexName: \"%s\" is not this collection (%s)",
                  json_object_get_string(v), collection);
    /* The seed's do_create_incr body wraps the block: {indexName, incr: {..}};
     * the bare block is accepted too. */
    struct json_object *blk = obj;
    if (ok && json_object_object_get_ex(obj, "incr", &v)) {
        static const char *const known[] = {"indexName", "incr", NULL};
        ok = check_keys(obj, "channel spec", known, &e);
        blk = v;
    } else if (ok)
        json_object_object_del(obj, "indexName");
    ok = ok && parse_incr(blk, collection, out, &e);
    json_object_put(obj);
    if (!ok)
        spec_incr_free(out);
    return ok ? 0 : -1;
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

void spec_incr_copy(struct tis_incr_spec *d, const struct tis_incr_spec *s)
{
    d->present = s->present;
    d->plugin = dup_or_null(s->plugin);
    d->mq_address = dup_or_null(s->mq_address);
    d->topic = dup_or_null(s->topic);
    d->group_id = dup_or_null(s->group_id);
    d->offset_reset = xstrdup(s->offset_reset ? s->offset_reset : "earliest");
    d->protocol = dup_or_null(s->protocol);
}

void spec_incr_free(struct tis_incr_spec *in)
{
    free(in->plugin);
    free(in->mq_address);
    free(in->topic);
    free(in->group_id);
    free(in->offset_reset);
    free(in->protocol);
    memset(in, 0, sizeof *in);
}

char *spec_incr_to_json(const struct tis_incr_spec *in)
{
    struct json_object *o = incr_json(in);
    char *r = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return r;
}

static void add_str(struct json_object *o, const char *k, const char *v)
{
    if (v)
        json_object_object_add(o, k, json_object_new_string(v));
}

static struct json_object *datasource_json(const struct tis_datasource *ds, bool masked)
{
    struct json_object *o = json_object_new_object();
    add_str(o, "plugin", ds->plugin == PLUGIN_TIKV ? "TiKV" : "MySQL");
    add_str(o, "host", ds->host);
    if (ds->plugin == PLUGIN_MYSQL)
        json_object_object_add(o, "port", json_object_new_int(ds->port));
    add_str(o, "user", ds->user);
    add_str(o, "password", masked && ds->password && *ds->password ? "******" : ds->password);
    add_str(o, "dbName", ds->db);
    if (masked && ds->pd_addrs) {
        char *shown = url_mask_credentials(ds->pd_addrs);
        add_str(o, "pdAddrs", shown);
        free(shown);
    } else
        add_str(o, "pdAddrs", ds->pd_addrs);
    add_str(o, "tidbAddr", ds->tidb_addr);
    return o;
}

static struct json_object *columns_json(const struct tis_spec *s)
{
    struct json_object *a = json_object_new_array();
    for (size_t i = 0; i < s->ncols; i++) {
        struct json_object *c = json_object_new_object();
        add_str(c, "name", s->cols[i].name);
        if (s->cols[i].token)
            add_str(c, "token", token_name(s->cols[i].token));
        json_object_object_add(c, "search", json_object_new_boolean(s->cols[i].search));
        json_object_object_add(c, "store", json_object_new_boolean(s->cols[i].store));
        json_object_array_add(a, c);
    }
    return a;
}

static struct json_object *incr_json(const struct tis_incr_spec *in)
{
    struct json_object *o = json_object_new_object();
    add_str(o, "plugin", in->plugin);
    add_str(o, "mqAddress", in->mq_address);
    add_str(o, "topic", in->topic);
    add_str(o, "groupId", in->group_id);
    add_str(o, "offsetResetStrategy", in->offset_reset);
    add_str(o, "protocol", in->protocol);
    return o;
}

struct json_object *spec_to_object(const struct tis_spec *s, bool masked)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "datasource", datasource_json(&s->ds, masked));
    add_str(o, "table", s->table);
    add_str(o, "indexName", s->index_name);
    json_object_object_add(o, "columns", columns_json(s));
    if (s->min_gram || s->max_gram) {
        struct json_object *opt = json_object_new_object();
        if (s->min_gram)
            json_object_object_add(opt, "minGramSize", json_object_new_int(s->min_gram));
        if (s->max_gram)
            json_object_object_add(opt, "maxGramSize", json_object_new_int(s->max_gram));
        struct json_object *cm = json_object_new_object();
        json_object_object_add(cm, "options", opt);
        json_object_object_add(o, "colMeta", cm);
    }
    if (s->incr.present)
        json_object_object_add(o, "incr", incr_json(&s->incr));
    return o;
}

char *spec_to_json(const struct tis_spec *s, bool masked)
{
    struct json_object *o = spec_to_object(s, masked);
    char *r = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return r;
}

struct tis_spec *spec_ref(struct tis_spec *s)
{
    __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
    return s;
}

struct tis_spec *spec_copy(const struct tis_spec *s)
{
    struct tis_spec *c = xcalloc(1, sizeof *c);
    *c = *s;
    c->refs = 1;
    c->index_name = dup_or_null(s->index_name);
    c->table = dup_or_null(s->table);
    c->ds.host = dup_or_null(s->ds.host);
    c->ds.user = dup_or_null(s->ds.user);
    c->ds.password = dup_or_null(s->ds.password);
    c->ds.db = dup_or_null(s->ds.db);
    c->ds.pd_addrs = dup_or_null(s->ds.pd_addrs);
    c->ds.tidb_addr = dup_or_null(s->ds.tidb_addr);
    c->cols = xcalloc(s->ncols ? s->ncols : 1, sizeof *c->cols);
    for (size_t i = 0; i < s->ncols; i++) {
        c->cols[i] = s->cols[i];
        c->cols[i].name = xstrdup(s->cols[i].name);
    }
    memset(&c->incr, 0, sizeof c->incr);
    if (s->incr.present)
        spec_incr_copy(&c->incr, &s->incr);
    return c;
}

void spec_free(struct tis_spec *s)
{
    if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    free(s->index_name);
    free(s->table);
    free(s->ds.host);
    free(s->ds.user);
    free(s->ds.password);
    free(s->ds.db);
    free(s->ds.pd_addrs);
    free(s->ds.tidb_addr);
    for (size_t i = 0; i < s->ncols; i++)
        free(s->cols[i].name);
    free(s->cols);
    spec_incr_free(&s->incr);
    free(s);
}
