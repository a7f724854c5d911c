/* verify — does a collection equal its table? One verification reads the
 * table at one consistent snapshot (as a build does) and compares every row
 * with the document the serving generation holds for its primary key, field
 * by field, exactly (NULL is not ''); documents no row matches are extra.
 * A document changed after the snapshot (its version is newer) is counted
 * as `newer`, never as a difference, so a streaming channel reports no
 * false drift. With repair, every missing, differing or extra row is
 * applied at the snapshot's version through the channel's own write path
 * (same version rule, same transactions), then a second verification must
 * find nothing.
 *
 * It runs on its own thread as a task (kind "verify"): its status JSON is
 * the task's status (taskid, complete, failed, stage, progress) together
 * with the result (state, snapshot, checked, missing, extra, differ, newer,
 * samples, repaired, started, finished, seconds, errs). */
#ifndef TISFS_VERIFY_H
#define TISFS_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "tisfs/catalog.h"
#include "tisfs/gen.h"
#include "tisfs/incr.h"
#include "tisfs/spec.h"

/* Samples kept in a result. */
#define VERIFY_MAX_SAMPLES 100
/* Seconds a verification waits for the channel to apply past its snapshot. */
#define VERIFY_CHANNEL_WAIT_SEC 60.0
/* Without a TSO (binlog positions), how long the channel must show no lag
 * after the snapshot before comparing: time for the change events of
 * transactions committed just before it to arrive. */
#define VERIFY_SETTLE_SEC 2.0

struct verify;

/* Starts verifying g (referenced until the end) against spec's table as
 * task id. channel (may be NULL) is the collection's running channel,
 * waited for, never written through; it must outlive the verification
 * (verify_cancel and verify_join before stopping it). */
struct verify *verify_start(uint64_t id, const char *collection, struct tis_spec *spec,
                            struct gen *g, struct incr *channel, bool repair,
                            struct catalog *cat);
bool verify_running(struct verify *v);
/* Whether it was started with repair. */
bool verify_repairs(const struct verify *v);
uint64_t verify_id(const struct verify *v);
/* Asks it to stop (within a moment: the stream checks between rows). */
void verify_cancel(struct verify *v, const char *reason);
/* Waits for the thread and frees. NULL is fine. */
void verify_join_free(struct verify *v);
/* The live status JSON (malloc'd); the catalog holds it once finished. */
char *verify_status_json(struct verify *v);

#endif
