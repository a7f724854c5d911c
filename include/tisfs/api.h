/* api — the handlers behind every adapter. The FUSE adapter (fs.c) and the
 * HTTP adapter (http.c) call these and only translate paths or URLs to calls
 * and statuses to errno or HTTP codes; no adapter holds logic of its own.
 *
 * Every handler answers with one enum api_status and, when msg is not NULL,
 * a human-readable message that names what was wrong. Every function is
 * thread-safe once api_init has returned.
 *
 * Lifecycle, for any set of adapters: api_check_data_dir (before the
 * daemon detaches, so a bad --data is told on the terminal), api_init,
 * start the adapters, wait for a signal or an unmount, stop them,
 * api_shutdown. */
#ifndef TISFS_API_H
#define TISFS_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tisfs/util.h"

struct json_object;

/* The one status vocabulary. Adapters map it once: fs.c to errno (in
 * brackets), http.c to an HTTP status (after the slash). */
enum api_status {
    API_OK = 0,
    API_INVALID,       /* bad input: a name, spec, body or query (EINVAL / 400) */
    API_NAME_TOO_LONG, /* a collection name over 64 characters (ENAMETOOLONG / 400) */
    API_NOT_FOUND,     /* no such collection or task (ENOENT / 404) */
    API_EXISTS,        /* created already, or a second channel (EEXIST / 409) */
    API_BUSY,          /* a task of the collection is running (EBUSY / 409) */
    API_NOT_READY,     /* no index yet: the first build has not completed (EAGAIN / 503) */
    API_FAILED,        /* the daemon could not do it (EIO / 500) */
};

/* The documents of a collection (api_read) and of a task (api_task_read). */
enum api_doc {
    DOC_CREATE,      /* the accepted spec, passwords masked ("" before create) */
    DOC_STATUS,      /* the latest task's status JSON */
    DOC_LOGS,        /* of a collection: every task's lines, each with its task id,
                      * append-only for the collection's life (the last
                      * COLL_MAX_TASKS tasks); of a task: its own lines */
    DOC_SCHEMA,      /* fields, types, tokens, primary key of the serving generation */
    DOC_INCR,        /* the channel spec ("" when none) */
    DOC_INCR_STATUS, /* the channel's incr_status JSON */
    DOC_PROGRESS,    /* one human line: the latest task, the channel (progress.h) */
    DOC_VERIFY,      /* the last verification's result (verify.h); {"state":"none"} */
};

/* "invalid", "not found", ...: for logs and error bodies. */
const char *api_status_name(enum api_status st);

/* Creates data_dir when needed, locks it (API_BUSY, naming the holder's
 * pid, when another daemon uses it) and checks that its catalog opens; *abs
 * gets the absolute path (malloc'd). Keeps only the lock's descriptor open,
 * which survives the daemon's fork, so it runs before detaching. */
enum api_status api_check_data_dir(const char *data_dir, char **abs, char *err, size_t errlen);

/* Opens the state under data_dir, marks tasks that were running when the
 * daemon last stopped as interrupted, reopens every collection's serving
 * generation and starts the channels. */
enum api_status api_init(const char *data_dir, char *err, size_t errlen);
/* Stops running tasks (they are recorded as interrupted) and channels,
 * and closes all. */
void api_shutdown(void);

/* Collection names, each NUL-terminated, one after another. */
void api_collections(struct tbuf *names, size_t *count);
bool api_collection_exists(const char *name);
/* Whether name is a valid collection name: API_INVALID (characters),
 * API_NAME_TOO_LONG, or API_OK. */
enum api_status api_check_name(const char *name, struct tbuf *msg);
/* mkdir: api_check_name's refusals, API_EXISTS. */
enum api_status api_reserve(const char *name, struct tbuf *msg);
/* Whether name holds nothing yet: no spec, no index, no task (a bare
 * rmdir may remove only such a collection). */
bool api_collection_is_empty(const char *name);
/* Takes back a reservation that holds nothing yet (no spec, no task):
 * API_OK, else API_BUSY (it holds something) or API_NOT_FOUND. */
enum api_status api_unreserve(const char *name);
/* rm -r: cancels a running task, stops the channel, removes the collection,
 * its tasks and its generations. API_NOT_FOUND if unknown. */
enum api_status api_delete(const char *name, struct tbuf *msg);

/* Starts the first full build from a relaxed-JSON spec. API_INVALID for a
 * bad spec (also recorded as a failed task, *taskid, so that status and logs
 * say why), API_EXISTS if the collection has been built already (use
 * api_build), API_BUSY if a task is running, API_NOT_FOUND if the name is
 * not reserved. */
enum api_status api_create(const char *name, const char *body, size_t len, uint64_t *taskid,
                           struct tbuf *msg);
/* Whether body is a valid spec for name, recording nothing anywhere (an
 * adapter that creates the collection only for a valid spec). */
enum api_status api_spec_valid(const char *name, const char *body, size_t len, struct tbuf *msg);
/* The files a spec is written to. */
enum api_spec_file { SPEC_CREATE, SPEC_BUILD, SPEC_INCR };
/* Judges a complete spec written to the create, build or incr file of
 * name before it is acted on, so that an adapter can refuse it where its
 * writer sees it (write(2), not close(2)). A refusal is recorded as
 * api_create and api_create_incr record it (status, logs) and returned as
 * API_INVALID with the reason. */
enum api_status api_check_spec(const char *name, enum api_spec_file which, const char *body,
                               size_t len, struct tbuf *msg);
/* Whether api_create could start now, without a spec: its API_EXISTS,
 * API_BUSY and API_NOT_FOUND refusals (known at open, before any byte). */
enum api_status api_create_check(const char *name, struct tbuf *msg);
/* Starts a full rebuild. With a spec in body (a JSON object; anything else,
 * such as "1", means none) the rebuild uses it: the old generation serves
 * with the old spec until the new one switches in, and only then does the
 * new spec become the accepted one. A spec without an incr block keeps the
 * collection's channel; one with a different channel is refused.
 * API_BUSY, API_NOT_FOUND, API_INVALID (never created, or a bad spec). */
enum api_status api_build(const char *name, const char *body, size_t len, uint64_t *taskid,
                          struct tbuf *msg);
/* api_build's refusals known before any byte (no collection, no spec yet,
 * busy), for an adapter to give at open. */
enum api_status api_build_check(const char *name, struct tbuf *msg);

/* Starts a verification of the collection against its table (verify.h);
 * with repair, the rows that differ are fixed and a second pass checks.
 * API_NOT_READY without an index, API_BUSY while a build or another
 * verification runs, API_NOT_FOUND. */
enum api_status api_verify(const char *name, bool repair, uint64_t *taskid, struct tbuf *msg);
/* api_verify's refusals, known before anything is written. */
enum api_status api_verify_check(const char *name, struct tbuf *msg);

/* Creates the incremental channel from a channel spec (the seed's
 * do_create_incr body, or the bare incr block). It starts at once when the
 * collection has an index, else when its first build completes. API_INVALID for
 * a bad spec or a collection never created, API_EXISTS if it has a channel
 * (also said in its logs), API_NOT_FOUND if unknown. */
enum api_status api_create_incr(const char *name, const char *body, size_t len,
                                struct tbuf *msg);
/* Whether a channel could be created now (the checks that need no spec):
 * API_EXISTS (and a line in the logs) when one exists, API_NOT_FOUND, or
 * API_OK. */
enum api_status api_create_incr_check(const char *name, struct tbuf *msg);


/* Renders one document of a collection into out. API_NOT_FOUND if unknown. */
enum api_status api_read(const char *name, enum api_doc doc, struct tbuf *out);

/* api_read of a JSON document, parsed: *out gets the object (NULL when the
 * document is empty or not a JSON object; the caller puts it). */
enum api_status api_read_object(const char *name, enum api_doc doc, struct json_object **out);

/* Answers a Solr select query string (q=...&rows=...; an HTTP adapter
 * passes the URL's query string and a form body joined by '&') from the
 * serving generation. out always gets Solr's JSON: the answer, or Solr's
 * error layout with the reason: API_INVALID (a bad query), API_NOT_FOUND,
 * API_NOT_READY (no index yet). */
enum api_status api_select(const char *name, const char *query, struct tbuf *out);
/* Solr's ping: {"status":"OK"} when the collection answers queries;
 * otherwise Solr's error layout, API_NOT_FOUND or API_NOT_READY. */
enum api_status api_ping(const char *name, struct tbuf *out);
/* Solr's core admin STATUS (all collections, or only core when not NULL):
 * names and document counts, Solr's layout. */
void api_cores_status(const char *core, struct tbuf *out);
/* Everything /metrics shows, in Prometheus' text format: per collection
 * documents, the latest task's state, duration and rows, the channel's
 * lag per partition and events applied and skipped; queries answered and a
 * latency histogram. No secret ever appears. */
void api_metrics(struct tbuf *out);

/* The mount-wide log: start-up, shutdown, and every refusal of any
 * adapter with its reason, one line each ("TIME [tisfs] text"). */
void api_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void api_daemon_log(struct tbuf *out);

/* Task ids, ascending. */
void api_tasks(uint64_t **ids, size_t *count);
bool api_task_exists(uint64_t id);
/* DOC_STATUS or DOC_LOGS of any task. API_NOT_FOUND if unknown. */
enum api_status api_task_read(uint64_t id, enum api_doc doc, struct tbuf *out);

#endif
