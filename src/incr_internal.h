/* incr_internal.h — what the incremental channel's modules share: incr.c
 * (the error and state the status shows, the stored state, the loop, the
 * life cycle), incr_kafka.c (the consumer), incr_apply.c (applying) and
 * incr_status.c (incr_status). Not a public interface.
 *
 * Locking: fields under "mu" are read by status readers on other threads;
 * the consumer thread's own fields are touched by that thread only, so the
 * modules take mu just around what readers may see. Functions named
 * _locked expect mu held. */
#ifndef TISFS_INCR_INTERNAL_H
#define TISFS_INCR_INTERNAL_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "tisfs/cdc.h"
#include "tisfs/tz.h"
#include "tisfs/incr.h"
#include "tisfs/util.h"

struct part {
    int32_t id;
    int64_t pos; /* the next offset to apply */
    int64_t hw;  /* the partition's end offset, -1 unknown */
    uint64_t ts; /* newest TSO applied or resolved here */
    /* INCR_CATCH_UP: the end offset when the catch-up began, the goal (a
     * stream that never pauses has no moment of zero lag). -1 unknown. */
    int64_t goal;
};

/* An event's row image mapped onto the schema, in the form a dump gives. */
struct rowbuf {
    struct tis_value *vals;
    bool *present;
    bool *moved; /* vals[i] is an offset into conv (fixed up at the end) */
    bool all;    /* every field present */
    struct tbuf conv;
    struct tz_cache tz; /* the schema's time_zone, for Debezium's TIMESTAMPs */
};
void rowbuf_init(struct rowbuf *rb, size_t nfields);
void rowbuf_free(struct rowbuf *rb);

struct incr {
    char *name, *db, *table;
    struct tis_incr_spec spec;
    struct gen *g;
    enum incr_mode mode;
    struct incr_hooks hooks;
    pthread_t thread;
    atomic_bool stop;

    pthread_mutex_t mu; /* guards the status below */
    pthread_cond_t cv;
    const char *state;
    char errs[640];
    /* Whose errs is: a batch's (the next commit clears it), the broker's
     * (its answer does), or a position's (a partition that cannot go on
     * exactly: nothing clears it, and nothing else hides it). */
    enum { ERR_BATCH, ERR_BROKER, ERR_POSITION } err_kind;
    enum cdc_protocol proto;
    struct part *parts;
    int nparts;
    uint64_t applied, skipped, stale;
    uint8_t event_domain;
    /* A repair wanted (incr_repair_wanted): why, and its number (0: none).
     * repair_seq numbers them; repair_stored is false once a repair is
     * done and the stored state has yet to say so. */
    char repair_why[480];
    uint64_t repair_want, repair_seq;
    bool repair_stored;
    double next_repair_ask, repair_every;
    bool repair_refusal_said;
    uint32_t per_sec[60];
    int64_t sec_of[60];
    bool done, caught_up;
    /* The syncer thread: an fdatasync once a second, off the consumer's
     * path (a sync of a second's writes took up to a second, every change
     * behind it waited). */
    struct errand *syncer; /* NULL: none could start, syncs go inline */

    /* The consumer thread's own. */
    rd_kafka_t *rk;
    struct incr_decoder *dec; /* the polling and decoding thread, while connected */
    struct analyzer *an;
    struct cdc_events ev; /* only its tables, between connections (incr_decode.c) */
    struct rowbuf row;
    /* The table was dropped (stored with the positions): the channel
     * stops. The consumer thread's alone, read and written without mu;
     * readers see the drop as the error it also sets (incr_set_error), which
     * incr_clear_error then leaves. */
    bool dropped;
    bool dirty;
    uint64_t unmerged;     /* live segments' entries the merge has yet to fold (mu) */
    int refresh_turn;
    int wake_turn; /* the decoding thread's (wake_fetcher) */
    bool fold_left;
    double next_watermarks, last_sync, last_release, last_trim, next_grow_check;
    double next_partitions_check; /* incr_new_partitions */
    double last_batch; /* when the last batch was applied (mono_now) */
    size_t rows_unreleased; /* rows applied since the last release of mapped pages */
    bool untrimmed;          /* large batches freed memory since the last malloc_trim */
    char last_logged_err[640];
};

/* ---- incr.c ---- */

/* Records that a repair is wanted, for why (mu held). */
void incr_want_repair_locked(struct incr *c, const char *why);
/* Channel events go to the collection's logs, prefixed [incr]. */
void incr_say(struct incr *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Enters the error state with why; logged once per distinct cause, since
 * a broker that stays away reports the same cause on every retry. */
void incr_set_error(struct incr *c, const char *why);
/* incr_set_error for the broker's failures (unreachable, not answering). */
void incr_set_broker_error(struct incr *c, const char *why);
/* incr_set_error for a partition whose stored position it no longer has. */
void incr_set_position_error(struct incr *c, const char *why);
/* Leaves the error state once the broker answers, if it was the broker's
 * (logged only when there was one), so that a cause seen again is logged
 * again. */
void incr_clear_error(struct incr *c);
/* Leaves a batch's error state once a batch has committed. */
void incr_clear_apply_error(struct incr *c);
/* Derives c->state from the error (a drop included) and the lag: called wherever
 * positions or end offsets change, so that readers never see a state
 * older than the cursors beside it. */
void incr_update_state_locked(struct incr *c);
/* Whether the channel is far behind (state catching_up): batches may be
 * larger, merges only go by tiers and each merge step releases pages. */
bool incr_behind(struct incr *c);
/* Rows between checks of the budget; a quarter of them where faults map
 * the pages around the one read (VmHWM 255-260 MB of a 1M-event catch-up
 * with checks every 1 024 rows then). */
#define RELEASE_ROWS 1024
size_t incr_release_rows(struct incr *c);
/* A batch of this many messages leaves the heap to trim (incr.c). */
#define INCR_TRIM_BATCH 1024
/* Checks, after so many rows applied (rows_unreleased, counted within a
 * batch too) or so long, whether the mapped pages are over their budget,
 * and releases them if so (incr.c). */
void incr_release_pages(struct incr *c, double now);
/* INCR_CATCH_UP: whether every partition has reached its goal; the loop
 * ends on it and incr_wait reports it. */
void incr_check_caught_up_locked(struct incr *c);
/* The stored state (positions, counters, protocol): one form for what a
 * batch commits and what assignment stores, so a restart reads either. */
struct json_object *incr_state_json_locked(struct incr *c);
/* Loads the state the generation stores for this topic. incr_status.c
 * uses it on a bare struct incr (spec.topic, g, mu) for a channel that is
 * not running. */
void incr_state_load(struct incr *c);
/* Stores the state outside a batch: positions resolved at assignment must
 * hold before anything is applied, so a restart starts from the same
 * place. */
int incr_store_state(struct incr *c, char *err, size_t errlen);

/* ---- incr_kafka.c ---- */

/* Creates the consumer and assigns the topic's partitions at their stored
 * (or resolved) positions. Returns 0, -1 (retry later) or -2 (cannot
 * start: no retry); c->rk is NULL unless 0. */
int incr_connect(struct incr *c, char *err, size_t errlen);
/* Destroys the consumer, if any, without waiting on the group. */
void incr_disconnect(struct incr *c);
/* A batch's messages, taken one at a time (decoded as they come, while
 * the fetcher refills the queue): at most INCR_BATCH_MAX and about the
 * batch's bytes; the first waits up to wait_ms, the rest
 * INCR_BATCH_WAIT_MS (incr_poll_next says how). */
struct incr_poll {
    int n;
    size_t bytes, limit; /* bytes: the caller takes off what a message repeats */
    double give_up, deadline;
    bool behind, woken;
    bool fresh; /* a message came since the deadline was last set */
    struct incr_waker *waker; /* NULL: the poll wakes the fetcher itself */
};
void incr_poll_start(struct incr *c, struct incr_poll *p, int wait_ms);
/* A thread that wakes librdkafka's fetcher for a poller (wake_fetcher in
 * incr_kafka.c): the wake is a round trip, which the poller no longer
 * waits out, and it is asked for before the queue runs dry. Started after
 * incr_connect, stopped before incr_disconnect. */
struct incr_waker *incr_waker_start(struct incr *c);
void incr_waker_stop(struct incr_waker *w);
/* The batch's next message (the caller destroys it), or NULL at its end.
 * Error events are handled here. */
rd_kafka_message_t *incr_poll_next(struct incr *c, struct incr_poll *p);
/* After a batch has committed: the positions go to the consumer group too,
 * only for Kafka's own tools (the truth is in the generation). */
void incr_commit_offsets(struct incr *c);
/* End offsets asked of the broker (a round trip; sets or clears the error
 * state and c->next_watermarks), and as the last fetches saw them (none):
 * the one is the health check, the other keeps lag current between. */
void incr_refresh_watermarks(struct incr *c);
/* Whether the topic has gained partitions the channel does not follow
 * (asked of the broker every PARTITIONS_EVERY_SEC at most; librdkafka's own
 * metadata refresh comes every 5 minutes): the caller connects again, and
 * the assignment starts them at their first offset. */
bool incr_new_partitions(struct incr *c);
void incr_cached_watermarks(struct incr *c);

/* ---- incr_decode.c ---- */

/* A batch of messages and what each decodes to (rc 0, or -1 and err), with
 * the analysis of the row images the decoder could do ahead: grouped by
 * term in `group`, each one's packed form (index_group_add) in `packed`
 * at pre[first[i] + k] for event k of message i (SIZE_MAX: none). A
 * message itself is freed once decoded (msgs[i] NULL): the events hold
 * copies of what they need, and where it came from is in part and offset
 * (a batch of Debezium's held 8 MB of messages until it was applied). */
struct decoded {
    rd_kafka_message_t **msgs;
    int32_t *part;
    int64_t *offset;
    int n;
    struct cdc_events *ev;
    /* The events' copies, for all the batch's lists (cdc_events.shared):
     * a list's own would take a 4 KB chunk for a message of a few hundred
     * bytes, 40 MB of the heap over two batches of canal-json. */
    struct tbuf arena;
    int *rc;
    size_t *err; /* where message i's error is in errs (rc -1) */
    struct tbuf errs;
    size_t *first;
    size_t *pre;
    size_t npre, precap;
    struct tbuf packed;
    struct index_group *group;
};
static inline const char *decoded_err(const struct decoded *d, int i)
{
    return d->errs.data + d->err[i];
}
static inline const void *decoded_pre(const struct decoded *d, int i, size_t k)
{
    size_t j = d->first[i] + k;
    return j < d->npre && d->pre[j] != SIZE_MAX ? d->packed.data + d->pre[j] : NULL;
}
struct incr_decoder;
/* Starts polling and decoding (after incr_connect). */
struct incr_decoder *incr_decoder_start(struct incr *c);
/* The next decoded batch, waiting up to wait_ms for one; NULL if none. */
struct decoded *incr_decoder_next(struct incr_decoder *d, int wait_ms);
/* Whether the stream rests: nothing decoded waits and the last poll found
 * nothing (no batch ready may only mean the next is being decoded). */
bool incr_decoder_idle(struct incr_decoder *d);
/* Gives a batch back once applied (its messages are destroyed). */
void incr_decoder_done(struct incr_decoder *d, struct decoded *b);
/* Stops the thread; batches not applied are dropped (they are refetched
 * from the stored positions by the next assignment). */
void incr_decoder_stop(struct incr_decoder *d);

/* ---- incr_apply.c ---- */

/* Whether event e is of the channel's table (or a DDL of its database). */
bool incr_ours(const struct incr *c, const struct cdc_event *e);
/* Maps a row image onto the schema into rb (the dump's form of each value).
 * Fails when a primary key column is missing (with need_pk). */
int incr_row_values(struct incr *c, struct rowbuf *rb, const struct cdc_row *r, bool need_pk,
                    char *err, size_t errlen);

/* Applies a decoded batch in one transaction with the positions after it,
 * and publishes positions and counters once it has committed. Returns 0,
 * or -1 with the batch undone and the error state set: the loop then
 * reassigns from the stored positions. */
int incr_apply_batch(struct incr *c, struct decoded *b);

/* ---- incr_status.c ---- */

/* Counts n applied events in this second, for last_60_sec. */
void incr_count_applied_locked(struct incr *c, uint32_t n);

#endif
