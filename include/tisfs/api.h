/* api — the handlers behind every adapter. The FUSE adapter (fs.c) and the
 * REST adapter call these and only translate paths/URLs and error codes;
 * no adapter holds logic of its own.
 *
 * Errors are negative errno values, with a human-readable message in msg
 * (when msg is not NULL) that names what was wrong. Every function is
 * thread-safe. */
#ifndef TISFS_API_H
#define TISFS_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tisfs/util.h"

/* Opens the state under data_dir (creating it), marks tasks that were running
 * when the daemon last stopped as interrupted, and reopens every collection's
 * serving generation. */
int api_init(const char *data_dir, char *err, size_t errlen);
/* Stops running tasks (they are recorded as interrupted) and closes all. */
void api_shutdown(void);

/* Collection names, each NUL-terminated, one after another. */
void api_collections(struct tbuf *names, size_t *count);
bool api_collection_exists(const char *name);
/* mkdir: -EINVAL (bad characters), -ENAMETOOLONG (> 64), -EEXIST. */
int api_reserve(const char *name, struct tbuf *msg);
/* rm -r: cancels a running task, removes the collection, its tasks and its
 * generations. -ENOENT if unknown. */
int api_delete(const char *name, struct tbuf *msg);

/* Starts the first full build from a relaxed-JSON spec. -EINVAL for a bad
 * spec (also recorded as a failed task so that status and logs say why),
 * -EEXIST if the collection has been created already (use api_build),
 * -EBUSY if a task is running, -ENOENT if the name is not reserved. */
int api_create(const char *name, const char *body, size_t len, uint64_t *taskid,
               struct tbuf *msg);
/* Starts a full rebuild with the accepted spec. -EBUSY, -ENOENT, -EINVAL
 * (never created). */
int api_build(const char *name, uint64_t *taskid, struct tbuf *msg);

/* Creates the incremental channel from a channel spec (the seed's
 * do_create_incr body, or the bare incr block). It starts at once when the
 * collection has an index, else when its first build completes. -EINVAL for
 * a bad spec or a collection never created, -EEXIST if it has a channel
 * (also said in its logs), -ENOENT if unknown. */
int api_create_incr(const char *name, const char *body, size_t len, struct tbuf *msg);
/* Whether a channel could be created now (the checks that need no spec):
 * -EEXIST (and a line in the logs) when one exists, -ENOENT, or 0. */
int api_create_incr_check(const char *name, struct tbuf *msg);

enum api_doc {
    DOC_CREATE,      /* the accepted spec, passwords masked ("" before create) */
    DOC_STATUS,      /* the latest task's status JSON */
    DOC_LOGS,        /* the latest task's log */
    DOC_SCHEMA,      /* fields, types, tokens, primary key of the serving generation */
    DOC_INCR,        /* the channel spec ("" when none) */
    DOC_INCR_STATUS, /* the channel's incr_status JSON */
};

/* Renders one document of a collection into out. -ENOENT if unknown. */
int api_read(const char *name, enum api_doc doc, struct tbuf *out);

/* Answers a Solr select query string (q=...&rows=...) from the serving
 * generation: out gets Solr's JSON, or Solr's error layout when the query is
 * bad (*status 400) or the collection has no index yet (*status 503).
 * -ENOENT if the collection is unknown. */
int api_select(const char *name, const char *query, struct tbuf *out, int *status);

/* Task ids, ascending. */
void api_tasks(uint64_t **ids, size_t *count);
/* DOC_STATUS or DOC_LOGS of any task. -ENOENT if unknown. */
int api_task_read(uint64_t id, enum api_doc doc, struct tbuf *out);

#endif
