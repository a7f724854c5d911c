/* channel — a collection's incremental channel within the daemon: starting
 * and stopping it with the collection, and handing it over from the
 * serving generation to a freshly built one at indexBackflow so that no
 * change event is left out or applied twice across the switch. */
#ifndef TISFS_CHANNEL_H
#define TISFS_CHANNEL_H

#include "tisfs/collection.h"
#include "tisfs/task.h"

/* Locked (coll_lock). Starts c's channel when it has one and an index to
 * apply it to. */
void channel_start_locked(struct coll *c);
/* Locked. Takes the running channel away from c; the caller stops it with
 * incr_stop outside the lock (its thread may wait for the lock to log). */
struct incr *channel_take_locked(struct coll *c);

/* A line in the collection's log (its latest task's), stage "incr". */
void channel_log(struct coll *c, const char *line);

/* The task hooks of a build (task_env.start_positions, task_env.backflow):
 * where the new generation's channel starts, and the switch to it. */
struct json_object *channel_start_positions(void *arg, struct task *t, const char *name);
int channel_backflow(void *arg, struct task *t, const char *name, const char *dir,
                     uint64_t gen_id, struct json_object *channel, char *err, size_t errlen);

#endif
