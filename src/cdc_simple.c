/* cdc_simple — TiCDC's simple protocol, JSON flavour (v8.0+).
 *
 * One event per message. Row values are all strings (TiCDC's encodeValue):
 * numbers as decimal text, binary strings base64, ENUM and SET as their
 * index and bit set, TIMESTAMP as {"location": zone, "value": text}. A row
 * message names no column types; those come in BOOTSTRAP messages (sent
 * before a table's first row and then periodically) and in DDL messages'
 * tableSchema. They are kept in the event list's `tables` (json-c: they
 * outlive the message's parsed document) so that later rows get their
 * binary columns decoded and enums named. A row of a table
 * not seen yet goes out with its values as sent. */
#include "cdc_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys of `tables`: database and table joined by a byte no name has. */
static char *table_key(const char *db, const char *tbl)
{
    struct tbuf k = {0};
    tbuf_printf(&k, "%s\x1f%s", db, tbl);
    return tbuf_take(&k);
}

/* json-c's member key as a string, NULL if absent or not one. */
static const char *kept_str(struct json_object *o, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

/* column name -> dataType of one tableSchema, replacing what was known. */
static void learn(struct cdc_events *e, const struct jval *ts)
{
    const char *db = cdc_get_str(ts, "schema"), *tbl = cdc_get_str(ts, "table");
    const struct jval *cols = cdc_get(ts, "columns");
    struct json_object *map, *dto;
    char *key;

    if (!db || !tbl || !jv_is(cols, JV_ARR))
        return;
    map = json_object_new_object();
    jv_foreach(cols, col) {
        const struct jval *dt = cdc_get(col, "dataType");
        const char *name = cdc_get_str(col, "name");
        if (name && jv_is(dt, JV_OBJ) && (dto = cdc_json_c(e, dt)))
            json_object_object_add(map, name, dto);
    }
    if (!e->tables)
        e->tables = json_object_new_object();
    key = table_key(db, tbl);
    json_object_object_add(e->tables, key, map);
    free(key);
}

static struct json_object *known_columns(struct cdc_events *e, const char *db, const char *tbl)
{
    char *key = table_key(db, tbl);
    struct json_object *map = NULL;
    json_object_object_get_ex(e->tables, key, &map);
    free(key);
    return map;
}

static const char *element(struct json_object *elems, size_t i)
{
    struct json_object *e = json_object_array_get_idx(elems, i);
    return json_object_is_type(e, json_type_string) ? json_object_get_string(e) : "";
}

/* The element names an ENUM index or SET bit set stands for, as MySQL
 * prints them; false (value left as sent) when they do not fit. */
static bool put_members(struct tbuf *b, const struct jval *v, struct json_object *elems, bool set)
{
    size_t n = json_object_is_type(elems, json_type_array) ? json_object_array_length(elems) : 0;
    bool first = true;
    uint64_t x;

    if (!n || !cdc_json_u64(v, &x) || (set ? n < 64 && x >> n : x > n))
        return false;
    if (!set && x)
        tbuf_adds(b, element(elems, x - 1));
    for (size_t i = 0; set && i < n && i < 64; i++)
        if (x >> i & 1) {
            tbuf_printf(b, "%s%s", first ? "" : ",", element(elems, i));
            first = false;
        }
    return true;
}

/* One value, typed by what the column's dataType says (dt may be NULL). */
static int value(struct cdc_ctx *c, const char *where, const struct jval *v,
                 struct json_object *dt, struct tis_value *out)
{
    const char *mt = kept_str(dt, "mysqlType");
    struct json_object *elems = NULL;
    struct tbuf *b = &c->out->scratch;

    if (jv_is(v, JV_OBJ)) {
        v = cdc_get(v, "value");
        if (!jv_is(v, JV_STR))
            return cdc_fail(c, "%s: object value without a string \"value\"", where);
    }
    if (!mt || !jv_is(v, JV_STR))
        return cdc_scalar(c, v, out, where);
    if (strstr(mt, "blob") || strstr(mt, "binary")) {
        if (!cdc_decode_into(c->out, out, cdc_base64, v->s, v->len))
            return cdc_fail(c, "%s: binary value is not base64", where);
        return 0;
    }
    tbuf_reset(b);
    json_object_object_get_ex(dt, "elements", &elems);
    if ((!strcmp(mt, "enum") || !strcmp(mt, "set")) &&
        put_members(b, v, elems, mt[0] == 's')) {
        cdc_value_set(c->out, out, b->len ? b->data : "", b->len);
        return 0;
    }
    return cdc_scalar(c, v, out, where);
}

/* types: the table's learnt column map, NULL when none came yet. */
static int image(struct cdc_ctx *c, const char *which, const struct jval *img,
                 struct json_object *types, struct cdc_row *r)
{
    char where[160];

    cdc_row_init(c->out, r, img->len);
    r->untyped = types == NULL;
    jv_foreach(img, v) {
        struct tis_value *out = cdc_row_add(c->out, r, v->key);
        struct json_object *dt = NULL;
        json_object_object_get_ex(types, v->key, &dt);
        const struct jval *x = v->type == JV_NULL ? NULL : v;
        /* The place is spelled out only for an error: a second pass. */
        if (value(c, "", x, dt, out) < 0) {
            snprintf(where, sizeof where, "%s.%s", which, v->key);
            return value(c, where, x, dt, out);
        }
    }
    return 0;
}

static struct version commit_version(const struct jval *m)
{
    struct version v = {VER_NONE, 0};
    if (cdc_get_u64(m, "commitTs", &v.v))
        v.domain = VER_TSO;
    return v;
}

/* INSERT has data, DELETE old, UPDATE both (old the full previous row). */
static int dml(struct cdc_ctx *c, const struct jval *m, enum cdc_op op)
{
    const struct jval *data = cdc_get(m, "data"), *old = cdc_get(m, "old");
    struct json_object *types;
    const char *db = cdc_get_str(m, "database"), *tbl = cdc_get_str(m, "table");
    const char *ccl = cdc_get_str(m, "claimCheckLocation");
    struct cdc_event *ev;

    db = db ? db : "";
    tbl = tbl ? tbl : "";
    if (ccl)
        return cdc_fail(c, "claim-check message (row stored at \"%.200s\"): not supported", ccl);
    if (op != CDC_DELETE && cdc_get_bool(m, "handleKeyOnly")) /* (see cdc_open.c's row) */
        return cdc_fail(c, CDC_HANDLE_KEY_ONLY);
    if ((data && !jv_is(data, JV_OBJ)) || (old && !jv_is(old, JV_OBJ)))
        return cdc_fail(c, "\"data\" and \"old\" must be objects");
    if (op == CDC_DELETE ? !old : !data)
        return cdc_fail(c, "%s without \"%s\"", op == CDC_DELETE ? "DELETE" : "INSERT/UPDATE",
                        op == CDC_DELETE ? "old" : "data");
    types = known_columns(c->out, db, tbl);
    ev = cdc_add_event(c->out, CDC_ROW);
    ev->op = op;
    ev->db = cdc_copy(c->out, db, strlen(db));
    ev->table = cdc_copy(c->out, tbl, strlen(tbl));
    ev->ver = commit_version(m);
    if (op != CDC_DELETE && image(c, "data", data, types, &ev->after) < 0)
        return -1;
    return op != CDC_INSERT && old ? image(c, "old", old, types, &ev->before) : 0;
}

/* DDL messages name their table only in tableSchema (preTableSchema for a
 * dropped one); the SQL decides the kind, the type when the text does not. */
static int ddl(struct cdc_ctx *c, const struct jval *m, const char *type)
{
    const struct jval *ts = cdc_get(m, "tableSchema");
    const char *sql = cdc_get_str(m, "sql"), *db, *tbl;
    struct cdc_event *ev;

    if (!ts)
        ts = cdc_get(m, "preTableSchema");
    db = ts ? cdc_get_str(ts, "schema") : cdc_get_str(m, "database");
    tbl = ts ? cdc_get_str(ts, "table") : cdc_get_str(m, "table");
    learn(c->out, cdc_get(m, "tableSchema"));
    ev = cdc_add_event(c->out, CDC_DDL);
    ev->ver = commit_version(m);
    ev->db = db ? cdc_copy(c->out, db, strlen(db)) : "";
    ev->table = tbl ? cdc_copy(c->out, tbl, strlen(tbl)) : "";
    ev->sql = sql ? cdc_copy(c->out, sql, strlen(sql)) : "";
    ev->ddl = cdc_ddl_classify(ev->sql);
    if (ev->ddl == DDL_OTHER && !strcmp(type, "TRUNCATE"))
        ev->ddl = DDL_TRUNCATE;
    if (ev->ddl == DDL_OTHER && !strcmp(type, "ERASE"))
        ev->ddl = DDL_DROP;
    return 0;
}

/* TiCDC's encoder writes commitTs; checkpointTs, which no TiCDC release
 * writes as far as its history shows, is accepted as a fallback only. */
static int watermark(struct cdc_ctx *c, const struct jval *m)
{
    struct cdc_event *ev;
    uint64_t ts;

    if (!cdc_get_u64(m, "commitTs", &ts) && !cdc_get_u64(m, "checkpointTs", &ts))
        return cdc_fail(c, "WATERMARK without commitTs");
    ev = cdc_add_event(c->out, CDC_RESOLVED);
    ev->ver.domain = VER_TSO;
    ev->ver.v = ts;
    return 0;
}

static bool is_ddl_type(const char *t)
{
    static const char *const types[] = {"DDL",      "CREATE", "RENAME", "CINDEX", "DINDEX",
                                        "ERASE", "TRUNCATE", "ALTER",  "QUERY",  NULL};
    for (const char *const *p = types; *p; p++)
        if (!strcmp(t, *p))
            return true;
    return false;
}

/* BOOTSTRAP only teaches; every other type makes exactly one event. */
static int message(struct cdc_ctx *c, const struct jval *m)
{
    const char *type = cdc_get_str(m, "type");

    if (!jv_is(m, JV_OBJ))
        return cdc_fail(c, "value is not a JSON object");
    if (!type)
        return cdc_fail(c, "no message \"type\"");
    if (!strcmp(type, "BOOTSTRAP")) {
        learn(c->out, cdc_get(m, "tableSchema"));
        return 0;
    }
    if (!strcmp(type, "WATERMARK"))
        return watermark(c, m);
    if (!strcmp(type, "INSERT"))
        return dml(c, m, CDC_INSERT);
    if (!strcmp(type, "UPDATE"))
        return dml(c, m, CDC_UPDATE);
    if (!strcmp(type, "DELETE"))
        return dml(c, m, CDC_DELETE);
    if (is_ddl_type(type))
        return ddl(c, m, type);
    return cdc_fail(c, "unknown message type \"%.40s\"", type);
}

int cdc_simple_decode(struct cdc_ctx *c, const unsigned char *val, size_t vlen)
{
    return cdc_json_message(c, val, vlen, message);
}
