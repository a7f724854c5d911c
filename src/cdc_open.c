/* cdc_open — TiCDC's open protocol.
 *
 * A message batches events: the key is a version (1) then [u64 length][key
 * JSON] items, the value [u64 length][value JSON] items, the i-th value
 * belonging to the i-th row or DDL key. Every length is checked against what
 * is left before it is used, so a lying length is an error, never a read
 * past the end.
 *
 * Column values follow TiCDC's internal/column.go: blobs and texts are
 * base64, binary CHAR/VARCHAR are the inside of a Go-quoted string, numbers
 * are JSON numbers (taken by their text). Releases before 2020-07 wrote no
 * "f" (flags) and sent every CHAR/VARCHAR as base64 (Go's encoding of a
 * []byte); a column without "f" is decoded that way. */
#include "cdc_internal.h"

#include <stdio.h>
#include <string.h>

enum {
    T_ROW = 1,
    T_DDL = 2,
    T_RESOLVED = 3,
    F_BINARY = 0x01,
    /* MySQL type codes */
    TY_VARCHAR = 15,
    TY_TINYBLOB = 249,
    TY_BLOB = 252,
    TY_VARSTRING = 253,
    TY_STRING = 254,
};

/* The next [u64 length][bytes] item of a key or value at *off. */
static int next_item(struct cdc_ctx *c, const char *part, int idx, const unsigned char *p,
                     size_t n, size_t *off, const unsigned char **item, size_t *ilen)
{
    uint64_t len;

    if (n - *off < 8)
        return cdc_fail(c, "%s %d: truncated length at byte %zu of %zu", part, idx, *off, n);
    len = get_be64(p + *off);
    if (len > n - *off - 8)
        return cdc_fail(c, "%s %d: length %llu at byte %zu runs past the end (%zu bytes)", part,
                        idx, (unsigned long long)len, *off, n);
    *item = p + *off + 8;
    *ilen = (size_t)len;
    *off += 8 + (size_t)len;
    return 0;
}

/* TiDB's action types for the statements classify knows, for a query text
 * classify cannot read (a leading executable comment, say). */
static enum cdc_ddl ddl_from_action(uint64_t t)
{
    switch (t) {
    case 2: /* ActionDropSchema */
    case 4: /* ActionDropTable */
        return DDL_DROP;
    case 5:
        return DDL_ADD_COLUMN;
    case 6:
        return DDL_DROP_COLUMN;
    case 11:
        return DDL_TRUNCATE;
    case 20: /* ActionDropTablePartition */
    case 23: /* ActionTruncateTablePartition */
    case 42: /* ActionExchangeTablePartition */
        return DDL_PARTITION_ROWS;
    default:
        return DDL_OTHER;
    }
}

/* A string value by type and flags; everything else goes by its JSON text. */
static int column_string(struct cdc_ctx *c, const char *where, uint64_t type, bool has_flags,
                         uint64_t flags, const struct jval *val, struct tis_value *v)
{
    const char *s = val->s;
    size_t n = val->len;
    bool chars = type == TY_VARCHAR || type == TY_VARSTRING || type == TY_STRING;

    if (type >= TY_TINYBLOB && type <= TY_BLOB) {
        if (!cdc_decode_into(c->out, v, cdc_base64, s, n))
            return cdc_fail(c, "%s: blob value is not base64", where);
    } else if (chars && has_flags && (flags & F_BINARY)) {
        if (!cdc_decode_into(c->out, v, cdc_go_unquote, s, n))
            return cdc_fail(c, "%s: bad escape in binary string", where);
    } else if (!(chars && !has_flags && cdc_decode_into(c->out, v, cdc_base64, s, n))) {
        cdc_value_set(c->out, v, s, n);
    }
    return 0;
}

/* One column object {"t":type,"h":handle,"f":flags,"v":value}. */
static int column(struct cdc_ctx *c, const char *where, const struct jval *col,
                  struct tis_value *v)
{
    const struct jval *f = jv_get(col, "f"), *val = cdc_get(col, "v");
    uint64_t type, flags = 0;
    bool has_flags = f != NULL;

    if (!jv_is(col, JV_OBJ))
        return cdc_fail(c, "%s: not a column object", where);
    if (f && f->type == JV_NULL)
        f = NULL; /* "f":null: flags 0, as json-c's lookup gave */
    if (!cdc_get_u64(col, "t", &type))
        return cdc_fail(c, "%s: no type \"t\"", where);
    if (f && !cdc_json_u64(f, &flags))
        return cdc_fail(c, "%s: flags \"f\" is not a number", where);
    if (jv_is(val, JV_STR))
        return column_string(c, where, type, has_flags, flags, val, v);
    return cdc_scalar(c, val, v, where);
}

/* A row image {"name": column, ...} into r. */
static int image(struct cdc_ctx *c, int idx, const char *which, const struct jval *img,
                 struct cdc_row *r)
{
    char where[160];

    cdc_row_init(c->out, r, img->len);
    jv_foreach(img, col) {
        struct tis_value *v = cdc_row_add(c->out, r, col->key);
        /* The place is spelled out only for an error: a second pass. */
        if (column(c, "", col, v) < 0) {
            snprintf(where, sizeof where, "value %d: %s.%s", idx, which, col->key);
            return column(c, where, col, v);
        }
    }
    return 0;
}

/* Names and commit version every event of a key carries. */
static void event_head(struct cdc_ctx *c, struct cdc_event *ev, const struct jval *k, uint64_t ts)
{
    const char *db = cdc_get_str(k, "scm"), *tbl = cdc_get_str(k, "tbl");

    ev->db = db ? cdc_copy(c->out, db, strlen(db)) : "";
    ev->table = tbl ? cdc_copy(c->out, tbl, strlen(tbl)) : "";
    ev->ver.domain = VER_TSO;
    ev->ver.v = ts;
}

/* {"u":..} insert, {"u":..,"p":..} update, {"d":..} delete. An update sent
 * without old values (open-output-old-value off) looks like an insert;
 * TiCDC's own decoder cannot tell them apart either. */
static int row(struct cdc_ctx *c, int idx, const struct jval *k, const struct jval *v,
               uint64_t ts)
{
    const struct jval *u = cdc_get(v, "u"), *p = cdc_get(v, "p"), *d = cdc_get(v, "d");
    struct cdc_event *ev;

    if (!jv_is(v, JV_OBJ))
        return cdc_fail(c, "value %d: not a JSON object", idx);
    if ((u && !jv_is(u, JV_OBJ)) || (p && !jv_is(p, JV_OBJ)) || (d && !jv_is(d, JV_OBJ)))
        return cdc_fail(c, "value %d: \"u\", \"p\" and \"d\" must be objects", idx);
    if (!u && !d)
        return cdc_fail(c, "value %d: row event with neither \"u\" nor \"d\"", idx);
    /* The row was too large for the topic and TiCDC sent its key alone
     * (large-message-handle-option=handle-key-only): merged as a partial
     * image it would empty the other columns. A delete needs only the key. */
    if (!d && cdc_get_bool(k, "ohk"))
        return cdc_fail(c, "value %d: " CDC_HANDLE_KEY_ONLY, idx);
    ev = cdc_add_event(c->out, CDC_ROW);
    event_head(c, ev, k, ts);
    if (d) {
        ev->op = CDC_DELETE;
        return image(c, idx, "d", d, &ev->before);
    }
    ev->op = p ? CDC_UPDATE : CDC_INSERT;
    if (image(c, idx, "u", u, &ev->after) < 0)
        return -1;
    return p ? image(c, idx, "p", p, &ev->before) : 0;
}

/* The query decides the kind; the action type covers texts it cannot read. */
static int ddl(struct cdc_ctx *c, int idx, const struct jval *k, const struct jval *v,
               uint64_t ts)
{
    const char *q = cdc_get_str(v, "q");
    uint64_t action = 0;
    struct cdc_event *ev;

    if (!q)
        return cdc_fail(c, "value %d: DDL event without a query \"q\"", idx);
    cdc_get_u64(v, "t", &action);
    ev = cdc_add_event(c->out, CDC_DDL);
    event_head(c, ev, k, ts);
    ev->sql = cdc_copy(c->out, q, strlen(q));
    ev->ddl = cdc_ddl_classify(q);
    if (ev->ddl == DDL_OTHER)
        ev->ddl = ddl_from_action(action);
    return 0;
}

/* A resolved event's value is one empty item, or nothing at all. */
static int resolved(struct cdc_ctx *c, int idx, uint64_t ts, const unsigned char *val,
                    size_t vlen, size_t *voff)
{
    const unsigned char *item;
    size_t ilen;
    struct cdc_event *ev;

    if (*voff < vlen && next_item(c, "value", idx, val, vlen, voff, &item, &ilen) < 0)
        return -1;
    ev = cdc_add_event(c->out, CDC_RESOLVED);
    ev->ver.domain = VER_TSO;
    ev->ver.v = ts;
    return 0;
}

/* The value of a row or DDL key, parsed and dispatched. */
static int keyed_value(struct cdc_ctx *c, int idx, const struct jval *k, uint64_t t,
                       uint64_t ts, const unsigned char *val, size_t vlen, size_t *voff)
{
    const unsigned char *item = NULL;
    size_t ilen = 0;
    const struct jval *v;
    char what[32];

    if (*voff >= vlen)
        return cdc_fail(c, "value %d: missing (the key holds more events than the value)", idx);
    if (next_item(c, "value", idx, val, vlen, voff, &item, &ilen) < 0)
        return -1;
    snprintf(what, sizeof what, "value %d", idx);
    if (cdc_json_parse(c, 0, what, item, ilen, &v) < 0)
        return -1;
    return t == T_ROW ? row(c, idx, k, v, ts) : ddl(c, idx, k, v, ts);
}

/* One parsed key: its type decides whether it owns a value. */
static int keyed(struct cdc_ctx *c, int idx, const struct jval *k, const unsigned char *val,
                 size_t vlen, size_t *voff)
{
    uint64_t t, ts;
    const char *ccl = cdc_get_str(k, "ccl");

    if (!jv_is(k, JV_OBJ))
        return cdc_fail(c, "key %d: not a JSON object", idx);
    if (!cdc_get_u64(k, "t", &t))
        return cdc_fail(c, "key %d: no event type \"t\"", idx);
    if (!cdc_get_u64(k, "ts", &ts))
        return cdc_fail(c, "key %d: no commit ts \"ts\"", idx);
    if (ccl)
        return cdc_fail(c, "key %d: claim-check message (row stored at \"%.200s\"): not supported",
                        idx, ccl);
    if (t == T_RESOLVED)
        return resolved(c, idx, ts, val, vlen, voff);
    if (t != T_ROW && t != T_DDL)
        return cdc_fail(c, "key %d: unknown event type %llu", idx, (unsigned long long)t);
    return keyed_value(c, idx, k, t, ts, val, vlen, voff);
}

/* Keys drive: each row or DDL key takes the next value item, and anything
 * left over on the value side means the framing is broken. */
int cdc_open_decode(struct cdc_ctx *c, const unsigned char *key, size_t klen,
                    const unsigned char *val, size_t vlen)
{
    size_t koff = 8, voff = 0;
    int idx;

    if (klen < 8)
        return cdc_fail(c, "key: %zu bytes, too short for the version", klen);
    if (get_be64(key) != 1)
        return cdc_fail(c, "key: unsupported version %llu (want 1)",
                        (unsigned long long)get_be64(key));
    if (klen == 8)
        return cdc_fail(c, "key: no event after the version");
    for (idx = 0; koff < klen; idx++) {
        const unsigned char *item = NULL;
        size_t ilen = 0;
        const struct jval *k;
        char what[32];
        int rc;

        if (next_item(c, "key", idx, key, klen, &koff, &item, &ilen) < 0)
            return -1;
        snprintf(what, sizeof what, "key %d", idx);
        if (cdc_json_parse(c, 1, what, item, ilen, &k) < 0)
            return -1;
        rc = keyed(c, idx, k, val, vlen, &voff);
        if (rc < 0)
            return -1;
    }
    if (voff < vlen)
        return cdc_fail(c, "value: %zu bytes after the last event's (%d keys)", vlen - voff, idx);
    return 0;
}
