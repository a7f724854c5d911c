/* task — one full build of a collection, run on its own thread through the
 * seed's stages: dump -> join -> indexBuild -> indexBackflow.
 *
 * A task owns its progress (rows, estimated total, rate, ETA), per-stage
 * state and timing, and its log, and persists its status JSON to the catalog
 * at every stage change and about once a second, so that `status` keeps
 * working across restarts. A task that fails names its stage and cause in
 * `errs`. Cancellation (collection deleted, daemon shutting down) stops the
 * dump promptly and leaves the serving generation untouched. */
#ifndef TISFS_TASK_H
#define TISFS_TASK_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "tisfs/catalog.h"
#include "tisfs/spec.h"

enum task_stage { STAGE_DUMP, STAGE_JOIN, STAGE_INDEX_BUILD, STAGE_INDEX_BACKFLOW, STAGE_COUNT };

struct task;

/* Switches the collection to the finished generation in dir; called on the
 * task's thread in indexBackflow. channel is what start_positions returned
 * (borrowed; NULL if nothing): the incremental channel's starting point for
 * the new generation. Returns 0, or -1 with err set. */
typedef int (*task_backflow_fn)(void *arg, struct task *t, const char *collection,
                                const char *dir, uint64_t gen_id, struct json_object *channel,
                                char *err, size_t errlen);
/* Called just before the snapshot is taken: where the incremental channel
 * of the new generation must start (a channel state for gen.h), or NULL. */
typedef struct json_object *(*task_positions_fn)(void *arg, struct task *t,
                                                 const char *collection);

struct task_env {
    struct catalog *cat;
    const char *gen_dir; /* where to write the new generation (collection.h's layout) */
    task_backflow_fn backflow;
    task_positions_fn start_positions;
    void *backflow_arg;
};

/* Starts a build of spec (it takes a reference) as task id on a new thread. kind is
 * "create" or "build". */
struct task *task_start(uint64_t id, const char *kind, struct tis_spec *spec,
                        const struct task_env *env);
/* Records a task that failed before it could start (a bad spec): its status
 * and log say why. Nothing runs. */
void task_record_failure(struct catalog *cat, uint64_t id, const char *kind,
                         const char *collection, const char *why);

uint64_t task_id(const struct task *t);
bool task_running(struct task *t);
/* Asks the task to stop; reason ends up in errs ("interrupted: ..."). */
void task_cancel(struct task *t, const char *reason);
/* Whether the task has been asked to stop. */
bool task_cancelled(struct task *t);
/* Waits for the thread and frees the task. */
void task_join_free(struct task *t);

/* The live status JSON (malloc'd). */
char *task_status_json(struct task *t);
/* Appends a line to the task's log, stamped with time and stage. */
void task_log(struct task *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends a line to the log of task id (any task, running or not). */
void task_log_to(struct catalog *cat, uint64_t id, const char *stage, const char *line);

/* After a restart: marks every task the catalog still shows as running as
 * failed ("interrupted"). */
void task_recover_interrupted(struct catalog *cat);

#endif
