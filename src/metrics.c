/* metrics — query counters and the Prometheus text format. The rest of
 * what /metrics shows is read, when asked, from the same documents the
 * adapters serve (status, incr_status, schema): one source of truth. */
#define _GNU_SOURCE
#include "tisfs/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

/* Upper bounds of the latency histogram's buckets, seconds. */
static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                 0.05,   0.1,   0.25,   0.5,   1,    2.5, 5};
#define NBUCKETS (sizeof buckets / sizeof *buckets)
#define NSTATUS (API_FAILED + 1)

static struct {
    uint64_t count[NBUCKETS + 1]; /* the last: above every bound */
    uint64_t by_status[NSTATUS];
    uint64_t micros; /* total time, microseconds */
} Q;

void metrics_query(double seconds, enum api_status st)
{
    size_t b = 0;
    while (b < NBUCKETS && seconds > buckets[b])
        b++;
    __atomic_add_fetch(&Q.count[b], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&Q.by_status[(unsigned)st < NSTATUS ? st : API_FAILED], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&Q.micros, (uint64_t)(seconds * 1e6), __ATOMIC_RELAXED);
}

/* ---- the text format ---- */

static void family(struct tbuf *out, const char *name, const char *type, const char *help)
{
    tbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value with \, " and newlines escaped, as the format wants. */
static void label(struct tbuf *out, const char *k, const char *v, bool first)
{
    tbuf_printf(out, "%s%s=\"", first ? "" : ",", k);
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            tbuf_add(out, "\\", 1);
        if (*v == '\n')
            tbuf_adds(out, "\\n");
        else
            tbuf_add(out, v, 1);
    }
    tbuf_adds(out, "\"");
}

/* Integers exactly (counts, offsets), other values to microseconds
 * (durations) rather than as 0.52800000000000002. */
static void value(struct tbuf *out, double v)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        tbuf_printf(out, " %.0f\n", v);
    else
        tbuf_printf(out, " %.6f\n", v);
}

static void sample(struct tbuf *out, const char *name, const char *coll, double v)
{
    tbuf_printf(out, "%s{", name);
    label(out, "collection", coll, true);
    tbuf_adds(out, "}");
    value(out, v);
}

static struct json_object *read_doc(const char *name, enum api_doc doc)
{
    struct json_object *o;
    api_read_object(name, doc, &o);
    return o;
}

static double num(struct json_object *o, const char *k)
{
    struct json_object *v;
    return o && json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : 0;
}

static bool flag(struct json_object *o, const char *k)
{
    struct json_object *v;
    return o && json_object_object_get_ex(o, k, &v) && json_object_get_boolean(v);
}

struct snap {
    const char *name;
    struct json_object *status, *incr, *schema;
};

static double task_seconds(struct json_object *st)
{
    struct json_object *stages;
    double s = 0;
    if (st && json_object_object_get_ex(st, "stages", &stages) &&
        json_object_is_type(stages, json_type_array))
        for (size_t i = 0; i < json_object_array_length(stages); i++)
            s += num(json_object_array_get_idx(stages, i), "seconds");
    return s;
}

static void collections(struct tbuf *out, struct snap *s, size_t n)
{
    family(out, "tisfs_collection_docs", "gauge", "Documents the serving generation holds.");
    for (size_t i = 0; i < n; i++)
        sample(out, "tisfs_collection_docs", s[i].name, num(s[i].schema, "docs"));
    family(out, "tisfs_collection_disk_bytes", "gauge", "Bytes on disk of the serving generation.");
    for (size_t i = 0; i < n; i++)
        sample(out, "tisfs_collection_disk_bytes", s[i].name, num(s[i].schema, "disk_bytes"));
    family(out, "tisfs_task_running", "gauge", "1 while the latest task of the collection runs.");
    for (size_t i = 0; i < n; i++)
        sample(out, "tisfs_task_running", s[i].name,
               s[i].status && !flag(s[i].status, "complete") && !flag(s[i].status, "failed") &&
                       num(s[i].status, "taskid") > 0);
    family(out, "tisfs_task_failed", "gauge", "1 when the latest task of the collection failed.");
    for (size_t i = 0; i < n; i++)
        sample(out, "tisfs_task_failed", s[i].name, flag(s[i].status, "failed"));
    family(out, "tisfs_task_id", "gauge", "Id of the latest task of the collection.");
    for (size_t i = 0; i < n; i++)
        sample(out, "tisfs_task_id", s[i].name, num(s[i].status, "taskid"));
    family(out, "tisfs_task_duration_seconds", "gauge", "Time the latest task has spent so far.");
    for (size_t i = 0; i < n; i++)
        sample(out, "tisfs_task_duration_seconds", s[i].name, task_seconds(s[i].status));
    family(out, "tisfs_task_rows_dumped", "gauge", "Rows the latest task has read from the table.");
    for (size_t i = 0; i < n; i++) {
        struct json_object *p = NULL;
        if (s[i].status)
            json_object_object_get_ex(s[i].status, "progress", &p);
        sample(out, "tisfs_task_rows_dumped", s[i].name, num(p, "rows"));
    }
}

/* One sample per partition of a channel: its lag (when the broker has
 * told the high watermark) or its offset. */
static void partitions(struct tbuf *out, const char *coll, struct json_object *incr, bool lag)
{
    struct json_object *cur, *topic, *v;
    if (!incr || !json_object_object_get_ex(incr, "current_cursor", &cur) ||
        !json_object_is_type(cur, json_type_array))
        return;
    for (size_t j = 0; j < json_object_array_length(cur); j++) {
        struct json_object *p = json_object_array_get_idx(cur, j);
        char part[32];
        if (lag && (!json_object_object_get_ex(p, "lag", &v) || !v))
            continue;
        snprintf(part, sizeof part, "%d", (int)num(p, "partition"));
        tbuf_adds(out, lag ? "tisfs_channel_lag{" : "tisfs_channel_offset{");
        label(out, "collection", coll, true);
        label(out, "topic", json_object_object_get_ex(p, "mqName", &topic)
                                ? json_object_get_string(topic) : "", false);
        label(out, "partition", part, false);
        tbuf_adds(out, "}");
        value(out, num(p, lag ? "lag" : "cursor"));
    }
}

static void channels(struct tbuf *out, struct snap *s, size_t n)
{
    static const char *const counters[][2] = {
        {"applied", "Change events applied to the index."},
        {"skipped", "Change events skipped as unreadable (each one is logged)."},
        {"stale", "Change events older than the row's stored version."},
    };
    family(out, "tisfs_channel_running", "gauge", "1 while the channel follows its topic.");
    for (size_t i = 0; i < n; i++) {
        struct json_object *v;
        bool running = s[i].incr && json_object_object_get_ex(s[i].incr, "state", &v) &&
                       !strcmp(json_object_get_string(v), "running");
        sample(out, "tisfs_channel_running", s[i].name, running);
    }
    for (size_t k = 0; k < sizeof counters / sizeof *counters; k++) {
        char name[64];
        snprintf(name, sizeof name, "tisfs_channel_events_%s_total", counters[k][0]);
        family(out, name, "counter", counters[k][1]);
        for (size_t i = 0; i < n; i++)
            sample(out, name, s[i].name, num(s[i].incr, counters[k][0]));
    }
    family(out, "tisfs_channel_last_60_sec", "gauge", "Change events applied in the last minute.");
    for (size_t i = 0; i < n; i++)
        sample(out, "tisfs_channel_last_60_sec", s[i].name, num(s[i].incr, "last_60_sec"));
    for (int m = 0; m < 2; m++) {
        if (m == 0)
            family(out, "tisfs_channel_lag", "gauge", "Messages of a partition not applied yet.");
        else
            family(out, "tisfs_channel_offset", "gauge",
                   "Next offset the channel applies in a partition.");
        for (size_t i = 0; i < n; i++)
            partitions(out, s[i].name, s[i].incr, m == 0);
    }
}

static void queries(struct tbuf *out)
{
    static const char *const status_label[NSTATUS] = {
        "ok", "invalid", "invalid", "not_found", "exists", "busy", "not_ready", "failed"};
    family(out, "tisfs_queries_total", "counter", "Select queries answered, by outcome.");
    for (size_t i = 0; i < NSTATUS; i++) {
        uint64_t v = __atomic_load_n(&Q.by_status[i], __ATOMIC_RELAXED);
        if (v || i == API_OK)
            tbuf_printf(out, "tisfs_queries_total{status=\"%s\"} %llu\n", status_label[i],
                        (unsigned long long)v);
    }
    family(out, "tisfs_query_seconds", "histogram", "Time to answer a select query.");
    uint64_t cum = 0;
    for (size_t b = 0; b <= NBUCKETS; b++) {
        cum += __atomic_load_n(&Q.count[b], __ATOMIC_RELAXED);
        if (b < NBUCKETS)
            tbuf_printf(out, "tisfs_query_seconds_bucket{le=\"%g\"} %llu\n", buckets[b],
                        (unsigned long long)cum);
        else
            tbuf_printf(out, "tisfs_query_seconds_bucket{le=\"+Inf\"} %llu\n",
                        (unsigned long long)cum);
    }
    tbuf_printf(out, "tisfs_query_seconds_sum %.6f\ntisfs_query_seconds_count %llu\n",
                (double)__atomic_load_n(&Q.micros, __ATOMIC_RELAXED) / 1e6,
                (unsigned long long)cum);
}

void api_metrics(struct tbuf *out)
{
    struct tbuf names = {0};
    size_t n;
    api_collections(&names, &n);
    struct snap *s = xcalloc(n ? n : 1, sizeof *s);
    const char *p = names.data;
    for (size_t i = 0; i < n; i++, p += strlen(p) + 1) {
        s[i].name = p;
        s[i].status = read_doc(p, DOC_STATUS);
        s[i].incr = read_doc(p, DOC_INCR_STATUS);
        s[i].schema = read_doc(p, DOC_SCHEMA);
    }
    collections(out, s, n);
    channels(out, s, n);
    queries(out);
    for (size_t i = 0; i < n; i++) {
        json_object_put(s[i].status);
        json_object_put(s[i].incr);
        json_object_put(s[i].schema);
    }
    free(s);
    tbuf_free(&names);
}
