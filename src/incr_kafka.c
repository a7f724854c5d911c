/* incr_kafka — the incremental channel's consumer: the librdkafka client,
 * the topic's partitions, start offsets, assignment from the stored
 * positions, end offsets, polling, commits to the consumer group, and the
 * positions for a new generation (see incr.h, incr_internal.h). */
#define _GNU_SOURCE
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incr_internal.h"
#include "tisfs/cdc.h"
#include "tisfs/errand.h"
#include "tisfs/util.h"

/* How often the end offsets are asked for (lag, and a health check). */
#define WATERMARK_EVERY_SEC 1.0
#define PARTITIONS_EVERY_SEC 10.0
/* An empty poll this long wakes the fetcher (wake_fetcher): far behind,
 * where it sleeps whenever the queue passes its bounds, and near the head,
 * where it sleeps only after a burst. Each wake is a request on the
 * fetches' connection, and near the head one a batch (every batch ended
 * with an empty poll) left fetches waiting behind it for the broker's
 * delayed ACK (Nagle), 40 ms at times: the p99 at 5 000 events/s. */
#define WAKE_AFTER_MS 2
#define WAKE_AFTER_HEAD_MS 20
/* The prefetch queue's bounds (see kafka_new): librdkafka fetches while
 * the queue holds fewer messages and fewer kilobytes than these. */
#define QUEUE_MESSAGES 4096
#define QUEUE_KBYTES 16384

static void kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    struct incr *c = opaque;
    char why[600];
    snprintf(why, sizeof why, "Kafka %s: %s", c->spec.mq_address, reason);
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT ||
        err == RD_KAFKA_RESP_ERR__RESOLVE || err == RD_KAFKA_RESP_ERR__FATAL)
        incr_set_broker_error(c, why);
    else
        incr_say(c, "%s", why);
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

/* A consumer of spec's cluster. Its error events go to channel c's error
 * state; c may be NULL for a short-lived client that has no channel
 * (incr_positions_now), whose calls report their own failures. */
static rd_kafka_t *kafka_new(const struct tis_incr_spec *spec, const char *client,
                             struct incr *c, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *kv[][2] = {
        {"bootstrap.servers", spec->mq_address},
        {"group.id", spec->group_id},
        {"client.id", client},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        /* A stored position the partition no longer has is the channel's
         * to handle (position_lost), never a silent jump. */
        {"auto.offset.reset", "error"},
        /* Low latency at low rates: a fetch waits at most this long. */
        {"fetch.wait.max.ms", "5"},
        {"fetch.error.backoff.ms", "50"},
        {"reconnect.backoff.ms", "100"},
        {"reconnect.backoff.max.ms", "1000"},
        {"socket.timeout.ms", "10000"},
        /* The consumer never joins its group (partitions are assigned),
         * so this only bounds how long a closing consumer keeps offset
         * commits waiting for a coordinator that is gone: 45 s by
         * default, which a shutdown or rm -r during an outage waited. */
        {"session.timeout.ms", "6000"},
        /* Flat memory: the prefetch queue and the fetch responses are what
         * a backlog costs. The queue holds QUEUE_MESSAGES messages or
         * QUEUE_KBYTES at most, whichever comes first: half a batch of
         * work, whatever a message's size. A bound of 4 MB alone held
         * ~1 300 of Debezium's messages (~3.3 KB, most of it the schema
         * each repeats), ~14 ms of decoding: the queue ran dry while the
         * fetcher decompressed the next response, and the channel idled.
         * A fetch of at most 1 MB (4 MB, and librdkafka's 50 MB, before):
         * a response is decompressed and queued whole, past the queue's
         * bound, and Debezium's messages compress ~15 times: 4 MB fetches
         * took RssAnon to 116-120 MB in its 1M-event catch-up, 1 MB to
         * 77-82. */
        {"queued.min.messages", TIS_STR(QUEUE_MESSAGES)},
        {"queued.max.messages.kbytes", TIS_STR(QUEUE_KBYTES)},
        {"fetch.max.bytes", "1048576"},
        {"fetch.message.max.bytes", "262144"},
    };
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++)
        if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], err, errlen) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    if (c) {
        rd_kafka_conf_set_opaque(conf, c);
        rd_kafka_conf_set_error_cb(conf, kafka_error);
    }
    rd_kafka_conf_set_log_cb(conf, kafka_log);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errlen);
    if (!rk)
        rd_kafka_conf_destroy(conf); /* rd_kafka_new owns conf only on success */
    return rk;
}

/* The topic's partition ids, from the broker's metadata. */
static int topic_partitions(rd_kafka_t *rk, const char *topic, int32_t **ids, int *n, char *err,
                            size_t errlen, int timeout_ms)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, timeout_ms);
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

/* Where a partition without a stored position starts, resolved to an
 * explicit offset (stored before anything is applied, so a restart starts
 * from the same place): where offsetResetStrategy says, or, for one added
 * to the topic since the channel started, at its first offset. */
static int resolve_start(struct incr *c, int32_t id, bool added, int64_t *pos, char *err,
                         size_t errlen)
{
    if (!added && strcmp(c->spec.offset_reset, "none") == 0) {
        snprintf(err, errlen,
                 "no stored position for partition %d of topic %s and offsetResetStrategy is "
                 "none: rebuild the collection (collections/N/build) with a spec whose incr block "
                 "says earliest or latest",
                 id, c->spec.topic);
        return -2;
    }
    bool latest = !added && strcmp(c->spec.offset_reset, "latest") == 0;
    rd_kafka_resp_err_t e = edge_offset(c->rk, c->spec.topic, id,
                                        latest ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING,
                                        pos, 5000);
    if (e) {
        snprintf(err, errlen, "cannot read the offsets of %s/%d: %s", c->spec.topic, id,
                 rd_kafka_err2str(e));
        return -1;
    }
    if (added)
        incr_say(c, "partition %d of %s is new: starting at its first offset %lld", id,
                 c->spec.topic, (long long)*pos);
    else
        incr_say(c, "partition %d has no stored position: starting at its %s offset %lld", id,
                 c->spec.offset_reset, (long long)*pos);
    return 0;
}

static struct part *part_of(struct incr *c, int32_t id)
{
    for (int i = 0; i < c->nparts; i++)
        if (c->parts[i].id == id)
            return &c->parts[i];
    return NULL;
}

/* Drops from the state the partitions the topic does not have (ids[0..n),
 * from its metadata): a topic recreated with fewer partitions, or another
 * cluster behind the same address. Nothing can be read from them, so they
 * would only hold a lag that never shrinks and a catch-up goal that is
 * never reached (the end offset of a partition that does not exist cannot
 * be asked). Returns whether any went; they are logged here, once, since
 * the caller stores the state without them. */
static bool drop_stale_partitions(struct incr *c, const int32_t *ids, int n)
{
    struct tbuf which = {0}, at = {0};
    int kept = 0, gone = 0;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->nparts; i++) {
        bool in_topic = false;
        for (int j = 0; j < n && !in_topic; j++)
            in_topic = ids[j] == c->parts[i].id;
        if (in_topic) {
            c->parts[kept++] = c->parts[i];
            continue;
        }
        tbuf_printf(&which, "%s%d", gone ? ", " : "", c->parts[i].id);
        tbuf_printf(&at, "%s%d@%lld", gone ? ", " : "", c->parts[i].id,
                    (long long)c->parts[i].pos);
        gone++;
    }
    c->nparts = kept;
    incr_update_state_locked(c);
    pthread_mutex_unlock(&c->mu);
    if (gone)
        incr_say(c, "partition%s %s %s in the stored positions but not in topic %s (it has %d "
                    "partition%s): dropped from the state (partition@offset: %s)",
            gone > 1 ? "s" : "", which.data, gone > 1 ? "are" : "is", c->spec.topic, n,
            n > 1 ? "s" : "", at.data);
    tbuf_free(&which);
    tbuf_free(&at);
    return gone > 0;
}

/* Assigns every partition of the topic at its stored (or resolved) position.
 * Returns 0, -1 (retry later) or -2 (cannot start: no retry). */
static int assign(struct incr *c, char *err, size_t errlen)
{
    int32_t *ids = NULL;
    int n = 0, rc = topic_partitions(c->rk, c->spec.topic, &ids, &n, err, errlen, 5000);
    /* The state to store: partitions dropped or resolved must hold before
     * anything is applied. */
    bool resolved = !rc && drop_stale_partitions(c, ids, n);
    /* A partition without a position beside others that have one was added
     * to the topic since: every event on it is new, whatever the strategy
     * for a channel's first start says (latest would skip them). */
    bool added = c->nparts > 0;
    for (int i = 0; i < n && !rc; i++) {
        pthread_mutex_lock(&c->mu);
        struct part *p = part_of(c, ids[i]);
        pthread_mutex_unlock(&c->mu);
        if (p)
            continue;
        int64_t pos;
        if ((rc = resolve_start(c, ids[i], added, &pos, err, errlen)) != 0)
            break;
        pthread_mutex_lock(&c->mu);
        c->parts = xrealloc(c->parts, (size_t)(c->nparts + 1) * sizeof *c->parts);
        c->parts[c->nparts++] = (struct part){ids[i], pos, -1, 0, -1};
        pthread_mutex_unlock(&c->mu);
        resolved = true;
    }
    if (!rc && resolved)
        rc = incr_store_state(c, err, errlen);
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
            incr_say(c, "consuming %s from %s (partition@offset: %s), protocol %s", c->spec.topic,
                c->spec.mq_address, desc.data,
                c->proto ? cdc_protocol_name(c->proto) : "detected from the first message");
    }
    tbuf_free(&desc);
    rd_kafka_topic_partition_list_destroy(l);
    free(ids);
    return rc;
}

void incr_disconnect(struct incr *c)
{
    if (!c->rk)
        return;
    /* Nothing to leave: partitions are assigned, not subscribed, and the
     * positions are in the generation. Not waiting on the group keeps a
     * shutdown prompt while the broker is away. */
    rd_kafka_destroy_flags(c->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    c->rk = NULL;
}

int incr_connect(struct incr *c, char *err, size_t errlen)
{
    char client[128];
    snprintf(client, sizeof client, "tisfs-%s", c->name);
    if (!(c->rk = kafka_new(&c->spec, client, c, err, errlen)))
        return -2;
    rd_kafka_poll_set_consumer(c->rk);
    int rc = assign(c, err, errlen);
    if (rc)
        incr_disconnect(c);
    return rc;
}

/* librdkafka 2.0 stops fetching a partition while the prefetch queue holds
 * more than queued.max.messages.kbytes and decides again only when the
 * partition's broker thread wakes: at a request or response of its own, or
 * a second later (rd_kafka_max_block_ms; fetch.queue.backoff.ms, which
 * makes it shorter, came in 2.1). A catch-up drains the queue in a fraction
 * of that second and then waited out the rest: 0.3-0.45 s of every second
 * idle, the throughput capped at about a queue a second. Any request to the
 * leader wakes the thread, so when the queue is empty and a partition's
 * cached high watermark is past our position, we ask that leader for the
 * watermark (a round trip; the answer is useful anyway). */
static void wake_fetcher(struct incr *c)
{
    /* Under the lock: each applied batch swaps c->parts for a new array
     * (publish_locked) and frees the old one. */
    pthread_mutex_lock(&c->mu);
    rd_kafka_topic_partition_list_t *l =
        c->nparts ? rd_kafka_topic_partition_list_new(c->nparts) : NULL;
    for (int i = 0; l && i < c->nparts; i++)
        rd_kafka_topic_partition_list_add(l, c->spec.topic, c->parts[i].id);
    pthread_mutex_unlock(&c->mu);
    if (!l)
        return;
    if (rd_kafka_position(c->rk, l) == 0)
        for (int k = 0; k < l->cnt; k++) {
            rd_kafka_topic_partition_t *p = &l->elems[(c->wake_turn + k) % l->cnt];
            int64_t lo, hi;
            if (p->offset < 0 ||
                rd_kafka_get_watermark_offsets(c->rk, p->topic, p->partition, &lo, &hi) ||
                hi <= p->offset)
                continue;
            c->wake_turn += k + 1; /* another leader next time, if the topic has several */
            /* (edge_offset, not query_watermark_offsets: with the broker
             * gone, that hung, and shutdown or rm -r joined this thread) */
            edge_offset(c->rk, p->topic, p->partition, RD_KAFKA_OFFSET_END, &hi, 200);
            break;
        }
    rd_kafka_topic_partition_list_destroy(l);
}

/* Fetching from a stored position the partition no longer has: librdkafka
 * stops the partition and says so (auto.offset.reset is "error"). Below
 * the partition's first offset, retention deleted events before they were
 * applied: they are lost, which is said and counted in skipped, and the
 * partition goes on from its first offset left (offsetResetStrategy is for
 * a partition without a stored position: latest would skip more), or
 * stops with an error if the strategy is none. Past its
 * end (the topic created again, another cluster), the channel cannot tell
 * what it applied: an error, never a silent jump. */
static void position_lost(struct incr *c, int32_t part, int64_t pos)
{
    int64_t lo = -1, hi = -1, to = pos;
    char why[600];
    const char *reset = c->spec.offset_reset, *topic = c->spec.topic;
    if (edge_offset(c->rk, topic, part, RD_KAFKA_OFFSET_BEGINNING, &lo, 2000) ||
        edge_offset(c->rk, topic, part, RD_KAFKA_OFFSET_END, &hi, 2000)) {
        incr_say(c, "partition %d: position %lld out of range, and the broker does not say the "
                    "partition's range: trying again", part, (long long)pos);
    } else if (pos > hi || (pos < lo && strcmp(reset, "none") == 0)) {
        snprintf(why, sizeof why,
                 "partition %d of %s: the stored position %lld is %s the partition's offsets "
                 "(%lld..%lld)%s: the channel cannot go on exactly; rebuild the collection",
                 part, topic, (long long)pos, pos > hi ? "past" : "before", (long long)lo,
                 (long long)hi, pos > hi ? " (was the topic created again?)"
                                         : " and offsetResetStrategy is none");
        incr_set_position_error(c, why);
        return;
    } else if (pos < lo) {
        to = lo;
        incr_say(c, "LOST: partition %d: offsets %lld..%lld were deleted from the topic before "
                    "they were applied (its retention?): %lld messages, counted in skipped; the "
                    "collection differs from the table until it is rebuilt. Going on from %lld, "
                    "the first offset left",
                 part, (long long)pos, (long long)lo - 1, (long long)(lo - pos), (long long)to);
        pthread_mutex_lock(&c->mu);
        c->skipped += (uint64_t)(lo - pos);
        pthread_mutex_unlock(&c->mu);
    }
    /* librdkafka has stopped the partition, and a seek does not restart a
     * stopped one: every partition is assigned again, the others at their
     * applied positions (what the decoder holds beyond them comes again,
     * and is dropped as applied, as after a reconnect). */
    pthread_mutex_lock(&c->mu);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(c->nparts + 1);
    for (int i = 0; i < c->nparts; i++)
        rd_kafka_topic_partition_list_add(l, topic, c->parts[i].id)->offset =
            c->parts[i].id == part ? to : c->parts[i].pos;
    pthread_mutex_unlock(&c->mu);
    rd_kafka_resp_err_t e = rd_kafka_assign(c->rk, l);
    if (e) {
        snprintf(why, sizeof why, "partition %d: cannot fetch from offset %lld: %s", part,
                 (long long)to, rd_kafka_err2str(e));
        incr_set_broker_error(c, why);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* A catch-up's wake is asked for each time half the queue's messages or
 * half its bytes have been taken from it, so that the fetch it starts
 * lands while the other half is decoded: woken only once the queue was
 * empty, the decoding thread waited out a round trip ~20 times a second
 * (11 ms each, a tenth of its time). */
#define WAKE_EVERY_MESSAGES (QUEUE_MESSAGES / 2)
#define WAKE_EVERY_BYTES ((size_t)QUEUE_KBYTES << 9)

struct incr_waker {
    struct errand *e;   /* NULL: no thread, the poller wakes the fetcher */
    size_t taken;       /* bytes polled since the last wake (the poller's) */
    size_t taken_msgs;  /* and messages */
};

static void wake_errand(void *c)
{
    wake_fetcher(c);
}

struct incr_waker *incr_waker_start(struct incr *c)
{
    struct incr_waker *w = xcalloc(1, sizeof *w);
    w->e = errand_start("incr-wake", wake_errand, c);
    return w;
}

void incr_waker_stop(struct incr_waker *w)
{
    if (!w)
        return;
    errand_stop(w->e);
    free(w);
}

/* Wakes the fetcher through w's thread, or here without one. */
static void wake(struct incr *c, struct incr_waker *w)
{
    if (w)
        w->taken = w->taken_msgs = 0;
    if (w && w->e)
        errand_ask(w->e);
    else
        wake_fetcher(c);
}

void incr_poll_start(struct incr *c, struct incr_poll *p, int wait_ms)
{
    bool behind = incr_behind(c);
    *p = (struct incr_poll){
        .limit = !behind                ? INCR_BATCH_BYTES
                 : c->proto == CDC_OPEN ? INCR_BATCH_BYTES_BEHIND_OPEN
                                        : INCR_BATCH_BYTES_BEHIND,
        .give_up = mono_now() + wait_ms / 1000.0,
        .behind = behind,
    };
}

/* The batch ends INCR_BATCH_WAIT_MS after its first message near the head
 * (a change is visible within milliseconds), and far behind only when the
 * queue stays empty for INCR_BATCH_WAIT_BEHIND_MS: the messages are
 * decoded as they come, so the queue runs dry while the fetcher refills
 * it, and a batch cut there would be a small one. An empty queue is first
 * met with a short wait and a wake of the fetcher (wake_fetcher), once a
 * batch; near the head only a wait of WAKE_AFTER_HEAD_MS wakes it. */
rd_kafka_message_t *incr_poll_next(struct incr *c, struct incr_poll *p)
{
    while (p->n < INCR_BATCH_MAX && p->bytes < p->limit) {
        /* A message that waits is taken without reading the clock: two
         * reads a message were 2 % of the decoding thread. Far behind, the
         * quiet time is counted from the first empty poll after a message,
         * microseconds after it. */
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 0);
        if (!m) {
            double now = mono_now();
            if (p->n && p->behind && p->fresh)
                p->deadline = now + INCR_BATCH_WAIT_BEHIND_MS / 1000.0;
            p->fresh = false;
            int ms = (int)(((p->n ? p->deadline : p->give_up) - now) * 1000),
                wake_after = p->behind ? WAKE_AFTER_MS : WAKE_AFTER_HEAD_MS;
            if (ms < 0)
                ms = 0;
            if (!p->woken && ms > wake_after) /* an empty queue may be a sleeping fetcher */
                ms = wake_after;
            m = ms ? rd_kafka_consumer_poll(c->rk, ms) : NULL;
            if (!m && !p->woken && (p->behind || ms == wake_after)) {
                wake(c, p->waker);
                p->woken = true;
                continue;
            }
            if (!m)
                return NULL;
        }
        if (m->err) {
            if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET)
                position_lost(c, m->partition, m->offset);
            else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                kafka_error(c->rk, m->err, rd_kafka_message_errstr(m), c);
            rd_kafka_message_destroy(m);
            continue;
        }
        if (!p->n && !p->behind)
            p->deadline = mono_now() + INCR_BATCH_WAIT_MS / 1000.0;
        p->fresh = true;
        p->bytes += m->len + m->key_len;
        p->n++;
        if (p->waker && p->behind &&
            ((p->waker->taken += m->len + m->key_len) >= WAKE_EVERY_BYTES ||
             ++p->waker->taken_msgs >= WAKE_EVERY_MESSAGES))
            wake(c, p->waker);
        return m;
    }
    return NULL;
}

/* After a commit: the consumer group learns the positions (for kcat and
 * lag tools; the truth is in the generation). */
void incr_commit_offsets(struct incr *c)
{
    /* The group's offsets are the serving channel's: a rebuild's catch-up
     * starts behind it, and both committing sent them back and forth. */
    if (c->mode == INCR_CATCH_UP)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(c->nparts);
    for (int i = 0; i < c->nparts; i++)
        rd_kafka_topic_partition_list_add(l, c->spec.topic, c->parts[i].id)->offset =
            c->parts[i].pos;
    rd_kafka_commit(c->rk, l, 1);
    rd_kafka_topic_partition_list_destroy(l);
}

bool incr_new_partitions(struct incr *c)
{
    double now = mono_now();
    if (now < c->next_partitions_check)
        return false;
    c->next_partitions_check = now + PARTITIONS_EVERY_SEC;
    int32_t *ids = NULL;
    int n = 0;
    char err[256];
    if (topic_partitions(c->rk, c->spec.topic, &ids, &n, err, sizeof err, 1000))
        return false; /* (the watermarks say when the broker does not answer) */
    bool more = false;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < n && !more; i++)
        more = !part_of(c, ids[i]);
    pthread_mutex_unlock(&c->mu);
    free(ids);
    if (more)
        incr_say(c, "topic %s has gained partitions: connecting again to follow them",
                  c->spec.topic);
    return more;
}

/* End offsets, asked of the broker: lag, and proof that it answers (a
 * consumer whose broker went away just sees no messages). One round trip a
 * partition, so only the partitions whose end is unknown and one more in
 * turn are asked; fetches keep the others current (incr_cached_watermarks). */
void incr_refresh_watermarks(struct incr *c)
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
            incr_set_broker_error(c, why);
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
        incr_clear_error(c);
    pthread_mutex_lock(&c->mu);
    incr_update_state_locked(c);
    incr_check_caught_up_locked(c);
    pthread_mutex_unlock(&c->mu);
    c->next_watermarks = mono_now() + WATERMARK_EVERY_SEC;
}

/* End offsets as the last fetches saw them (no round trip): lag stays
 * current between the broker queries. */
void incr_cached_watermarks(struct incr *c)
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
    incr_update_state_locked(c);
    incr_check_caught_up_locked(c);
    pthread_mutex_unlock(&c->mu);
}

/* ---- positions for a new generation ---- */

struct json_object *incr_positions_now(const struct tis_incr_spec *spec, char *err, size_t errlen)
{
    if (strcmp(spec->offset_reset, "latest") != 0)
        return NULL;
    /* No channel behind this client: the metadata and offset calls below
     * say why they fail, and kafka_error (which needs a running channel's
     * lock, log and error state) is not installed. */
    rd_kafka_t *rk = kafka_new(spec, "tisfs-snapshot", NULL, err, errlen);
    if (!rk)
        return NULL;
    int32_t *ids = NULL;
    int n = 0;
    struct json_object *o = NULL;
    if (topic_partitions(rk, spec->topic, &ids, &n, err, errlen, 5000) == 0) {
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
