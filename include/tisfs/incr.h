/* incr — the incremental channel: one librdkafka consumer per collection
 * that follows the table's changes from TiCDC on Kafka and applies each
 * exactly once to the serving generation.
 *
 * Exactly once: the consumer is assigned partitions at the positions stored
 * in the generation (never the consumer group's), and every batch of index
 * changes commits in one LMDB transaction with the positions after it, so a
 * crash at any instant repeats nothing and loses nothing. The versions
 * stored per row (gen.h) make duplicates and replays (TiCDC is
 * at-least-once) change nothing. Offsets also go to the consumer group after
 * each commit, only so that Kafka's own tools show the position.
 *
 * Batches: a decoding thread takes what has arrived, waiting at most
 * INCR_BATCH_WAIT_MS after the first message, so a lone event is visible
 * within milliseconds and a backlog applies many events per transaction;
 * it decodes the batch and analyses its rows while the channel's thread
 * writes the one before, as one segment of the live index. Between
 * batches, and when idle, the channel's thread merges segments (see
 * index.h) a time-bounded step per transaction. */
#ifndef TISFS_INCR_H
#define TISFS_INCR_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "tisfs/gen.h"
#include "tisfs/spec.h"

/* Messages a batch. A batch of 8 192 rather than 4 096 rows changes fewer
 * random leaves of the key tree an event (a canal-json catch-up wrote 2.1
 * instead of 2.6 KB an event) and makes half as many segments to merge. */
#define INCR_BATCH_MAX 8192
/* A write transaction keeps its dirty pages in memory: a batch also ends
 * at this many bytes of messages, less what they repeat (cdc_events.
 * repeated: Debezium's schema, ~2.4 KB of its ~3.3 KB messages, which
 * otherwise ended its batches at ~2 600 messages; at 8 192 its 1M-event
 * catch-up wrote 1.32 instead of 1.87 KB an event and the writing thread
 * spent 5.8 instead of 7.3-7.7 CPU s). An open-protocol message holds up
 * to 16 rows. While catching up (far behind) batches may be larger: each is a
 * segment, and fewer, larger segments mean less merging and fewer rewrites
 * of the same key and norm pages (on a 100 000-event catch-up, 1 MiB
 * batches wrote 6.2 KB an event against 4.5 KB with 4 MiB; Debezium's
 * messages, ~3 KB with their schema, filled 4 MiB with 1 300 events and
 * wrote 6.4 KB an event, 4.0 KB with 8 MiB; 16 MiB held 16 000
 * open-protocol rows a batch, RssAnon 266 MB against 159 with 8); near the
 * head small batches keep the latency of each change low. */
#define INCR_BATCH_BYTES ((size_t)512 << 10)
#define INCR_BATCH_BYTES_BEHIND ((size_t)8 << 20)
/* An open-protocol message holds up to 16 rows: 8 MiB of them were ~8 700
 * rows a batch, twice what a batch of INCR_BATCH_MAX messages of any other
 * protocol holds, and the two batches in flight (one applied, the next
 * decoded) took the daemon to 249-270 MB at the peak of a 1M-event
 * catch-up; with 4 MiB (~4 300 rows), 227 MB, at 3.5 instead of 2.7 KB
 * written an event. */
#define INCR_BATCH_BYTES_BEHIND_OPEN ((size_t)4 << 20)
/* Near the head a batch ends this long after its first message; far
 * behind, once the queue stays empty for INCR_BATCH_WAIT_BEHIND_MS. 2 ms
 * rather than 5 at 5 000 events/s: p50 12.0-12.3 against 16.0-16.6 ms,
 * p99 32.6-36.2 against 51.7-230 (bench/incr-bench's latency run, producer
 * linger 5 ms), at about the same bytes written an event. */
#define INCR_BATCH_WAIT_MS 2
#define INCR_BATCH_WAIT_BEHIND_MS 5

/* Where channel events (start, assignment, errors, skipped messages, DDL)
 * are logged: one line, without a newline. */
typedef void (*incr_log_fn)(void *arg, const char *line);

/* A statement that changes the table's rows with no row event for any
 * (ALTER TABLE … TRUNCATE, DROP or EXCHANGE PARTITION) leaves documents
 * the table no longer has: a verification with repair puts them right. A
 * following channel asks for one through this hook once the batch holding
 * the statement has committed (and when it starts on a generation whose
 * stored state still wants one), then again until one has found the
 * collection equal to the table: every INCR_REPAIR_ASK_SEC while the hook
 * cannot start one (a build or a verification holds the collection), and
 * after twice as long each time one it started did not end the want (a
 * source it cannot reach, say), up to INCR_REPAIR_ASK_MAX_SEC. Returns
 * whether it started one; msg says which task, or why not (empty: a
 * repair is running, nothing to say). Called on the channel's thread, no
 * lock held. */
typedef bool (*incr_repair_fn)(void *arg, const char *why, char *msg, size_t msglen);
#define INCR_REPAIR_ASK_SEC 30.0
#define INCR_REPAIR_ASK_MAX_SEC 3600.0

struct incr_hooks {
    incr_log_fn log;
    incr_repair_fn repair; /* NULL: never asked */
    void *arg;
};

struct incr;

enum incr_mode {
    INCR_FOLLOW,   /* run until stopped */
    INCR_CATCH_UP, /* stop by itself once every partition has reached the end
                      offset it had when the channel started */
};

/* Starts a channel that applies the changes of table db.table to g (which
 * it references until stopped). spec is copied. */
struct incr *incr_start(const char *collection, const struct tis_incr_spec *spec,
                        const char *db, const char *table, struct gen *g, enum incr_mode mode,
                        const struct incr_hooks *hooks);
/* INCR_CATCH_UP: waits until caught up, stopped, or timeout_sec passed.
 * Returns 1 when caught up, -1 when the channel stopped without (an error:
 * its status says which), 0 when it is still at work. */
int incr_wait(struct incr *c, double timeout_sec);
/* Stops the consumer (the last batch is committed or not at all) and frees
 * the channel. NULL is fine. */
void incr_stop(struct incr *c);
/* The generation the channel writes to. */
struct gen *incr_gen(struct incr *c);
/* Whether the channel is in the error state now (it may recover). */
bool incr_failing(struct incr *c);
/* The repair the channel wants (see incr_repair_fn): a number new with
 * each statement that needs one, 0 when none is wanted. A verification
 * with repair takes it as it starts (its snapshot is then later than the
 * statement) and hands it to incr_repair_done once its second pass found
 * the collection equal to the table; that clears the want, unless a newer
 * statement has come since. */
uint64_t incr_repair_wanted(struct incr *c);
void incr_repair_done(struct incr *c, uint64_t want);

/* incr_status: the DESIGN.md contract (state, protocol, current_cursor,
 * last_60_sec, applied_commit_ts, skipped, errs) plus the counters and the
 * delivery guarantee. Malloc'd JSON text. */
char *incr_status_json(struct incr *c, const char *collection);
/* The same for a collection whose channel is not running, from the state
 * stored in g (either may be NULL), with the given state and errs. */
char *incr_status_stopped(const char *collection, const struct tis_incr_spec *spec,
                          struct gen *g, const char *state, const char *why);

/* The positions a new generation starts from when its snapshot is taken
 * now: for "latest", the topic's current end offsets; NULL otherwise (the
 * start is resolved when the channel starts). Called before the snapshot
 * is taken, so nothing between the two is lost. NULL with err when the
 * broker cannot be asked. */
struct json_object *incr_positions_now(const struct tis_incr_spec *spec, char *err,
                                       size_t errlen);

#endif
