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
 * make a text column binary. */
static bool binary_type(struct json_object *types, const char *name)
{
    const char *t = cdc_get_str(types, name);
    char base[32];
    size_t n;

    if (!t)
        return false;
    n = strcspn(t, "( ");
    if (n >= sizeof base)
        return false;
    memcpy(base, t, n);
    base[n] = 0;
    return strstr(base, "blob") || strstr(base, "binary");
}

/* Only a string can carry a binary column's bytes; null stays null. */
static int value(struct cdc_ctx *c, const char *where, struct json_object *v, bool binary,
                 struct tis_value *out)
{
    if (!binary || !json_object_is_type(v, json_type_string))
        return cdc_scalar(c, v, out, where);
    if (!cdc_decode_into(c->out, out, cdc_latin1, json_object_get_string(v),
                         (size_t)json_object_get_string_len(v)))
        return cdc_fail(c, "%s: binary value has a character above U+00FF", where);
    return 0;
}

/* data[i] (and, for an update's before image, old[i] over it) into r. */
static int image(struct cdc_ctx *c, int i, struct json_object *row, struct json_object *over,
                 struct json_object *types, struct cdc_row *r)
{
    struct json_object *o;
    char where[160];

    cdc_row_init(c->out, r, (size_t)json_object_object_length(row) +
                                (over ? (size_t)json_object_object_length(over) : 0));
    json_object_object_foreach(row, name, v) {
        snprintf(where, sizeof where, "data[%d].%s", i, name);
        if (over && json_object_object_get_ex(over, name, &o))
            v = o;
        if (value(c, where, v, binary_type(types, name), cdc_row_add(c->out, r, name)) < 0)
            return -1;
    }
    if (!over)
        return 0;
    json_object_object_foreach(over, oname, ov) {
        snprintf(where, sizeof where, "old[%d].%s", i, oname);
        if (json_object_object_get_ex(row, oname, NULL))
            continue;
        if (value(c, where, ov, binary_type(types, oname), cdc_row_add(c->out, r, oname)) < 0)
            return -1;
    }
    return 0;
}

/* The i-th element of old, which must be an object when present. */
static int old_row(struct cdc_ctx *c, struct json_object *old, int i, struct json_object **o)
{
    *o = json_object_is_type(old, json_type_array) && (size_t)i < json_object_array_length(old)
             ? json_object_array_get_idx(old, (size_t)i)
             : NULL;
    if (*o && !json_object_is_type(*o, json_type_object))
        return cdc_fail(c, "old[%d]: not an object", i);
    return 0;
}

/* One row event per element of data. */
static int rows(struct cdc_ctx *c, struct json_object *m, enum cdc_op op, struct version ver)
{
    struct json_object *data = cdc_get(m, "data"), *old = cdc_get(m, "old");
    struct json_object *types = cdc_get(m, "mysqlType");
    const char *db = cdc_get_str(m, "database"), *tbl = cdc_get_str(m, "table");

    if (!json_object_is_type(data, json_type_array))
        return cdc_fail(c, "\"data\" is not an array");
    if (old && !json_object_is_type(old, json_type_array))
        return cdc_fail(c, "\"old\" is not an array");
    db = cdc_copy(c->out, db ? db : "", db ? strlen(db) : 0);
    tbl = cdc_copy(c->out, tbl ? tbl : "", tbl ? strlen(tbl) : 0);
    for (int i = 0; (size_t)i < json_object_array_length(data); i++) {
        struct json_object *row = json_object_array_get_idx(data, (size_t)i), *prev;
        struct cdc_event *ev;
        if (!json_object_is_type(row, json_type_object))
            return cdc_fail(c, "data[%d]: not an object", i);
        if (old_row(c, old, i, &prev) < 0)
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
    }
    return 0;
}

/* The SQL decides; Canal's type only helps when the text does not say. */
static int ddl(struct cdc_ctx *c, struct json_object *m, const char *type, struct version ver)
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
static int watermark(struct cdc_ctx *c, struct json_object *tidb)
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
static struct version version(struct json_object *m, struct json_object *tidb)
{
    struct version v = {VER_NONE, 0};

    if (cdc_get_u64(tidb, "commitTs", &v.v))
        v.domain = VER_TSO;
    else if (cdc_get_u64(m, "es", &v.v))
        v.domain = VER_MS;
    return v;
}

/* The watermark first: it is neither DDL nor DML and carries no data. */
static int message(struct cdc_ctx *c, struct json_object *m)
{
    struct json_object *tidb = cdc_get(m, "_tidb");
    const char *type = cdc_get_str(m, "type"), *ccl = cdc_get_str(tidb, "claimCheckLocation");

    if (!json_object_is_type(m, json_type_object))
        return cdc_fail(c, "value is not a JSON object");
    if (!type)
        return cdc_fail(c, "no event \"type\"");
    if (strcmp(type, "TIDB_WATERMARK") == 0)
        return watermark(c, tidb);
    if (ccl)
        return cdc_fail(c, "claim-check message (row stored at \"%.200s\"): not supported", ccl);
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
