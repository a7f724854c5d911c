/* incr — the incremental channel: Kafka consumer, batches, exactly-once
 * apply (see incr.h). */
#define _GNU_SOURCE
#include "tisfs/incr.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tisfs/cdc.h"
#include "tisfs/util.h"

/* Seconds between retries while the broker cannot be reached (doubling). */
#define RETRY_MIN_SEC 0.2
#define RETRY_MAX_SEC 5.0
/* How often the end offsets are asked for (lag, and a health check). */
#define WATERMARK_EVERY_SEC 1.0
#define SYNC_EVERY_SEC 1.0
/* The merge: terms per transaction, the time it may take between two
 * polls when the stream is idle, and the backlog that makes it run between
 * batches even when the stream is busy. */
#define FOLD_TERMS 64
#define FOLD_IDLE_SEC 0.05
#define FOLD_BUSY_ENTRIES 1000000
/* A lag above this many messages reads "catching_up". */
#define CATCHING_UP_LAG 10000

struct part {
    int32_t id;
    int64_t pos; /* the next offset to apply */
    int64_t hw;  /* the partition's end offset, -1 unknown */
    uint64_t ts; /* newest TSO applied or resolved here */
    /* INCR_CATCH_UP: the end offset when the catch-up began, the goal (a
     * stream that never pauses has no moment of zero lag). -1 unknown. */
    int64_t goal;
};

struct incr {
    char *name, *db, *table;
    struct tis_incr_spec spec;
    struct gen *g;
    enum incr_mode mode;
    incr_log_fn log;
    void *log_arg;
    pthread_t thread;
    atomic_bool stop;

    pthread_mutex_t mu; /* guards the status below */
    pthread_cond_t cv;
    const char *state;
    char errs[640];
    enum cdc_protocol proto;
    struct part *parts;
    int nparts;
    uint64_t applied, skipped, stale;
    uint8_t event_domain;
    uint32_t per_sec[60];
    int64_t sec_of[60];
    bool done, caught_up;

    /* The consumer thread's own. */
    rd_kafka_t *rk;
    struct analyzer *an;
    struct cdc_events ev;
    struct tis_value *vals;
    bool *present;
    bool *moved; /* vals[i] is an offset into conv (fixed up at the end) */
    struct tbuf conv;
    bool dropped, dirty;
    struct tbuf fold_from; /* where the merge goes on (index_fold) */
    uint64_t unmerged;     /* delta entries the merge has yet to fold (mu) */
    int refresh_turn;
    bool fold_left;
    double next_watermarks, last_sync;
    char last_logged_err[640];
};

/* ---- logging and status ---- */

static void say(struct incr *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct incr *c, const char *fmt, ...)
{
    struct tbuf b = {0};
    va_list ap;
    va_start(ap, fmt);
    tbuf_adds(&b, "[incr] ");
    tbuf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (c->log)
        c->log(c->log_arg, b.data);
    tbuf_free(&b);
}

/* Enters the error state with why; logged once per distinct cause. */
static void set_error(struct incr *c, const char *why)
{
    pthread_mutex_lock(&c->mu);
    c->state = "error";
    snprintf(c->errs, sizeof c->errs, "%s", why);
    pthread_mutex_unlock(&c->mu);
    if (strcmp(c->last_logged_err, why) != 0) {
        snprintf(c->last_logged_err, sizeof c->last_logged_err, "%s", why);
        say(c, "ERROR: %s", why);
    }
}

static void clear_error(struct incr *c)
{
    pthread_mutex_lock(&c->mu);
    bool was = c->errs[0] != 0;
    c->errs[0] = 0;
    pthread_mutex_unlock(&c->mu);
    if (was) {
        c->last_logged_err[0] = 0;
        say(c, "recovered: the broker answers again");
    }
}

static int64_t total_lag_locked(const struct incr *c)
{
    int64_t lag = 0;
    for (int i = 0; i < c->nparts; i++)
        if (c->parts[i].hw >= 0 && c->parts[i].hw > c->parts[i].pos)
            lag += c->parts[i].hw - c->parts[i].pos;
    return lag;
}

static void update_state_locked(struct incr *c)
{
    if (c->errs[0])
        c->state = "error";
    else if (c->dropped)
        c->state = "error";
    else
        c->state = total_lag_locked(c) > CATCHING_UP_LAG || c->mode == INCR_CATCH_UP
                       ? "catching_up"
                       : "running";
}

static void count_applied_locked(struct incr *c, uint32_t n)
{
    int64_t now = (int64_t)time(NULL);
    int slot = (int)(now % 60);
    if (c->sec_of[slot] != now) {
        c->sec_of[slot] = now;
        c->per_sec[slot] = 0;
    }
    c->per_sec[slot] += n;
}

static void check_caught_up_locked(struct incr *c)
{
    bool done = c->mode == INCR_CATCH_UP && c->nparts > 0;
    for (int i = 0; i < c->nparts && done; i++)
        done = c->parts[i].goal >= 0 && c->parts[i].pos >= c->parts[i].goal;
    c->caught_up = done;
}

static uint64_t last_60_locked(const struct incr *c)
{
    int64_t now = (int64_t)time(NULL);
    uint64_t n = 0;
    for (int i = 0; i < 60; i++)
        if (now - c->sec_of[i] < 60)
            n += c->per_sec[i];
    return n;
}

static struct part *part_of(struct incr *c, int32_t id)
{
    for (int i = 0; i < c->nparts; i++)
        if (c->parts[i].id == id)
            return &c->parts[i];
    return NULL;
}

/* ---- the stored state: positions and counters, committed with each batch ---- */

static struct json_object *state_json_locked(struct incr *c)
{
    struct json_object *o = json_object_new_object(), *pos = json_object_new_object(),
                       *ts = json_object_new_object();
    char k[16];
    for (int i = 0; i < c->nparts; i++) {
        snprintf(k, sizeof k, "%d", c->parts[i].id);
        json_object_object_add(pos, k, json_object_new_int64(c->parts[i].pos));
        json_object_object_add(ts, k, json_object_new_int64((int64_t)c->parts[i].ts));
    }
    json_object_object_add(o, "topic", json_object_new_string(c->spec.topic));
    json_object_object_add(o, "protocol", c->proto ? json_object_new_string(cdc_protocol_name(c->proto))
                                                   : NULL);
    json_object_object_add(o, "positions", pos);
    json_object_object_add(o, "ts", ts);
    json_object_object_add(o, "applied", json_object_new_int64((int64_t)c->applied));
    json_object_object_add(o, "skipped", json_object_new_int64((int64_t)c->skipped));
    json_object_object_add(o, "stale", json_object_new_int64((int64_t)c->stale));
    json_object_object_add(o, "event_domain",
                           json_object_new_string(ver_domain_name(c->event_domain)));
    json_object_object_add(o, "dropped", json_object_new_boolean(c->dropped));
    return o;
}

static int64_t jget(struct json_object *o, const char *k)
{
    struct json_object *v;
    return o && json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

/* Loads what the generation holds for this topic; positions of another
 * topic (the channel spec changed) do not apply. Status readers may look
 * already: everything is read first, then published under the lock. */
static void state_load(struct incr *c)
{
    struct json_object *o = gen_channel_state(c->g), *v, *pos, *ts = NULL;
    if (!o)
        return;
    const char *topic = json_object_object_get_ex(o, "topic", &v) ? json_object_get_string(v)
                                                                  : NULL;
    if (!topic || strcmp(topic, c->spec.topic) != 0) {
        say(c, "stored positions are for topic %s, not %s: starting afresh",
            topic ? topic : "(none)", c->spec.topic);
        json_object_put(o);
        return;
    }
    enum cdc_protocol proto = json_object_object_get_ex(o, "protocol", &v) && v
                                  ? cdc_protocol_from_name(json_object_get_string(v))
                                  : CDC_UNKNOWN;
    uint8_t domain = VER_NONE;
    if (json_object_object_get_ex(o, "event_domain", &v))
        for (uint8_t d = VER_NONE; d <= VER_MS; d++)
            if (strcmp(ver_domain_name(d), json_object_get_string(v)) == 0)
                domain = d;
    struct part *parts = NULL;
    int n = 0;
    if (json_object_object_get_ex(o, "positions", &pos) && json_object_is_type(pos, json_type_object)) {
        json_object_object_get_ex(o, "ts", &ts);
        parts = xcalloc((size_t)json_object_object_length(pos) + 1, sizeof *parts);
        json_object_object_foreach(pos, key, val)
            parts[n++] = (struct part){(int32_t)atoi(key), json_object_get_int64(val), -1,
                                       (uint64_t)jget(ts, key), -1};
    }
    pthread_mutex_lock(&c->mu);
    if (!c->proto)
        c->proto = proto;
    c->applied = (uint64_t)jget(o, "applied");
    c->skipped = (uint64_t)jget(o, "skipped");
    c->stale = (uint64_t)jget(o, "stale");
    c->event_domain = domain;
    c->dropped = json_object_object_get_ex(o, "dropped", &v) && json_object_get_boolean(v);
    free(c->parts);
    c->parts = parts;
    c->nparts = n;
    pthread_mutex_unlock(&c->mu);
    json_object_put(o);
}

/* ---- the consumer ---- */

static void kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    struct incr *c = opaque;
    char why[600];
    snprintf(why, sizeof why, "Kafka %s: %s", c->spec.mq_address, reason);
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT ||
        err == RD_KAFKA_RESP_ERR__RESOLVE || err == RD_KAFKA_RESP_ERR__FATAL)
        set_error(c, why);
    else
        say(c, "%s", why);
}

/* librdkafka's own log lines would go to stderr; errors reach us through
 * kafka_error instead. */
static void kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static rd_kafka_t *kafka_new(const struct tis_incr_spec *spec, const char *client, void *opaque,
                             char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *reset = strcmp(spec->offset_reset, "none") == 0 ? "error" : spec->offset_reset;
    const char *kv[][2] = {
        {"bootstrap.servers", spec->mq_address},
        {"group.id", spec->group_id},
        {"client.id", client},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", reset},
        /* Low latency at low rates: a fetch waits at most this long. */
        {"fetch.wait.max.ms", "20"},
        {"fetch.error.backoff.ms", "50"},
        {"reconnect.backoff.ms", "100"},
        {"reconnect.backoff.max.ms", "1000"},
        {"socket.timeout.ms", "10000"},
        /* Flat memory: the prefetch queue is what a backlog costs. */
        {"queued.max.messages.kbytes", "16384"},
    };
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++)
        if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], err, errlen) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    rd_kafka_conf_set_opaque(conf, opaque);
    rd_kafka_conf_set_error_cb(conf, kafka_error);
    rd_kafka_conf_set_log_cb(conf, kafka_log);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errlen);
    if (!rk)
        rd_kafka_conf_destroy(conf); /* rd_kafka_new owns conf only on success */
    return rk;
}

/* The topic's partition ids, from the broker's metadata. */
static int topic_partitions(rd_kafka_t *rk, const char *topic, int32_t **ids, int *n, char *err,
                            size_t errlen)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 5000);
    rd_kafka_topic_destroy(t);
    if (e) {
        snprintf(err, errlen, "cannot read the metadata of topic %s: %s", topic, rd_kafka_err2str(e));
        return -1;
    }
    int rc = 0;
    if (md->topic_cnt < 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) {
        snprintf(err, errlen, "topic %s: %s", topic,
                 md->topic_cnt < 1 || !md->topics[0].err ? "has no partitions"
                                                         : rd_kafka_err2str(md->topics[0].err));
        rc = -1;
    } else {
        *n = md->topics[0].partition_cnt;
        *ids = xcalloc((size_t)*n, sizeof **ids);
        for (int i = 0; i < *n; i++)
            (*ids)[i] = md->topics[0].partitions[i].id;
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

/* Where a partition without a stored position starts, resolved to an
 * explicit offset (stored before anything is applied, so a restart starts
 * from the same place). */
/* A partition's first (which RD_KAFKA_OFFSET_BEGINNING) or end
 * (RD_KAFKA_OFFSET_END) offset. Not rd_kafka_query_watermark_offsets: in
 * this librdkafka (before 2.3) it ignores its timeout and hangs for good
 * when the broker has gone, which would hang shutdown and rm -r too;
 * rd_kafka_offsets_for_times keeps its timeout. */
static rd_kafka_resp_err_t edge_offset(rd_kafka_t *rk, const char *topic, int32_t part,
                                       int64_t which, int64_t *out, int timeout_ms)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, part)->offset = which;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(rk, l, timeout_ms);
    if (!e && (e = l->elems[0].err) == 0)
        *out = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    return e;
}

static int resolve_start(struct incr *c, int32_t id, int64_t *pos, char *err, size_t errlen)
{
    if (strcmp(c->spec.offset_reset, "none") == 0) {
        snprintf(err, errlen,
                 "no stored position for partition %d of topic %s and offsetResetStrategy is "
                 "none: write a channel spec with earliest or latest to start", id, c->spec.topic);
        return -2;
    }
    bool latest = strcmp(c->spec.offset_reset, "latest") == 0;
    rd_kafka_resp_err_t e = edge_offset(c->rk, c->spec.topic, id,
                                        latest ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING,
                                        pos, 5000);
    if (e) {
        snprintf(err, errlen, "cannot read the offsets of %s/%d: %s", c->spec.topic, id,
                 rd_kafka_err2str(e));
        return -1;
    }
    say(c, "partition %d has no stored position: starting at its %s offset %lld", id,
        c->spec.offset_reset, (long long)*pos);
    return 0;
}

static int store_state(struct incr *c, char *err, size_t errlen)
{
    pthread_mutex_lock(&c->mu);
    struct json_object *st = state_json_locked(c);
    pthread_mutex_unlock(&c->mu);
    int rc = gen_set_channel_state(c->g, st, err, errlen);
    json_object_put(st);
    return rc;
}

/* Assigns every partition of the topic at its stored (or resolved) position.
 * Returns 0, -1 (retry later) or -2 (cannot start: no retry). */
static int assign(struct incr *c, char *err, size_t errlen)
{
    int32_t *ids = NULL;
    int n = 0, rc = topic_partitions(c->rk, c->spec.topic, &ids, &n, err, errlen);
    bool resolved = false;
    for (int i = 0; i < n && !rc; i++) {
        pthread_mutex_lock(&c->mu);
        struct part *p = part_of(c, ids[i]);
        pthread_mutex_unlock(&c->mu);
        if (p)
            continue;
        int64_t pos;
        if ((rc = resolve_start(c, ids[i], &pos, err, errlen)) != 0)
            break;
        pthread_mutex_lock(&c->mu);
        c->parts = xrealloc(c->parts, (size_t)(c->nparts + 1) * sizeof *c->parts);
        c->parts[c->nparts++] = (struct part){ids[i], pos, -1, 0, -1};
        pthread_mutex_unlock(&c->mu);
        resolved = true;
    }
    if (!rc && resolved)
        rc = store_state(c, err, errlen);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n ? n : 1);
    struct tbuf desc = {0};
    for (int i = 0; i < n && !rc; i++) {
        struct part *p = part_of(c, ids[i]);
        rd_kafka_topic_partition_list_add(l, c->spec.topic, p->id)->offset = p->pos;
        tbuf_printf(&desc, "%s%d@%lld", i ? ", " : "", p->id, (long long)p->pos);
    }
    if (!rc) {
        rd_kafka_resp_err_t e = rd_kafka_assign(c->rk, l);
        if (e) {
            snprintf(err, errlen, "cannot assign %s: %s", c->spec.topic, rd_kafka_err2str(e));
            rc = -1;
        } else
            say(c, "consuming %s from %s (partition@offset: %s), protocol %s", c->spec.topic,
                c->spec.mq_address, desc.data,
                c->proto ? cdc_protocol_name(c->proto) : "detected from the first message");
    }
    tbuf_free(&desc);
    rd_kafka_topic_partition_list_destroy(l);
    free(ids);
    return rc;
}

static void disconnect(struct incr *c)
{
    if (!c->rk)
        return;
    /* Nothing to leave: partitions are assigned, not subscribed, and the
     * positions are in the generation. Not waiting on the group keeps a
     * shutdown prompt while the broker is away. */
    rd_kafka_destroy_flags(c->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    c->rk = NULL;
}

static int connect_and_assign(struct incr *c, char *err, size_t errlen)
{
    char client[128];
    snprintf(client, sizeof client, "tisfs-%s", c->name);
    if (!(c->rk = kafka_new(&c->spec, client, c, err, errlen)))
        return -2;
    rd_kafka_poll_set_consumer(c->rk);
    int rc = assign(c, err, errlen);
    if (rc)
        disconnect(c);
    return rc;
}

/* ---- applying ---- */

static bool ours(const struct incr *c, const struct cdc_event *e)
{
    if (strcasecmp(e->db, c->db) != 0)
        return false;
    return strcasecmp(e->table, c->table) == 0 || (e->kind == CDC_DDL && !e->table[0]);
}

/* BIT(n) comes as a number; a dump gives its big-endian bytes. */
static struct tis_value bit_bytes(struct incr *c, const struct tis_field *f, struct tis_value v)
{
    int bits = 64;
    const char *paren = strchr(f->source_type, '(');
    if (paren)
        bits = atoi(paren + 1);
    size_t n = (size_t)(bits + 7) / 8;
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%.*s", (int)(v.len < 31 ? v.len : 31), v.p);
    unsigned long long x = strtoull(tmp, NULL, 10);
    size_t at = c->conv.len;
    for (size_t i = 0; i < n && i < 8; i++) {
        char b = (char)(x >> (8 * (n - 1 - i)));
        tbuf_add(&c->conv, &b, 1);
    }
    return (struct tis_value){(const char *)(uintptr_t)at, n, false}; /* offset: fixed later */
}

/* ENUM and SET come from open-protocol and canal-json as the index (from
 * 1) or the bit set; a dump gives the names, comma-separated for a SET. The
 * names are read from the column's type, e.g. enum('a','it''s'). */
static struct tis_value enum_names(struct incr *c, const struct tis_field *f, struct tis_value v)
{
    bool set = strncasecmp(f->source_type, "set(", 4) == 0;
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%.*s", (int)(v.len < 31 ? v.len : 31), v.p);
    unsigned long long x = strtoull(tmp, NULL, 10);
    size_t at = c->conv.len;
    int k = 0;
    bool first = true;
    for (const char *p = strchr(f->source_type, '('); p && *p; k++) {
        const char *q = strchr(p, '\'');
        if (!q)
            break;
        bool take = set ? k < 64 && (x >> k & 1) : (unsigned long long)k + 1 == x;
        if (take && set && !first)
            tbuf_add(&c->conv, ",", 1);
        for (q++; *q && !(q[0] == '\'' && q[1] != '\''); q++) {
            if (q[0] == '\'' && q[1] == '\'')
                q++;
            if (take)
                tbuf_add(&c->conv, q, 1);
        }
        first &= !take;
        p = *q ? q + 1 : q;
    }
    return (struct tis_value){(const char *)(uintptr_t)at, c->conv.len - at, false};
}

static bool all_digits(struct tis_value v)
{
    for (size_t i = 0; i < v.len; i++)
        if (v.p[i] < '0' || v.p[i] > '9')
            return false;
    return v.len > 0;
}

/* The value of field f as a dump has it (offsets into c->conv when
 * converted; *moved says so). */
static struct tis_value dump_form(struct incr *c, const struct tis_field *f, struct tis_value v,
                                  bool *moved)
{
    *moved = false;
    if (v.null)
        return v;
    if (f->vt == VT_BIT)
        return *moved = true, bit_bytes(c, f, v);
    if ((c->proto == CDC_OPEN || c->proto == CDC_CANAL) && all_digits(v) &&
        (strncasecmp(f->source_type, "enum(", 5) == 0 ||
         strncasecmp(f->source_type, "set(", 4) == 0))
        return *moved = true, enum_names(c, f, v);
    return v;
}

/* Maps an event's row image onto the schema: vals and present. Fails when
 * a primary key column is missing (with need_pk). */
static int row_values(struct incr *c, const struct cdc_row *r, bool need_pk, char *err,
                      size_t errlen)
{
    const struct tis_schema *sc = gen_schema(c->g);
    tbuf_reset(&c->conv);
    tbuf_reserve(&c->conv, 64); /* offsets below never sit on a NULL buffer */
    for (size_t i = 0; i < sc->nfields; i++) {
        c->present[i] = false;
        c->vals[i] = (struct tis_value){"", 0, true};
        for (size_t j = 0; j < r->n; j++)
            if (strcasecmp(r->cols[j].name, sc->fields[i].name) == 0) {
                c->present[i] = true;
                c->vals[i] = dump_form(c, &sc->fields[i], r->cols[j].v, &c->moved[i]);
                break;
            }
    }
    for (size_t i = 0; i < sc->nfields; i++) /* conv may have moved while it grew */
        if (c->present[i] && c->moved[i])
            c->vals[i].p = c->conv.data + (uintptr_t)c->vals[i].p;
    for (size_t i = 0; need_pk && i < sc->npk; i++)
        if (!c->present[sc->pk[i]] || c->vals[sc->pk[i]].null) {
            snprintf(err, errlen, "the event carries no value for primary key column %s",
                     sc->fields[sc->pk[i]].name);
            return -1;
        }
    return 0;
}

static bool same_pk(struct incr *c, const struct cdc_event *e)
{
    const struct tis_schema *sc = gen_schema(c->g);
    for (size_t i = 0; i < sc->npk; i++) {
        const char *name = sc->fields[sc->pk[i]].name;
        const struct tis_value *a = NULL, *b = NULL;
        for (size_t j = 0; j < e->after.n; j++)
            if (strcasecmp(e->after.cols[j].name, name) == 0)
                a = &e->after.cols[j].v;
        for (size_t j = 0; j < e->before.n; j++)
            if (strcasecmp(e->before.cols[j].name, name) == 0)
                b = &e->before.cols[j].v;
        if (a && b && (a->len != b->len || memcmp(a->p, b->p, a->len) != 0))
            return false;
    }
    return true;
}

/* One batch's work: it touches a copy of the positions and its own
 * counters, published only when its transaction has committed. */
struct batch {
    struct gen_writer *w;
    uint32_t applied, stale, skipped;
    uint8_t event_domain;
    struct part *parts;
};

static struct part *batch_part(struct incr *c, struct batch *b, int32_t id)
{
    for (int i = 0; i < c->nparts; i++)
        if (b->parts[i].id == id)
            return &b->parts[i];
    return NULL;
}

static void tally(struct batch *b, enum gen_outcome o)
{
    if (o == GEN_STALE)
        b->stale++;
    else
        b->applied++;
}

/* Returns 0, 1 (this event is bad: skip it) or -1 (the batch failed). */
static int apply_row(struct incr *c, struct batch *b, const struct cdc_event *e, char *err,
                     size_t errlen)
{
    enum gen_outcome o;
    bool del = e->op == CDC_DELETE;
    /* A primary-key change: the old row goes, the new one comes. */
    if (e->op == CDC_UPDATE && e->before.n && !same_pk(c, e)) {
        if (row_values(c, &e->before, true, err, errlen))
            return 1;
        if (gen_write_delete(b->w, c->vals, e->ver, &o, err, errlen))
            return -1;
        tally(b, o);
    }
    const struct cdc_row *r = del && e->before.n ? &e->before : &e->after;
    if (row_values(c, r, true, err, errlen))
        return 1;
    if (del ? gen_write_delete(b->w, c->vals, e->ver, &o, err, errlen)
            : gen_write_upsert(b->w, c->vals, c->present, e->ver, &o, err, errlen))
        return -1;
    tally(b, o);
    return 0;
}

static int apply_ddl(struct incr *c, struct batch *b, const struct cdc_event *e, char *err,
                     size_t errlen)
{
    const char *sql = e->sql ? e->sql : "";
    switch (e->ddl) {
    case DDL_TRUNCATE:
        say(c, "TRUNCATE: the collection is emptied (%s)", sql);
        return gen_write_truncate(b->w, e->ver, err, errlen) ? -1 : 0;
    case DDL_DROP:
        say(c, "the table was dropped (%s): the channel stops", sql);
        pthread_mutex_lock(&c->mu);
        c->dropped = true;
        snprintf(c->errs, sizeof c->errs, "the table was dropped (%.400s): the channel stopped",
                 sql);
        pthread_mutex_unlock(&c->mu);
        return 0;
    case DDL_ADD_COLUMN:
        say(c, "a column was added (%s): not in the spec, ignored", sql);
        return 0;
    case DDL_DROP_COLUMN:
        say(c, "a column was dropped (%s): documents keep the values they have; a rebuild "
               "drops them", sql);
        return 0;
    default:
        say(c, "DDL ignored: %s", sql);
        return 0;
    }
}

static void note_version(struct batch *b, struct part *p, struct version v)
{
    if (v.domain == VER_TSO && v.v > p->ts)
        p->ts = v.v;
    if (v.domain != VER_NONE)
        b->event_domain = v.domain;
}

/* Applies the events of one message. Returns 0, or -1 when the batch must
 * be abandoned (a storage error). Bad events are reported and skipped. */
static int apply_message(struct incr *c, struct batch *b, const rd_kafka_message_t *m,
                         struct part *p)
{
    char err[512] = "";
    cdc_events_reset(&c->ev);
    if (!c->proto) {
        enum cdc_protocol p = cdc_detect(m->key, m->key_len, m->payload, m->len);
        pthread_mutex_lock(&c->mu);
        c->proto = p;
        pthread_mutex_unlock(&c->mu);
        if (p)
            say(c, "protocol detected: %s", cdc_protocol_name(p));
    }
    int rc = c->proto ? cdc_decode(c->proto, m->key, m->key_len, m->payload, m->len, &c->ev, err,
                                   sizeof err)
                      : (snprintf(err, sizeof err, "not a message of any known protocol"), -1);
    if (rc) {
        say(c, "skipped message %s/%d@%lld: %s", c->spec.topic, m->partition,
            (long long)m->offset, err);
        b->skipped++;
        return 0;
    }
    for (size_t i = 0; i < c->ev.n && !c->dropped; i++) {
        const struct cdc_event *e = &c->ev.ev[i];
        if (e->kind == CDC_RESOLVED) {
            note_version(b, p, e->ver);
            continue;
        }
        if (!ours(c, e))
            continue;
        rc = e->kind == CDC_DDL ? apply_ddl(c, b, e, err, sizeof err)
                                : apply_row(c, b, e, err, sizeof err);
        if (rc < 0) {
            say(c, "cannot apply message %s/%d@%lld: %s", c->spec.topic, m->partition,
                (long long)m->offset, err);
            return -1;
        }
        if (rc > 0) {
            say(c, "skipped event %zu of message %s/%d@%lld: %s", i + 1, c->spec.topic,
                m->partition, (long long)m->offset, err);
            b->skipped++;
        } else
            note_version(b, p, e->ver);
    }
    return 0;
}

/* After a commit: the consumer group learns the positions (for kcat and
 * lag tools; the truth is in the generation). */
static void commit_offsets(struct incr *c)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(c->nparts);
    for (int i = 0; i < c->nparts; i++)
        rd_kafka_topic_partition_list_add(l, c->spec.topic, c->parts[i].id)->offset =
            c->parts[i].pos;
    rd_kafka_commit(c->rk, l, 1);
    rd_kafka_topic_partition_list_destroy(l);
}

/* Publishes (or, undo, takes back) a batch's positions and counters. */
static void publish_locked(struct incr *c, struct batch *b, bool undo)
{
    int64_t sign = undo ? -1 : 1;
    struct part *other = c->parts;
    c->parts = b->parts;
    b->parts = other;
    c->applied += (uint64_t)(sign * b->applied);
    c->stale += (uint64_t)(sign * b->stale);
    c->skipped += (uint64_t)(sign * b->skipped);
    if (!undo && b->event_domain)
        c->event_domain = b->event_domain;
}

/* Applies msgs[0..n) in one transaction with the positions after them.
 * Returns 0, or -1 with the batch undone (positions included). */
static int apply_batch(struct incr *c, rd_kafka_message_t **msgs, int n)
{
    char err[512] = "a change could not be stored (see logs): retrying from the stored positions";
    struct batch b = {gen_write_begin(c->g, c->an, err, sizeof err), 0, 0, 0, 0, NULL};
    if (!b.w) {
        set_error(c, err);
        return -1;
    }
    pthread_mutex_lock(&c->mu);
    b.parts = xmalloc((size_t)c->nparts * sizeof *b.parts);
    memcpy(b.parts, c->parts, (size_t)c->nparts * sizeof *b.parts);
    pthread_mutex_unlock(&c->mu);
    int rc = 0;
    for (int i = 0; i < n && !rc && !c->dropped; i++) {
        struct part *p = batch_part(c, &b, msgs[i]->partition);
        if (!p || msgs[i]->offset < p->pos) /* a refetch of what is applied */
            continue;
        rc = apply_message(c, &b, msgs[i], p);
        p->pos = msgs[i]->offset + 1;
    }
    /* The state to commit is what the status will show once it has
     * committed, not before: readers see positions only with their data. */
    pthread_mutex_lock(&c->mu);
    publish_locked(c, &b, false);
    struct json_object *st = state_json_locked(c);
    publish_locked(c, &b, true);
    pthread_mutex_unlock(&c->mu);
    if (!rc)
        rc = gen_write_commit(b.w, st, err, sizeof err);
    else
        gen_write_abort(b.w);
    json_object_put(st);
    pthread_mutex_lock(&c->mu);
    if (!rc) {
        publish_locked(c, &b, false);
        count_applied_locked(c, b.applied);
    }
    update_state_locked(c);
    pthread_mutex_unlock(&c->mu);
    free(b.parts);
    if (rc) {
        set_error(c, err);
        return -1;
    }
    c->dirty = true;
    commit_offsets(c);
    return 0;
}

/* Takes what has arrived: the first message waits up to wait_ms, the rest
 * at most INCR_BATCH_WAIT_MS after it. Error events are handled here. */
static int poll_batch(struct incr *c, rd_kafka_message_t **msgs, int wait_ms)
{
    int n = 0;
    size_t bytes = 0;
    double deadline = 0;
    while (n < INCR_BATCH_MAX && bytes < INCR_BATCH_BYTES) {
        int ms = n ? (int)((deadline - mono_now()) * 1000) : wait_ms;
        if (n && ms <= 0)
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, ms);
        if (!m)
            break;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                kafka_error(c->rk, m->err, rd_kafka_message_errstr(m), c);
            rd_kafka_message_destroy(m);
            continue;
        }
        if (!n)
            deadline = mono_now() + INCR_BATCH_WAIT_MS / 1000.0;
        bytes += m->len + m->key_len;
        msgs[n++] = m;
    }
    return n;
}

/* End offsets, asked of the broker: lag, and proof that it answers (a
 * consumer whose broker went away just sees no messages). One round trip a
 * partition, so only the partitions whose end is unknown and one more in
 * turn are asked; fetches keep the others current (cached_watermarks). */
static void refresh_watermarks(struct incr *c)
{
    bool ok = true;
    int turn = c->nparts ? c->refresh_turn++ % c->nparts : 0;
    for (int i = 0; i < c->nparts && !atomic_load(&c->stop); i++) {
        int64_t hi;
        if (c->parts[i].hw >= 0 && i != turn)
            continue;
        rd_kafka_resp_err_t e = edge_offset(c->rk, c->spec.topic, c->parts[i].id,
                                            RD_KAFKA_OFFSET_END, &hi, 1000);
        if (e) {
            char why[600];
            snprintf(why, sizeof why, "Kafka %s does not answer: %s", c->spec.mq_address,
                     rd_kafka_err2str(e));
            set_error(c, why);
            ok = false;
            break;
        }
        pthread_mutex_lock(&c->mu);
        c->parts[i].hw = hi;
        if (c->parts[i].goal < 0)
            c->parts[i].goal = hi;
        pthread_mutex_unlock(&c->mu);
    }
    if (ok)
        clear_error(c);
    pthread_mutex_lock(&c->mu);
    update_state_locked(c);
    check_caught_up_locked(c);
    pthread_mutex_unlock(&c->mu);
    c->next_watermarks = mono_now() + WATERMARK_EVERY_SEC;
}

/* One merge step: FOLD_TERMS terms in one transaction. Returns whether
 * it ran (and sets c->fold_left). */
static bool fold_step(struct incr *c, bool idle)
{
    char err[512];
    struct gen_writer *w = gen_write_begin(c->g, c->an, err, sizeof err);
    if (!w)
        return false;
    uint64_t entries = gen_write_delta_entries(w);
    c->fold_left = entries > 0;
    pthread_mutex_lock(&c->mu);
    c->unmerged = entries;
    pthread_mutex_unlock(&c->mu);
    if (!entries || (!idle && entries < FOLD_BUSY_ENTRIES) ||
        gen_write_fold(w, &c->fold_from, FOLD_TERMS, &c->fold_left, err, sizeof err)) {
        gen_write_abort(w);
        return false;
    }
    if (gen_write_commit(w, NULL, err, sizeof err) == 0)
        c->dirty = true;
    if (!c->fold_left) {
        pthread_mutex_lock(&c->mu);
        c->unmerged = 0;
        pthread_mutex_unlock(&c->mu);
    }
    return true;
}

/* The merge between batches: while idle, steps for up to FOLD_IDLE_SEC;
 * while busy, one step once the backlog is large. */
static void fold_some(struct incr *c, bool idle)
{
    double end = mono_now() + FOLD_IDLE_SEC;
    while (fold_step(c, idle) && idle && c->fold_left && mono_now() < end &&
           !atomic_load(&c->stop))
        ;
}

static void sleep_interruptibly(struct incr *c, double secs)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + secs;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    pthread_mutex_lock(&c->mu);
    if (!atomic_load(&c->stop))
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    pthread_mutex_unlock(&c->mu);
}

/* End offsets as the last fetches saw them (no round trip): lag stays
 * current between the broker queries. */
static void cached_watermarks(struct incr *c)
{
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->nparts; i++) {
        int64_t lo, hi;
        struct part *p = &c->parts[i];
        if (rd_kafka_get_watermark_offsets(c->rk, c->spec.topic, p->id, &lo, &hi) == 0 &&
            hi > p->hw)
            p->hw = hi;
        if (p->hw >= 0 && p->hw < p->pos)
            p->hw = p->pos;
    }
    update_state_locked(c);
    check_caught_up_locked(c);
    pthread_mutex_unlock(&c->mu);
}

static void follow(struct incr *c)
{
    rd_kafka_message_t **msgs = xmalloc(INCR_BATCH_MAX * sizeof *msgs);
    while (!atomic_load(&c->stop) && !c->dropped && !c->caught_up) {
        /* A merge in progress does not wait for messages between steps. */
        int n = poll_batch(c, msgs, c->fold_left ? 0 : 100);
        int rc = n ? apply_batch(c, msgs, n) : 0;
        for (int i = 0; i < n; i++)
            rd_kafka_message_destroy(msgs[i]);
        if (rc) /* positions rolled back: reassign from the stored ones */
            break;
        if (n)
            cached_watermarks(c);
        if (mono_now() >= c->next_watermarks)
            refresh_watermarks(c);
        fold_some(c, n == 0);
        if (c->dirty && mono_now() - c->last_sync >= SYNC_EVERY_SEC) {
            gen_sync(c->g);
            gen_release_pages(c->g);
            c->dirty = false;
            c->last_sync = mono_now();
        }
    }
    free(msgs);
}

static void *run(void *arg)
{
    struct incr *c = arg;
    char err[512];
    double retry = RETRY_MIN_SEC;
    if (!(c->an = analyzer_new(err, sizeof err))) {
        set_error(c, err);
        goto out;
    }
    state_load(c);
    if (c->dropped)
        set_error(c, "the table was dropped: create the collection again");
    while (!atomic_load(&c->stop) && !c->dropped && !c->caught_up) {
        int rc = connect_and_assign(c, err, sizeof err);
        if (rc == -2) {
            set_error(c, err);
            break;
        }
        if (rc) {
            set_error(c, err);
            sleep_interruptibly(c, retry);
            retry = retry * 2 > RETRY_MAX_SEC ? RETRY_MAX_SEC : retry * 2;
            continue;
        }
        retry = RETRY_MIN_SEC;
        refresh_watermarks(c);
        follow(c);
        disconnect(c);
    }
out:
    if (c->dirty)
        gen_sync(c->g);
    pthread_mutex_lock(&c->mu);
    c->done = true;
    if (!c->errs[0])
        c->state = "stopped";
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- life cycle ---- */

struct incr *incr_start(const char *collection, const struct tis_incr_spec *spec,
                        const char *db, const char *table, struct gen *g, enum incr_mode mode,
                        incr_log_fn log, void *log_arg)
{
    struct incr *c = xcalloc(1, sizeof *c);
    c->name = xstrdup(collection);
    c->db = xstrdup(db);
    c->table = xstrdup(table);
    spec_incr_copy(&c->spec, spec);
    c->proto = spec->protocol ? cdc_protocol_from_name(spec->protocol) : CDC_UNKNOWN;
    gen_ref(g);
    c->g = g;
    c->mode = mode;
    c->log = log;
    c->log_arg = log_arg;
    c->state = "catching_up";
    size_t nf = gen_schema(g)->nfields;
    c->vals = xcalloc(nf, sizeof *c->vals);
    c->present = xcalloc(nf, sizeof *c->present);
    c->moved = xcalloc(nf, sizeof *c->moved);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    atomic_init(&c->stop, false);
    if (pthread_create(&c->thread, NULL, run, c) != 0)
        abort();
    return c;
}

int incr_wait(struct incr *c, double timeout_sec)
{
    double end = mono_now() + timeout_sec;
    pthread_mutex_lock(&c->mu);
    while (!c->done && mono_now() < end) {
        pthread_mutex_unlock(&c->mu);
        sleep_interruptibly(c, 0.05);
        pthread_mutex_lock(&c->mu);
    }
    int r = c->caught_up ? 1 : c->done ? -1 : 0;
    pthread_mutex_unlock(&c->mu);
    return r;
}

void incr_stop(struct incr *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    atomic_store(&c->stop, true);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    disconnect(c);
    analyzer_free(c->an);
    cdc_events_free(&c->ev);
    tbuf_free(&c->conv);
    tbuf_free(&c->fold_from);
    gen_unref(c->g);
    spec_incr_free(&c->spec);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->vals);
    free(c->present);
    free(c->moved);
    free(c->parts);
    free(c->name);
    free(c->db);
    free(c->table);
    free(c);
}

struct gen *incr_gen(struct incr *c)
{
    return c->g;
}

bool incr_failing(struct incr *c)
{
    pthread_mutex_lock(&c->mu);
    bool r = c->errs[0] != 0;
    pthread_mutex_unlock(&c->mu);
    return r;
}

/* ---- incr_status ---- */

static const char *guarantee(struct version snap, uint8_t events)
{
    if (events == VER_NONE)
        return "exactly-once (positions and changes commit together); no event has been seen yet";
    if (events == VER_MS)
        return "at-least-once: canal-json without _tidb.commitTs orders events by milliseconds "
               "only; enable TiCDC's enable-tidb-extension for exact versions";
    if (snap.domain != events)
        return "exactly-once from the channel's stored positions; at-least-once at the snapshot "
               "handover (the snapshot's version and the events' do not compare)";
    return "exactly-once";
}

static struct json_object *cursor_json(const char *topic, const struct part *p, int n)
{
    struct json_object *a = json_object_new_array();
    for (int i = 0; i < n; i++) {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "mqName", json_object_new_string(topic));
        json_object_object_add(o, "partition", json_object_new_int(p[i].id));
        json_object_object_add(o, "cursor", json_object_new_int64(p[i].pos));
        bool hw = p[i].hw >= 0;
        json_object_object_add(o, "high_watermark", hw ? json_object_new_int64(p[i].hw) : NULL);
        json_object_object_add(o, "lag", hw ? json_object_new_int64(p[i].hw > p[i].pos
                                                                        ? p[i].hw - p[i].pos
                                                                        : 0)
                                            : NULL);
        json_object_array_add(a, o);
    }
    return a;
}

static uint64_t applied_ts(const struct part *p, int n)
{
    uint64_t ts = 0;
    for (int i = 0; i < n; i++)
        if (p[i].ts && (!ts || p[i].ts < ts))
            ts = p[i].ts;
    return ts;
}

static char *render(struct json_object *o)
{
    char *s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    size_t n = strlen(s);
    s = xrealloc(s, n + 2);
    memcpy(s + n, "\n", 2);
    return s;
}

static struct json_object *status_head(const char *collection, const char *state,
                                       enum cdc_protocol proto)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "indexName", json_object_new_string(collection));
    json_object_object_add(o, "state", json_object_new_string(state));
    json_object_object_add(o, "protocol", proto ? json_object_new_string(cdc_protocol_name(proto))
                                                : NULL);
    return o;
}

char *incr_status_json(struct incr *c, const char *collection)
{
    pthread_mutex_lock(&c->mu);
    struct json_object *o = status_head(collection, c->state, c->proto);
    json_object_object_add(o, "current_cursor", cursor_json(c->spec.topic, c->parts, c->nparts));
    json_object_object_add(o, "last_60_sec", json_object_new_int64((int64_t)last_60_locked(c)));
    uint64_t ts = applied_ts(c->parts, c->nparts);
    json_object_object_add(o, "applied_commit_ts", ts ? json_object_new_int64((int64_t)ts) : NULL);
    json_object_object_add(o, "applied", json_object_new_int64((int64_t)c->applied));
    json_object_object_add(o, "stale", json_object_new_int64((int64_t)c->stale));
    json_object_object_add(o, "skipped", json_object_new_int64((int64_t)c->skipped));
    json_object_object_add(o, "unmerged", json_object_new_int64((int64_t)c->unmerged));
    json_object_object_add(o, "guarantee",
                           json_object_new_string(guarantee(gen_snapshot_version(c->g),
                                                            c->event_domain)));
    json_object_object_add(o, "errs", json_object_new_string(c->errs));
    pthread_mutex_unlock(&c->mu);
    return render(o);
}

char *incr_status_stopped(const char *collection, const struct tis_incr_spec *spec,
                          struct gen *g, const char *state, const char *why)
{
    struct incr tmp = {0};
    tmp.spec.topic = spec ? spec->topic : "";
    tmp.g = g;
    pthread_mutex_init(&tmp.mu, NULL);
    if (g && spec) {
        tmp.name = (char *)collection;
        state_load(&tmp);
    }
    pthread_mutex_destroy(&tmp.mu);
    struct json_object *o = status_head(collection, state, tmp.proto);
    json_object_object_add(o, "current_cursor", cursor_json(tmp.spec.topic, tmp.parts, tmp.nparts));
    json_object_object_add(o, "last_60_sec", json_object_new_int(0));
    uint64_t ts = applied_ts(tmp.parts, tmp.nparts);
    json_object_object_add(o, "applied_commit_ts", ts ? json_object_new_int64((int64_t)ts) : NULL);
    json_object_object_add(o, "applied", json_object_new_int64((int64_t)tmp.applied));
    json_object_object_add(o, "stale", json_object_new_int64((int64_t)tmp.stale));
    json_object_object_add(o, "skipped", json_object_new_int64((int64_t)tmp.skipped));
    json_object_object_add(o, "errs", json_object_new_string(why ? why : ""));
    free(tmp.parts);
    return render(o);
}

/* ---- positions for a new generation ---- */

struct json_object *incr_positions_now(const struct tis_incr_spec *spec, char *err, size_t errlen)
{
    if (strcmp(spec->offset_reset, "latest") != 0)
        return NULL;
    struct incr tmp = {0};
    tmp.spec = *spec;
    rd_kafka_t *rk = kafka_new(spec, "tisfs-snapshot", &tmp, err, errlen);
    if (!rk)
        return NULL;
    int32_t *ids = NULL;
    int n = 0;
    struct json_object *o = NULL;
    if (topic_partitions(rk, spec->topic, &ids, &n, err, errlen) == 0) {
        struct json_object *pos = json_object_new_object();
        for (int i = 0; i < n && pos; i++) {
            int64_t hi;
            char k[16];
            rd_kafka_resp_err_t e = edge_offset(rk, spec->topic, ids[i], RD_KAFKA_OFFSET_END, &hi,
                                                5000);
            if (e) {
                snprintf(err, errlen, "cannot read the offsets of %s/%d: %s", spec->topic, ids[i],
                         rd_kafka_err2str(e));
                json_object_put(pos);
                pos = NULL;
                break;
            }
            snprintf(k, sizeof k, "%d", ids[i]);
            json_object_object_add(pos, k, json_object_new_int64(hi));
        }
        if (pos) {
            o = json_object_new_object();
            json_object_object_add(o, "topic", json_object_new_string(spec->topic));
            json_object_object_add(o, "positions", pos);
        }
    }
    free(ids);
    rd_kafka_destroy(rk);
    return o;
}
