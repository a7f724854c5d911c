/* catalog — the daemon's durable state in one LMDB environment (DATA/catalog):
 * collections (name -> JSON record), tasks (id -> status JSON) and task logs
 * (id, line number -> line). Every call is its own transaction; the daemon's
 * threads may call concurrently. Values are JSON text so that the catalog can
 * be read with stock tools (mdb_dump) and evolves without migrations. */
#ifndef TISFS_CATALOG_H
#define TISFS_CATALOG_H

#include <stdbool.h>
#include <stdint.h>

#include "tisfs/util.h"

struct catalog;

/* Opens (creating) the catalog under dir. Returns NULL with err set. */
struct catalog *cat_open(const char *dir, char *err, size_t errlen);
void cat_close(struct catalog *c);
/* Forces everything committed so far to disk (commits are not synced one by
 * one: a process crash loses nothing, an OS crash at most the last moments). */
void cat_sync(struct catalog *c);

/* Collections: name -> JSON record (malloc'd string, NULL if absent). */
int cat_coll_put(struct catalog *c, const char *name, const char *json);
char *cat_coll_get(struct catalog *c, const char *name);
int cat_coll_del(struct catalog *c, const char *name);
/* Calls fn for each collection in name order. */
void cat_coll_each(struct catalog *c, void (*fn)(const char *name, const char *json, void *arg),
                   void *arg);

/* Tasks: a fresh id (1, 2, ...; never reused), and id -> status JSON. */
uint64_t cat_task_new_id(struct catalog *c);
int cat_task_put(struct catalog *c, uint64_t id, const char *json);
char *cat_task_get(struct catalog *c, uint64_t id);
/* Removes the task and its log. */
int cat_task_del(struct catalog *c, uint64_t id);
void cat_task_each(struct catalog *c, void (*fn)(uint64_t id, const char *json, void *arg),
                   void *arg);

/* Logs: append one line (a '\n' is added) / read the whole log of a task. */
int cat_log_append(struct catalog *c, uint64_t task, const char *line);
void cat_log_read(struct catalog *c, uint64_t task, struct tbuf *out);
/* Drops the oldest lines of a task's log beyond the last keep. */
void cat_log_trim(struct catalog *c, uint64_t task, size_t keep);

/* Small named values of the daemon (text), e.g. the GC life times owed to
 * TiDB clusters. NULL when absent. */
int cat_meta_put(struct catalog *c, const char *key, const char *value);
char *cat_meta_get(struct catalog *c, const char *key);

#endif
