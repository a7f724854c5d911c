/* tisfs-decode-bench — the channel's decoding thread alone, on one core.
 *
 * usage: tisfs-decode-bench FILE PROTOCOL [ROUNDS]
 *
 * FILE holds messages as bench/incr-bench writes them with INCR_BENCH_SAVE
 * (u32 key length, u32 value length, little-endian, then key and value),
 * for the table docs(id INT PK, title, body, n INT) with title and body
 * analysed by ik. Each round decodes every message (cdc_decode), analyses
 * each full row image into an index group and seals the group every
 * INCR_BATCH_MAX messages, as incr_decode.c does between polls, and prints its CPU
 * seconds and events a second. The daemon's bench (incr-bench) mixes this
 * with the writing thread, librdkafka and the broker on two shared cores,
 * and its runs differ by ~20 % as the host's speed does; this one is
 * quick enough to repeat, binary against binary, until the difference of
 * a change to the decoding shows. */
#define _GNU_SOURCE
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tisfs/analysis.h"
#include "tisfs/cdc.h"
#include "tisfs/incr.h"
#include "tisfs/index.h"
#include "tisfs/schema.h"
#include "tisfs/util.h"

enum { BATCH = INCR_BATCH_MAX }; /* a batch's messages, as the channel takes them */

struct msg {
    const char *key, *val;
    size_t klen, vlen;
};

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct tbuf b = {0};
    char chunk[1 << 16];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        tbuf_add(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return tbuf_take(&b);
}

static struct msg *split(const char *data, size_t len, size_t *count)
{
    struct msg *m = NULL;
    size_t n = 0, cap = 0;
    for (size_t at = 0; at + 8 <= len;) {
        uint32_t kl, vl;
        memcpy(&kl, data + at, 4);
        memcpy(&vl, data + at + 4, 4);
        if (at + 8 + (size_t)kl + vl > len)
            break;
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            m = xrealloc(m, cap * sizeof *m);
        }
        m[n++] = (struct msg){data + at + 8, data + at + 8 + kl, kl, vl};
        at += 8 + (size_t)kl + vl;
    }
    *count = n;
    return m;
}

static struct tis_schema *bench_schema(void)
{
    const char *js =
        "{\"fields\":["
        "{\"name\":\"id\",\"type\":\"int\",\"token\":null,\"search\":false,\"store\":true,\"pk\":true},"
        "{\"name\":\"title\",\"type\":\"string\",\"token\":\"ik\",\"search\":true,\"store\":true},"
        "{\"name\":\"body\",\"type\":\"string\",\"token\":\"ik\",\"search\":true,\"store\":true},"
        "{\"name\":\"n\",\"type\":\"int\",\"token\":null,\"search\":true,\"store\":true}],"
        "\"primaryKey\":[\"id\"]}";
    struct json_object *o = json_tokener_parse(js);
    struct tis_schema *s = schema_from_json(o);
    json_object_put(o);
    return s;
}

/* The row's values in the schema's order; false when one is missing (the
 * decoding thread leaves such a row to the writer). */
static bool row_values(const struct tis_schema *sc, const struct cdc_row *r, struct tis_value *v)
{
    for (size_t i = 0; i < sc->nfields; i++) {
        size_t k = 0;
        while (k < r->n && !name_eq(r->cols[k].name, sc->fields[i].name))
            k++;
        if (k == r->n)
            return false;
        v[i] = r->cols[k].v;
    }
    return true;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: tisfs-decode-bench FILE PROTOCOL [ROUNDS]\n");
        return 2;
    }
    enum cdc_protocol proto = cdc_protocol_from_name(argv[2]);
    int rounds = argc > 3 ? atoi(argv[3]) : 3;
    size_t len, n;
    char *data = read_all(argv[1], &len), err[256];
    if (!data || !proto) {
        fprintf(stderr, "tisfs-decode-bench: %s\n", !data ? "cannot read FILE" : "unknown protocol");
        return 2;
    }
    struct msg *m = split(data, len, &n);
    struct tis_schema *sc = bench_schema();
    struct analyzer *an = analyzer_new(err, sizeof err);
    if (!an) {
        fprintf(stderr, "tisfs-decode-bench: %s\n", err);
        return 1;
    }
    struct analysis_opts o = {0, 0};
    struct index_doc *x = index_doc_new(sc);
    struct index_group *g = index_group_new();
    struct cdc_events *ev = xcalloc(BATCH, sizeof *ev);
    struct tis_value *vals = xcalloc(sc->nfields, sizeof *vals);
    struct tbuf packed = {0}, arena = {0};
    struct jdoc *docs = NULL;
    struct json_object *tables = NULL;
    for (int r = 0; r < rounds; r++) {
        size_t events = 0, analysed = 0, bad = 0;
        double t0 = cpu_now();
        for (size_t at = 0; at < n; at += BATCH) {
            size_t end = at + BATCH < n ? at + BATCH : n;
            index_group_reset(g);
            tbuf_reset(&packed);
            cdc_arena_reset(&arena);
            for (size_t i = at; i < end; i++) {
                struct cdc_events *e = &ev[i - at];
                cdc_events_reset(e);
                e->shared = &arena; /* one arena a batch, as incr_decode.c keeps */
                e->docs = docs, e->tables = tables;
                if (cdc_decode(proto, m[i].key, m[i].klen, m[i].val, m[i].vlen, e, err,
                               sizeof err))
                    bad++;
                docs = e->docs, tables = e->tables;
                e->docs = NULL, e->tables = NULL;
                for (size_t k = 0; k < e->n; k++) {
                    const struct cdc_event *c = &e->ev[k];
                    events += c->kind == CDC_ROW;
                    if (c->kind == CDC_ROW && c->op != CDC_DELETE &&
                        row_values(sc, &c->after, vals)) {
                        index_group_add(g, x, an, &o, vals, &packed);
                        analysed++;
                    }
                }
            }
            index_group_seal(g);
        }
        double s = cpu_now() - t0;
        printf("round %d: %zu messages, %zu events (%zu analysed, %zu undecodable): %.3f CPU s, "
               "%.0f events/s\n",
               r + 1, n, events, analysed, bad, s, events / s);
    }
    for (size_t i = 0; i < BATCH; i++)
        cdc_events_free(&ev[i]);
    cdc_arena_free(&arena);
    free(ev);
    cdc_docs_free(docs);
    json_object_put(tables);
    tbuf_free(&packed);
    index_group_free(g);
    index_doc_free(x);
    analyzer_free(an);
    schema_free(sc);
    free(vals);
    free(m);
    free(data);
    return 0;
}
