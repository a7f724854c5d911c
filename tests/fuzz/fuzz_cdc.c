/* libFuzzer target for the TiCDC message decoders (src/cdc*.c).
 *
 * Input: a little-endian u16 key length, the key, then the value (the
 * length is clamped to what is there). Each input goes through detection
 * and every decoder, twice into the same event list so that appending to a
 * non-empty list is exercised too; every string and value of every event is
 * then read in full, so a dangling arena pointer (or one into the message,
 * decoded from a copy freed at once) shows under ASan. A failed
 * decode must say why and leave the list as it was. The whole input, as
 * text, also goes through the DDL classifier, and through the JSON parser
 * the decoders use (jdoc) beside json-c: a text both accept must give the
 * same strings, booleans, nulls and array lengths. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "tisfs/cdc.h"
#include "tisfs/jdoc.h"

static volatile size_t sink;

static void touch(const char *s, size_t n)
{
    size_t h = 0;
    for (size_t i = 0; i < n; i++)
        h = h * 31 + (unsigned char)s[i];
    sink += h;
}

static void touch_row(const struct cdc_row *r)
{
    for (size_t i = 0; i < r->n; i++) {
        touch(r->cols[i].name, strlen(r->cols[i].name));
        touch(r->cols[i].v.p, r->cols[i].v.len);
        if (r->cols[i].v.null && r->cols[i].v.len != 0)
            abort();
    }
}

static void touch_events(const struct cdc_events *e)
{
    for (size_t i = 0; i < e->n; i++) {
        const struct cdc_event *ev = &e->ev[i];
        touch(ev->db, strlen(ev->db));
        touch(ev->table, strlen(ev->table));
        touch(ev->sql, strlen(ev->sql));
        touch_row(&ev->after);
        touch_row(&ev->before);
        if (ev->ver.domain > VER_MS || ev->kind > CDC_RESOLVED)
            abort();
    }
}

static bool same_value(const struct tis_value *a, const struct tis_value *b)
{
    return a->null == b->null && a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

static bool same_row(const struct cdc_row *a, const struct cdc_row *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->cols[i].name, b->cols[i].name) != 0 || !same_value(&a->cols[i].v, &b->cols[i].v))
            return false;
    return true;
}

/* Events [a, a + n) and [b, b + n) of e are the same. */
static bool same_events(const struct cdc_events *e, size_t a, size_t b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct cdc_event *x = &e->ev[a + i], *y = &e->ev[b + i];
        if (x->kind != y->kind || x->op != y->op || x->ddl != y->ddl ||
            x->ver.domain != y->ver.domain || x->ver.v != y->ver.v || strcmp(x->db, y->db) ||
            strcmp(x->table, y->table) || strcmp(x->sql, y->sql) ||
            !same_row(&x->after, &y->after) || !same_row(&x->before, &y->before))
            return false;
    }
    return true;
}

/* jdoc's value v against json-c's o (NULL for null); aborts on a difference. */
static void same_json(const struct jval *v, struct json_object *o)
{
    switch (v->type) {
    case JV_NULL:
        if (o)
            abort();
        break;
    case JV_BOOL:
        if (!json_object_is_type(o, json_type_boolean) || json_object_get_boolean(o) != v->b)
            abort();
        break;
    case JV_STR:
        if (!json_object_is_type(o, json_type_string) ||
            (size_t)json_object_get_string_len(o) != v->len ||
            memcmp(json_object_get_string(o), v->s, v->len) != 0)
            abort();
        break;
    case JV_NUM:
        if (!json_object_is_type(o, json_type_int) && !json_object_is_type(o, json_type_double))
            abort();
        break;
    case JV_ARR: {
        size_t i = 0;
        if (!json_object_is_type(o, json_type_array) || json_object_array_length(o) != v->len)
            abort();
        jv_foreach(v, m) same_json(m, json_object_array_get_idx(o, i++));
        break;
    }
    case JV_OBJ:
        if (!json_object_is_type(o, json_type_object))
            abort();
        jv_foreach(v, m) {
            struct json_object *om;
            if (!json_object_object_get_ex(o, m->key, &om))
                abort();
            if (jv_get(v, m->key) == m) /* of duplicates, both keep the last */
                same_json(m, om);
        }
        break;
    }
}

static void parsers_agree(const uint8_t *data, size_t size)
{
    static struct jdoc d;
    const struct jval *v = jdoc_parse(&d, (const char *)data, size, 32);
    if (!v || memchr(data, 0, size) || size > INT32_MAX)
        return;
    struct json_tokener *tok = json_tokener_new_ex(32);
    struct json_object *o = json_tokener_parse_ex(tok, (const char *)data, (int)size);
    if (json_tokener_get_error(tok) == json_tokener_continue)
        o = json_tokener_parse_ex(tok, "", 1);
    if (json_tokener_get_error(tok) == json_tokener_success)
        same_json(v, o);
    json_object_put(o);
    json_tokener_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cdc_events e = {0};
    char err[256];
    size_t klen = size >= 2 ? (size_t)(data[0] | data[1] << 8) : 0;
    const uint8_t *key = data + (size >= 2 ? 2 : size);
    size_t rest = size >= 2 ? size - 2 : 0;

    if (klen > rest)
        klen = rest;
    sink += (size_t)cdc_detect(key, klen, key + klen, rest - klen);
    for (int p = CDC_OPEN; p <= CDC_SIMPLE; p++) {
        size_t first = e.n, added = 0;
        int rc0 = 0;
        char err0[256];
        for (int round = 0; round < 2; round++) {
            size_t n0 = e.n;
            err[0] = 0;
            /* From a copy freed at once: the channel frees each message as
             * soon as it is decoded, so events must not point into it. */
            uint8_t *msg = malloc(rest ? rest : 1);
            if (!msg)
                return 0;
            memcpy(msg, key, rest);
            int rc = cdc_decode((enum cdc_protocol)p, msg, klen, msg + klen, rest - klen, &e, err,
                                sizeof err);
            free(msg);
            if (rc != 0 && (rc != -1 || !err[0] || e.n != n0))
                abort();
            touch_events(&e);
            if (round == 0) {
                rc0 = rc, added = e.n - n0;
                memcpy(err0, err, sizeof err);
            } else if (rc != rc0 || e.n - n0 != added || (rc && strcmp(err, err0) != 0) ||
                       !same_events(&e, first, n0, added))
                abort(); /* what a decoder keeps between messages (Debezium's schema)
                            changed the second one's events */
        }
    }
    char *sql = malloc(size + 1);
    if (sql) {
        memcpy(sql, data, size);
        sql[size] = 0;
        sink += (size_t)cdc_ddl_classify(sql);
        free(sql);
    }
    parsers_agree(data, size);
    cdc_events_reset(&e);
    cdc_events_free(&e);
    return 0;
}
