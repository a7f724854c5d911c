/* incr — the incremental channel: the error and state the status shows,
 * the stored state, the consumer thread's loop and the channel's life
 * cycle (see incr.h). The consumer is in incr_kafka.c, applying in
 * incr_apply.c, the status JSON in incr_status.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "incr_internal.h"
#include "tisfs/errand.h"
#include "tisfs/util.h"

/* Seconds between retries while the broker cannot be reached (doubling). */
#define RETRY_MIN_SEC 0.2
#define RETRY_MAX_SEC 5.0
#define SYNC_EVERY_SEC 1.0
/* Mapped pages of the generation a stream touches count in the daemon's
 * RSS until released: a batch of 4 096 rows at 600 000 rows in the table
 * reads ~1 600 random pk leaves (and without lmdb_map's exact faults each
 * read maps the page cache's pages around it too: ~150 MB a batch). They
 * go once the daemon's resident set passes RELEASE_RSS_BYTES with more
 * than RELEASE_MIN_MAPPED of it mapped from files, checked every
 * RELEASE_ROWS rows applied (within a batch too, incr_apply.c) and every
 * RELEASE_EVERY_SEC. Not sooner: a release is a TLB shootdown, and every
 * page touched after it faults in again, a trip to the hypervisor each on
 * a VM (a 1M-event canal-json catch-up: 35k events/s with a release every
 * 1 024 rows, 62k with none but 528 MB resident; with exact faults, 74-76k
 * with a release past 64 MB of file pages, 90k past 128 MB but 261 MB
 * resident). */
#define RELEASE_RSS_BYTES ((size_t)224 << 20)
#define RELEASE_MIN_MAPPED ((size_t)32 << 20)
#define RELEASE_EVERY_SEC 0.25
/* The heap's free pages go back (malloc_trim) only while the channel is
 * not far behind, at most every TRIM_EVERY_SEC: trimmed, the next batch's
 * allocations fault them in again page by page (main.c keeps glibc from
 * trimming by itself). Only large batches (INCR_TRIM_BATCH) leave pages to
 * give back: a steady stream's small ones reuse the same few, and a trim
 * cost 3.6-8.3 ms that the next change waited behind, once a second (at
 * 5 000 events/s). */
#define TRIM_EVERY_SEC 1.0
/* The map is grown ahead of need (gen_grow_ahead) when a check finds it more
 * than half used; a long read (a verify pass) that keeps the growth waiting
 * puts the next try off, since every query waits with the grower. */
#define GROW_CHECK_SEC 1.0
#define GROW_RETRY_SEC 30.0
/* The merge's time between two polls: short while the stream flows (a
 * change waits behind it), longer when idle. What is merged when is
 * index_fold's policy (tiers of segments while busy, into the base when
 * idle). */
#define FOLD_BUSY_SEC 0.005
#define FOLD_IDLE_SEC 0.05
/* Idle means no batch for this long. A steady stream has lulls of a few
 * milliseconds between batches; taken for rest, each began a 50 ms step
 * of the fold into the base, which the next change waited behind (at
 * 5 000 events/s, a stall of 50 ms every second or two: the p99). */
#define FOLD_REST_SEC 0.25
/* A lag above this many messages reads "catching_up" (and merges as a
 * channel far behind does). Messages, not events: an open-protocol message
 * holds up to 16 rows, so 10 000 of them (160 000 events) let most of a
 * 300 000-event catch-up merge as if at the head. */
#define CATCHING_UP_LAG 2000

/* ---- logging and status ---- */

void incr_say(struct incr *c, const char *fmt, ...)
{
    struct tbuf b = {0};
    va_list ap;
    va_start(ap, fmt);
    tbuf_adds(&b, "[incr] ");
    tbuf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (c->hooks.log)
        c->hooks.log(c->hooks.arg, b.data);
    tbuf_free(&b);
}

/* Enters the error state with why; logged once per distinct cause. */
static void set_error(struct incr *c, const char *why, int kind)
{
    pthread_mutex_lock(&c->mu);
    /* A position's error stays in errs: the others are only logged. */
    if (!(c->errs[0] && c->err_kind == ERR_POSITION && kind != ERR_POSITION)) {
        c->state = "error";
        snprintf(c->errs, sizeof c->errs, "%s", why);
        c->err_kind = kind;
    }
    /* (under the lock: librdkafka's error callback and the applying
     * thread both come here) */
    bool new_cause = strcmp(c->last_logged_err, why) != 0;
    if (new_cause)
        snprintf(c->last_logged_err, sizeof c->last_logged_err, "%s", why);
    pthread_mutex_unlock(&c->mu);
    if (new_cause)
        incr_say(c, "ERROR: %s", why);
}

void incr_set_error(struct incr *c, const char *why)
{
    set_error(c, why, ERR_BATCH);
}

void incr_set_broker_error(struct incr *c, const char *why)
{
    set_error(c, why, ERR_BROKER);
}

void incr_set_position_error(struct incr *c, const char *why)
{
    set_error(c, why, ERR_POSITION);
}

/* A drop is in errs too, and nothing clears it: the channel stays stopped. */
static void clear_error(struct incr *c, int kind, const char *what)
{
    if (c->dropped)
        return;
    pthread_mutex_lock(&c->mu);
    bool was = c->errs[0] != 0 && (int)c->err_kind == kind;
    if (was)
        c->errs[0] = c->last_logged_err[0] = 0;
    pthread_mutex_unlock(&c->mu);
    if (was)
        incr_say(c, "recovered: %s", what);
}

void incr_clear_error(struct incr *c)
{
    clear_error(c, ERR_BROKER, "the broker answers again");
}

void incr_clear_apply_error(struct incr *c)
{
    clear_error(c, ERR_BATCH, "batches commit again");
}

static int64_t total_lag_locked(const struct incr *c)
{
    int64_t lag = 0;
    for (int i = 0; i < c->nparts; i++)
        if (c->parts[i].hw >= 0 && c->parts[i].hw > c->parts[i].pos)
            lag += c->parts[i].hw - c->parts[i].pos;
    return lag;
}

void incr_update_state_locked(struct incr *c)
{
    /* A drop is in errs too (incr_set_error), which nothing clears. */
    if (c->errs[0])
        c->state = "error";
    else
        c->state = total_lag_locked(c) > CATCHING_UP_LAG || c->mode == INCR_CATCH_UP
                       ? "catching_up"
                       : "running";
}

bool incr_behind(struct incr *c)
{
    pthread_mutex_lock(&c->mu);
    bool behind = c->state && strcmp(c->state, "catching_up") == 0;
    pthread_mutex_unlock(&c->mu);
    return behind;
}

void incr_check_caught_up_locked(struct incr *c)
{
    bool done = c->mode == INCR_CATCH_UP && c->nparts > 0;
    for (int i = 0; i < c->nparts && done; i++)
        done = c->parts[i].goal >= 0 && c->parts[i].pos >= c->parts[i].goal;
    c->caught_up = done;
}

/* ---- the stored state: positions and counters, committed with each batch ---- */

struct json_object *incr_state_json_locked(struct incr *c)
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
    if (c->repair_want)
        json_object_object_add(o, "repair", json_object_new_string(c->repair_why));
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
void incr_state_load(struct incr *c)
{
    struct json_object *o = gen_channel_state(c->g), *v, *pos, *ts = NULL;
    if (!o)
        return;
    const char *topic = json_object_object_get_ex(o, "topic", &v) ? json_object_get_string(v)
                                                                  : NULL;
    if (!topic || strcmp(topic, c->spec.topic) != 0) {
        incr_say(c, "stored positions are for topic %s, not %s: starting afresh",
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
    if (json_object_object_get_ex(o, "repair", &v) && json_object_is_type(v, json_type_string))
        incr_want_repair_locked(c, json_object_get_string(v));
    free(c->parts);
    c->parts = parts;
    c->nparts = n;
    pthread_mutex_unlock(&c->mu);
    /* The consumer thread's own (readers see a drop through errs). */
    c->dropped = json_object_object_get_ex(o, "dropped", &v) && json_object_get_boolean(v);
    json_object_put(o);
}

int incr_store_state(struct incr *c, char *err, size_t errlen)
{
    pthread_mutex_lock(&c->mu);
    struct json_object *st = incr_state_json_locked(c);
    pthread_mutex_unlock(&c->mu);
    int rc = gen_set_channel_state(c->g, st, err, errlen);
    json_object_put(st);
    return rc;
}

/* ---- repairs ---- */

void incr_want_repair_locked(struct incr *c, const char *why)
{
    snprintf(c->repair_why, sizeof c->repair_why, "%s", why);
    c->repair_want = ++c->repair_seq;
    c->next_repair_ask = 0;
    c->repair_every = INCR_REPAIR_ASK_SEC;
    c->repair_refusal_said = false;
}

uint64_t incr_repair_wanted(struct incr *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t w = c->repair_want;
    pthread_mutex_unlock(&c->mu);
    return w;
}

void incr_repair_done(struct incr *c, uint64_t want)
{
    pthread_mutex_lock(&c->mu);
    if (want && want == c->repair_want) {
        c->repair_want = 0;
        c->repair_why[0] = 0;
        c->repair_stored = false; /* the channel's thread stores it */
    }
    pthread_mutex_unlock(&c->mu);
}

/* A following channel asks for the repair it wants, now and then; a repair
 * done is stored (on this thread: the state it writes holds the positions
 * committed last, no batch's in the making). */
static void repairs(struct incr *c)
{
    char why[sizeof c->repair_why], msg[512] = "", err[256];
    pthread_mutex_lock(&c->mu);
    bool store = !c->repair_stored;
    c->repair_stored = true;
    bool ask = c->mode == INCR_FOLLOW && c->hooks.repair && c->repair_want &&
               mono_now() >= c->next_repair_ask;
    if (ask) {
        c->next_repair_ask = mono_now() + INCR_REPAIR_ASK_SEC;
        snprintf(why, sizeof why, "%s", c->repair_why);
    }
    bool said = c->repair_refusal_said;
    pthread_mutex_unlock(&c->mu);
    if (store && incr_store_state(c, err, sizeof err))
        incr_say(c, "the repair is done but the state cannot record it (%s): another repair "
                    "will run after a restart", err);
    if (!ask)
        return;
    bool started = c->hooks.repair(c->hooks.arg, why, msg, sizeof msg);
    pthread_mutex_lock(&c->mu);
    if (started) { /* the next ask only if this one does not end the want */
        c->next_repair_ask = mono_now() + c->repair_every;
        c->repair_every = c->repair_every * 2 > INCR_REPAIR_ASK_MAX_SEC ? INCR_REPAIR_ASK_MAX_SEC
                                                                        : c->repair_every * 2;
    }
    c->repair_refusal_said |= !started && msg[0];
    pthread_mutex_unlock(&c->mu);
    if (started)
        incr_say(c, "repair %s started: %s", msg, why);
    else if (msg[0] && !said)
        incr_say(c, "a repair is due (%s) but cannot start yet: %s; asking again every %.0f s", why,
                 msg, INCR_REPAIR_ASK_SEC);
}

/* ---- the loop ---- */

/* Whether the resident set is over its budget, with enough of it mapped
 * from files that a release helps (statm: resident, then file and shared
 * memory pages). */
static bool over_budget(void)
{
    long resident = 0, mapped = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return true; /* release, as before there was a budget */
    int got = fscanf(f, "%*d %ld %ld", &resident, &mapped);
    fclose(f);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return got != 2 || ((size_t)resident * page >= RELEASE_RSS_BYTES &&
                        (size_t)mapped * page >= RELEASE_MIN_MAPPED);
}

static void release_now(struct incr *c, double now)
{
    if (over_budget())
        gen_release_pages(c->g);
    c->last_release = now;
    c->rows_unreleased = 0;
}

/* One merge step in one transaction. Returns whether it ran (and sets
 * c->fold_left). */
static bool fold_step(struct incr *c, bool rest, double until)
{
    char err[512];
    struct gen_writer *w = gen_write_begin(c->g, c->an, err, sizeof err);
    if (!w)
        return false;
    bool ran = false;
    int rc;
    bool behind = incr_behind(c);
    /* Far behind, a poll that finds nothing is a gap in the fetches, not a
     * stream at rest: a fold into the base then would take the catch-up's
     * CPU (both cores are busy) for work the stream's next batches undo. */
    enum index_merge_mode mode = behind ? INDEX_MERGE_BEHIND
                                 : rest ? INDEX_MERGE_ALL
                                        : INDEX_MERGE_TIERS;
    if (gen_write_fold(w, mode, until, &ran, &c->fold_left, err, sizeof err)) {
        if (gen_write_abort(w) == GEN_GREW) /* the next step runs in the larger map */
            incr_say(c, "the generation's map was full: it grew to %zu MiB, merging again",
                     gen_map_size(c->g) >> 20);
        else
            incr_say(c, "merge: %s", err);
        c->fold_left = false;
        return false;
    }
    uint64_t entries = gen_write_delta_entries(w);
    if (!ran)
        gen_write_abort(w);
    else if ((rc = gen_write_commit(w, NULL, err, sizeof err)) == 0)
        c->dirty = true;
    else if (rc == GEN_GREW)
        incr_say(c, "%s, merging again", err);
    /* A merge step reads a chunk of terms in up to INDEX_MERGE_FANIN_BEHIND
     * segments, a purge up to GEN_PURGE_IDS random pages of documents
     * (open-protocol's 1M-event catch-up peaked at 298 MB with releases
     * between batches only, at 224 MB with one after each step, when faults
     * mapped the pages around them). At rest, whatever the budget: the
     * merge's buffers come on top of what it mapped (a peak of 251 MB with
     * a release only past the budget). Near the head and busy, a tier of 8
     * small segments or a short purge reads little, and a release would
     * only add to the next change's wait. */
    if (ran && rest) /* nothing waits: what the step mapped goes at once */
        gen_release_pages(c->g);
    else if (ran && behind)
        release_now(c, mono_now());
    pthread_mutex_lock(&c->mu);
    c->unmerged = entries;
    pthread_mutex_unlock(&c->mu);
    return ran;
}

/* The merge between batches, for up to FOLD_BUSY_SEC (FOLD_IDLE_SEC when
 * the decoder is idle: no message waits). Only after FOLD_REST_SEC without
 * a batch is the stream at rest, and its steps long. */
static void fold_some(struct incr *c, bool idle)
{
    double now = mono_now(), end = now + (idle ? FOLD_IDLE_SEC : FOLD_BUSY_SEC);
    bool rest = idle && now - c->last_batch >= FOLD_REST_SEC;
    double step = rest ? FOLD_IDLE_SEC : FOLD_BUSY_SEC;
    for (;;) {
        double until = mono_now() + step;
        if (!fold_step(c, rest, until < end ? until : end) || !c->fold_left ||
            mono_now() >= end || atomic_load(&c->stop) || (idle && !incr_decoder_idle(c->dec)))
            break;
    }
}

/* Waits secs, or less when the channel is told to stop or its thread ends
 * (both broadcast cv). The deadline is on CLOCK_MONOTONIC, as c->cv's clock
 * is (incr_start): a step of the wall clock (NTP, date -s) would otherwise
 * stretch a retry's backoff by the step or cut it to nothing. */
static void sleep_interruptibly(struct incr *c, double secs)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long ns = (long long)ts.tv_nsec + (long long)(secs * 1e9);
    ts.tv_sec += (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&c->mu);
    /* Until the deadline (ETIMEDOUT), not the first wakeup: a spurious one
     * must not cut a retry short either. */
    while (!atomic_load(&c->stop) && !c->done &&
           pthread_cond_timedwait(&c->cv, &c->mu, &ts) == 0)
        ;
    pthread_mutex_unlock(&c->mu);
}

size_t incr_release_rows(struct incr *c)
{
    return gen_faults_exact(c->g) ? RELEASE_ROWS : RELEASE_ROWS / 4;
}

void incr_release_pages(struct incr *c, double now)
{
    if (c->rows_unreleased >= incr_release_rows(c) || now - c->last_release >= RELEASE_EVERY_SEC)
        release_now(c, now);
}

/* Grows the map ahead of need, asks the syncer for a sync of what was
 * committed once a second, and releases mapped pages more often, here
 * (madvise is quick; the syncer may be in a long fdatasync). */
static void upkeep(struct incr *c)
{
    double now = mono_now();
    if (c->dirty && now >= c->next_grow_check) { /* so that a batch rarely finds it full */
        size_t size;
        int r = gen_grow_ahead(c->g, &size);
        if (r == 1)
            incr_say(c, "the generation's map is more than half used: it grew to %zu MiB",
                     size >> 20);
        c->next_grow_check = now + (r == EBUSY ? GROW_RETRY_SEC : GROW_CHECK_SEC);
    }
    if (c->dirty)
        incr_release_pages(c, now);
    if (c->untrimmed && now - c->last_trim >= TRIM_EVERY_SEC && !incr_behind(c)) {
        malloc_trim(0); /* what a large batch freed goes back too */
        c->last_trim = now;
        c->untrimmed = false;
    }
    if (!c->dirty || now - c->last_sync < SYNC_EVERY_SEC)
        return;
    if (c->syncer)
        errand_ask(c->syncer);
    else /* no thread for it: here, then */
        gen_sync(c->g);
    c->dirty = false;
    c->last_sync = now;
}

/* Follows the topic until told to stop or a batch fails (true). */
static bool follow(struct incr *c)
{
    while (!atomic_load(&c->stop) && !c->dropped && !c->caught_up) {
        /* A merge in progress does not wait for messages between steps,
         * unless the channel is far behind: the decoding thread is then
         * busy, and merge steps while it decodes took its core (the two
         * are shared with the consumer's and the broker's threads: a 1M
         * event catch-up used 8 % more CPU, folding into the base what the
         * fold at rest folds again), also in the gaps between fetches
         * (Debezium's catch-up then folded into the base and peaked at
         * 255-279 MB). One step a batch still goes, and all that are due
         * once the delta outgrows twice the size folded into the base
         * while behind, so that it stays bounded. */
        pthread_mutex_lock(&c->mu);
        bool yield = c->unmerged < 2 * (uint64_t)INDEX_MERGE_BASE_ENTRIES_BEHIND;
        pthread_mutex_unlock(&c->mu);
        yield = yield && incr_behind(c);
        struct decoded *d = incr_decoder_next(c->dec, c->fold_left && !yield ? 0 : 100);
        int rc = d ? incr_apply_batch(c, d) : 0;
        if (d)
            incr_decoder_done(c->dec, d);
        /* rc: positions rolled back, reassign from the stored ones. A drop
         * has committed: nothing more is applied (nor a watermark asked). */
        if (rc || c->dropped)
            return rc != 0;
        if (d) {
            incr_cached_watermarks(c);
            c->last_batch = mono_now();
        }
        if (mono_now() >= c->next_watermarks)
            incr_refresh_watermarks(c);
        if (incr_new_partitions(c))
            return false;
        bool idle = !d && incr_decoder_idle(c->dec);
        if (d || !yield) /* far behind, an idle decoder is a gap in the fetches */
            fold_some(c, idle && !yield);
        upkeep(c);
        repairs(c);
    }
    return false;
}

/* The syncer's errand: what the consumer committed becomes durable. LMDB
 * allows mdb_env_sync beside a write transaction (an fdatasync of the
 * file: the commits before it are durable). */
static void sync_errand(void *c)
{
    gen_sync(((struct incr *)c)->g);
}

static void *run(void *arg)
{
    struct incr *c = arg;
    char err[512];
    double retry = RETRY_MIN_SEC, apply_retry = RETRY_MIN_SEC;
    pthread_setname_np(pthread_self(), "incr-apply"); /* as top -H and perf show it */
    c->syncer = errand_start("incr-sync", sync_errand, c);
    if (!(c->an = analyzer_new(err, sizeof err))) {
        incr_set_error(c, err);
        goto out;
    }
    incr_state_load(c);
    if (c->dropped)
        incr_set_error(c, "the table was dropped (the stored state says so): the channel stopped; "
                          "create the collection again");
    while (!atomic_load(&c->stop) && !c->dropped && !c->caught_up) {
        int rc = incr_connect(c, err, sizeof err);
        if (rc == -2) {
            incr_set_error(c, err);
            break;
        }
        if (rc) {
            incr_set_broker_error(c, err);
            sleep_interruptibly(c, retry);
            retry = retry * 2 > RETRY_MAX_SEC ? RETRY_MAX_SEC : retry * 2;
            continue;
        }
        retry = RETRY_MIN_SEC;
        incr_refresh_watermarks(c);
        c->dec = incr_decoder_start(c);
        pthread_mutex_lock(&c->mu);
        uint64_t applied = c->applied;
        pthread_mutex_unlock(&c->mu);
        bool failed = follow(c);
        incr_decoder_stop(c->dec); /* before the consumer it polls goes */
        c->dec = NULL;
        incr_disconnect(c);
        /* A batch that cannot be stored fails again at once (a map at its
         * largest, a full disk): without a pause the channel spun,
         * reconnecting and refetching. */
        pthread_mutex_lock(&c->mu);
        bool progressed = c->applied != applied;
        pthread_mutex_unlock(&c->mu);
        if (failed) {
            apply_retry = progressed ? RETRY_MIN_SEC : apply_retry;
            sleep_interruptibly(c, apply_retry);
            apply_retry = apply_retry * 2 > RETRY_MAX_SEC ? RETRY_MAX_SEC : apply_retry * 2;
        }
    }
out:
    errand_stop(c->syncer); /* it may still be syncing: it ends first */
    c->syncer = NULL;
    gen_sync(c->g); /* everything committed, whatever the syncer saw */
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
                        const struct incr_hooks *hooks)
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
    c->hooks = *hooks;
    c->repair_stored = true;
    c->state = "catching_up";
    size_t nf = gen_schema(g)->nfields;
    rowbuf_init(&c->row, nf);
    pthread_mutex_init(&c->mu, NULL);
    /* cv's timed waits (sleep_interruptibly) measure monotonic time. */
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&c->cv, &ca) != 0)
        abort();
    pthread_condattr_destroy(&ca);
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
    incr_disconnect(c);
    analyzer_free(c->an);
    cdc_events_free(&c->ev);
    rowbuf_free(&c->row);
    gen_unref(c->g);
    spec_incr_free(&c->spec);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
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
