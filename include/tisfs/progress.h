/* progress — one line a person reads with `watch -n1 cat progress`: the
 * latest task's stage, a bar, percent, rows done and total, rate and ETA,
 * then the channel's state, lag and events per second. Plain text, no
 * escape codes, always one line ending in '\n'. */
#ifndef TISFS_PROGRESS_H
#define TISFS_PROGRESS_H

#include <json-c/json.h>

#include "tisfs/util.h"

/* Renders from a task status and an incr_status document (either may be
 * NULL: no task yet, no channel). */
void progress_line(struct json_object *status, struct json_object *incr, struct tbuf *out);

#endif
