/* progress — the human line of collections/N/progress. */
#define _GNU_SOURCE
#include "tisfs/progress.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define BAR_WIDTH 20

static double num(struct json_object *o, const char *k, double dflt)
{
    struct json_object *v;
    return o && json_object_object_get_ex(o, k, &v) && v ? json_object_get_double(v) : dflt;
}

static const char *str(struct json_object *o, const char *k, const char *dflt)
{
    struct json_object *v;
    return o && json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : dflt;
}

static bool flag(struct json_object *o, const char *k)
{
    struct json_object *v;
    return o && json_object_object_get_ex(o, k, &v) && json_object_get_boolean(v);
}

/* 12s, 3m05s, 2h10m */
static void duration(struct tbuf *out, double s)
{
    long t = lround(s);
    if (t < 60)
        tbuf_printf(out, "%lds", t);
    else if (t < 3600)
        tbuf_printf(out, "%ldm%02lds", t / 60, t % 60);
    else
        tbuf_printf(out, "%ldh%02ldm", t / 3600, t % 3600 / 60);
}

static void task_part(struct json_object *st, struct tbuf *out)
{
    struct json_object *p = NULL;
    if (!st || num(st, "taskid", 0) <= 0) {
        tbuf_adds(out, "no build yet");
        return;
    }
    json_object_object_get_ex(st, "progress", &p);
    double rows = num(p, "rows", 0), total = num(p, "total", 0);
    bool done = flag(st, "complete"), failed = flag(st, "failed");
    double frac = done ? 1 : total > 0 ? fmin(rows / total, 1) : 0;
    int filled = (int)(frac * BAR_WIDTH);
    tbuf_printf(out, "task %.0f %s %s [", num(st, "taskid", 0),
                done ? "complete" : failed ? "FAILED in" : "running:", str(st, "stage", "-"));
    for (int i = 0; i < BAR_WIDTH; i++)
        tbuf_add(out, i < filled ? "#" : "-", 1);
    tbuf_printf(out, "] %3.0f%% %.0f/%.0f rows", frac * 100, rows, total > rows ? total : rows);
    if (!done && !failed) {
        tbuf_printf(out, ", %.0f rows/s", num(p, "rows_per_sec", 0));
        double eta = num(p, "eta_sec", NAN);
        if (!isnan(eta)) {
            tbuf_adds(out, ", ETA ");
            duration(out, eta);
        }
    }
}

static void channel_part(struct json_object *in, struct tbuf *out)
{
    struct json_object *cur;
    if (!in)
        return;
    const char *state = str(in, "state", "stopped");
    double lag = 0;
    bool known = false;
    if (json_object_object_get_ex(in, "current_cursor", &cur) &&
        json_object_is_type(cur, json_type_array))
        for (size_t i = 0; i < json_object_array_length(cur); i++) {
            struct json_object *p = json_object_array_get_idx(cur, i), *l;
            if (json_object_object_get_ex(p, "lag", &l) && l) {
                lag += json_object_get_double(l);
                known = true;
            }
        }
    tbuf_printf(out, " | channel %s", state);
    if (known)
        tbuf_printf(out, ", lag %.0f", lag);
    tbuf_printf(out, ", %.1f events/s", num(in, "last_60_sec", 0) / 60);
}

void progress_line(struct json_object *status, struct json_object *incr, struct tbuf *out)
{
    task_part(status, out);
    channel_part(incr, out);
    tbuf_adds(out, "\n");
}
