/* libFuzzer target for the TiCDC message decoders (src/cdc*.c).
 *
 * Input: a little-endian u16 key length, the key, then the value (the
 * length is clamped to what is there). Each input goes through detection
 * and every decoder, twice into the same event list so that appending to a
 * non-empty list is exercised too; every string and value of every event is
 * then read in full, so a dangling arena pointer shows under ASan. A failed
 * decode must say why and leave the list as it was. The whole input, as
 * text, also goes through the DDL classifier. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tisfs/cdc.h"

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
    for (int p = CDC_OPEN; p <= CDC_SIMPLE; p++)
        for (int round = 0; round < 2; round++) {
            size_t n0 = e.n;
            err[0] = 0;
            int rc = cdc_decode((enum cdc_protocol)p, key, klen, key + klen, rest - klen, &e, err,
                                sizeof err);
            if (rc != 0 && (rc != -1 || !err[0] || e.n != n0))
                abort();
            touch_events(&e);
        }
    char *sql = malloc(size + 1);
    if (sql) {
        memcpy(sql, data, size);
        sql[size] = 0;
        sink += (size_t)cdc_ddl_classify(sql);
        free(sql);
    }
    cdc_events_reset(&e);
    cdc_events_free(&e);
    return 0;
}
