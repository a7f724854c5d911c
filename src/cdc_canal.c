/* cdc_canal — canal-json (Alibaba Canal's flat message, as TiCDC writes it).
 *
 * One event per message, fields read by name. "data" holds one row object
 * per changed row (values are strings or null); for an UPDATE, "old" holds
 * the previous values, only of the changed columns in Canal proper (all of
 * them in TiCDC by default), so the before image is data overlaid with old.
 * Binary columns (mysqlType blob/binary/varbinary) were sent as ISO-8859-1
 * text, one code point per byte, as TiCDC's canal_entry.go does. */
#include "cdc_internal.h"

#include <stdio.h>
#include <string.h>

/* Only the base type counts: a full type such as "enum('binary')" must not
 * make a text column binary. MySQL's binary base types end in "blob"
 * (tinyblob ... longblob) or "binary" (binary, varbinary): a suffix test,
 * not a copy and two strstr, which were a twentieth of the decoding
 * thread. */
static bool binary_type(const struct jval *types, const char *name, const struct jval **hint)
{
    const struct jval *v = jv_get_hinted(types, name, hint);
    const char *t = jv_is(v, JV_STR) ? v->s : NULL;
    size_t n = 0;

    if (!t)
        return false;
    while (t[n] && t[n] != '(' && t[n] != ' ')
        n++;
    return (n >= 4 && memcmp(t + n - 4, "blob", 4) == 0) ||
           (n >= 6 && memcmp(t + n - 6, "binary", 6) == 0);
}

/* Only a string can carry a binary column's bytes; null stays null. The
 * place (img[i].name) is only spelled out for an error. */
static int value(struct cdc_ctx *c, int i, const char *img, const char *name,
                 const struct jval *v, bool binary, struct tis_value *out)
{
    char where[160] = "";
    if (!binary || !jv_is(v, JV_STR)) {
        if (v && (v->type == JV_OBJ || v->type == JV_ARR))
            snprintf(where, sizeof where, "%s[%d].%s", img, i, name);
        return cdc_scalar(c, v, out, where);
    }
    if (!cdc_decode_into(c->out, out, cdc_latin1, v->s, v->len)) {
        snprintf(where, sizeof where, "%s[%d].%s", img, i, name);
        return cdc_fail(c, "%s: binary value has a character above U+00FF", where);
    }
    return 0;
}

/* data[i] (and, for an update's before image, old[i] over it) into r. */
static int image(struct cdc_ctx *c, int i, const struct jval *row, const struct jval *over,
                 const struct jval *types, struct cdc_row *r)
{
    const struct jval *o, *hint = NULL;

    cdc_row_init(c->out, r, row->len + (over ? over->len : 0));
    jv_foreach(row, m) {
        const struct jval *v = over && (o = jv_get(over, m->key)) ? o : m;
        if (value(c, i, "data", m->key, v, binary_type(types, m->key, &hint),
                  cdc_row_add(c->out, r, m->key)) < 0)
            return -1;
    }
    if (!over)
        return 0;
    jv_foreach(over, om) {
        if (jv_get(row, om->key))
            continue;
        if (value(c, i, "old", om->key, om, binary_type(types, om->key, &hint),
                  cdc_row_add(c->out, r, om->key)) < 0)
            return -1;
    }
    return 0;
}

/* The next element of old (walked beside data: jv_at from the start for
 * each row made a message of many rows quadratic), which must be an
 * object when present; *at moves past it. */
static int old_row(struct cdc_ctx *c, const struct jval *old, const struct jval **at, int i,
                   const struct jval **o)
{
    *o = NULL;
    if (!old || !*at || *at >= old + old->span)
        return 0;
    *o = *at;
    *at += (*at)->span;
    if (!jv_is(*o, JV_OBJ))
        return cdc_fail(c, "old[%d]: not an object", i);
    return 0;
}

/* One row event per element of data. */
static int rows(struct cdc_ctx *c, const struct jval *m, enum cdc_op op, struct version ver)
{
    const struct jval *data = cdc_get(m, "data"), *old = cdc_get(m, "old");
    const struct jval *types = cdc_get(m, "mysqlType");
    const char *db = cdc_get_str(m, "database"), *tbl = cdc_get_str(m, "table");

    if (!jv_is(data, JV_ARR))
        return cdc_fail(c, "\"data\" is not an array");
    if (old && !jv_is(old, JV_ARR))
        return cdc_fail(c, "\"old\" is not an array");
    db = cdc_copy(c->out, db ? db : "", db ? strlen(db) : 0);
    tbl = cdc_copy(c->out, tbl ? tbl : "", tbl ? strlen(tbl) : 0);
    int i = 0;
    const struct jval *old_at = old && old->len ? old + 1 : NULL;
    jv_foreach(data, row) {
        const struct jval *prev;
        struct cdc_event *ev;
        if (!jv_is(row, JV_OBJ))
            return cdc_fail(c, "data[%d]: not an object", i);
        if (old_row(c, old, &old_at, i, &prev) < 0)
            return -1;
        ev = cdc_add_event(c->out, CDC_ROW);
        ev->op = op;
        ev->db = db;
        ev->table = tbl;
        ev->ver = ver;
        if (image(c, i, row, NULL, types, op == CDC_DELETE ? &ev->before : &ev->after) < 0)
            return -1;
        if (op == CDC_UPDATE && prev && image(c, i, row, prev, types, &ev->before) < 0)
            return -1;
        i++;
    }
    return 0;
}

/* The SQL decides; Canal's type only helps when the text does not say. */
static int ddl(struct cdc_ctx *c, const struct jval *m, const char *type, struct version ver)
{
    const char *sql = cdc_get_str(m, "sql"), *db = cdc_get_str(m, "database");
    const char *tbl = cdc_get_str(m, "table");
    struct cdc_event *ev = cdc_add_event(c->out, CDC_DDL);

    ev->ver = ver;
    ev->db = db ? cdc_copy(c->out, db, strlen(db)) : "";
    ev->table = tbl ? cdc_copy(c->out, tbl, strlen(tbl)) : "";
    ev->sql = sql ? cdc_copy(c->out, sql, strlen(sql)) : "";
    ev->ddl = cdc_ddl_classify(ev->sql);
    if (ev->ddl == DDL_OTHER && strcmp(type, "TRUNCATE") == 0)
        ev->ddl = DDL_TRUNCATE;
    if (ev->ddl == DDL_OTHER && strcmp(type, "ERASE") == 0)
        ev->ddl = DDL_DROP;
    return 0;
}

/* Only TiCDC's extension sends watermarks, always with watermarkTs. */
static int watermark(struct cdc_ctx *c, const struct jval *tidb)
{
    struct cdc_event *ev;
    uint64_t ts;

    if (!cdc_get_u64(tidb, "watermarkTs", &ts))
        return cdc_fail(c, "TIDB_WATERMARK without _tidb.watermarkTs");
    ev = cdc_add_event(c->out, CDC_RESOLVED);
    ev->ver.domain = VER_TSO;
    ev->ver.v = ts;
    return 0;
}

/* TiDB's commit ts when the TiDB extension is on; otherwise es, which only
 * orders to the millisecond. */
static struct version version(const struct jval *m, const struct jval *tidb)
{
    struct version v = {VER_NONE, 0};

    if (cdc_get_u64(tidb, "commitTs", &v.v))
        v.domain = VER_TSO;
    else if (cdc_get_u64(m, "es", &v.v))
        v.domain = VER_MS;
    return v;
}

/* The watermark first: it is neither DDL nor DML and carries no data. */
static int message(struct cdc_ctx *c, const struct jval *m)
{
    const struct jval *tidb = cdc_get(m, "_tidb");
    const char *type = cdc_get_str(m, "type"), *ccl = cdc_get_str(tidb, "claimCheckLocation");

    if (!jv_is(m, JV_OBJ))
        return cdc_fail(c, "value is not a JSON object");
    if (!type)
        return cdc_fail(c, "no event \"type\"");
    if (strcmp(type, "TIDB_WATERMARK") == 0)
        return watermark(c, tidb);
    if (ccl)
        return cdc_fail(c, "claim-check message (row stored at \"%.200s\"): not supported", ccl);
    if (cdc_get_bool(tidb, "onlyHandleKey") && strcmp(type, "DELETE") != 0 &&
        !cdc_get_bool(m, "isDdl")) /* (see cdc_open.c's row) */
        return cdc_fail(c, CDC_HANDLE_KEY_ONLY);
    if (cdc_get_bool(m, "isDdl"))
        return ddl(c, m, type, version(m, tidb));
    if (strcmp(type, "INSERT") == 0)
        return rows(c, m, CDC_INSERT, version(m, tidb));
    if (strcmp(type, "UPDATE") == 0)
        return rows(c, m, CDC_UPDATE, version(m, tidb));
    if (strcmp(type, "DELETE") == 0)
        return rows(c, m, CDC_DELETE, version(m, tidb));
    return cdc_fail(c, "unknown event type \"%.40s\"", type);
}

int cdc_canal_decode(struct cdc_ctx *c, const unsigned char *val, size_t vlen)
{
    return cdc_json_message(c, val, vlen, message);
}
