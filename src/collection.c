/* collection — the registry of collections and their layout on disk. */
#define _GNU_SOURCE
#include "tisfs/collection.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tisfs/gen.h"
#include "tisfs/util.h"

static struct {
    pthread_mutex_t mu;
    struct catalog *cat;
    char *data;
    struct coll *list;
} R = {.mu = PTHREAD_MUTEX_INITIALIZER};

void coll_lock(void)
{
    pthread_mutex_lock(&R.mu);
}

void coll_unlock(void)
{
    pthread_mutex_unlock(&R.mu);
}

struct catalog *coll_catalog(void)
{
    return R.cat;
}

void coll_dir(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/collections/%s", R.data, name);
}

void coll_gen_dir(const char *name, uint64_t gen_id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/collections/%s/gen-%llu", R.data, name, (unsigned long long)gen_id);
}

struct coll *coll_find(const char *name)
{
    for (struct coll *c = R.list; c; c = c->next)
        if (strcmp(c->name, name) == 0 && !c->deleting)
            return c;
    return NULL;
}

struct coll *coll_first(void)
{
    return R.list;
}

uint64_t coll_last_task(const struct coll *c)
{
    return c->ntasks ? c->tasks[c->ntasks - 1] : 0;
}

struct coll *coll_of_task(uint64_t id)
{
    for (struct coll *c = R.list; c; c = c->next)
        for (size_t i = 0; i < c->ntasks; i++)
            if (c->tasks[i] == id)
                return c;
    return NULL;
}

/* ---- the catalog record ---- */

int coll_persist(const struct coll *c)
{
    struct json_object *o = json_object_new_object(), *tasks = json_object_new_array();
    json_object_object_add(o, "name", json_object_new_string(c->name));
    json_object_object_add(o, "created", json_object_new_string(c->created));
    if (c->spec)
        json_object_object_add(o, "spec", spec_to_object(c->spec, false));
    json_object_object_add(o, "generation", json_object_new_int64((int64_t)c->gen_id));
    json_object_object_add(o, "last_task", json_object_new_int64((int64_t)coll_last_task(c)));
    json_object_object_add(o, "verify_task", json_object_new_int64((int64_t)c->last_verify));
    for (size_t i = 0; i < c->ntasks; i++)
        json_object_array_add(tasks, json_object_new_int64((int64_t)c->tasks[i]));
    json_object_object_add(o, "tasks", tasks);
    int rc = cat_coll_put(R.cat, c->name, json_object_to_json_string(o));
    json_object_put(o);
    return rc;
}

static void push_task(struct coll *c, uint64_t id)
{
    if (c->ntasks && c->tasks[c->ntasks - 1] >= id)
        return; /* ids only grow: a repeat is a record read twice */
    c->tasks = xrealloc(c->tasks, (c->ntasks + 1) * sizeof *c->tasks);
    c->tasks[c->ntasks++] = id;
}

void coll_add_task(struct coll *c, uint64_t id)
{
    push_task(c, id);
    while (c->ntasks > COLL_MAX_TASKS) {
        cat_task_del(R.cat, c->tasks[0]);
        memmove(c->tasks, c->tasks + 1, --c->ntasks * sizeof *c->tasks);
    }
    coll_persist(c);
}

struct coll *coll_add(const char *name)
{
    for (struct coll *c = R.list; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return NULL;
    struct coll *c = xcalloc(1, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    iso_now(c->created, false);
    c->next = R.list;
    R.list = c;
    coll_persist(c);
    return c;
}

/* ---- loading ---- */

/* Removes generation directories that c does not serve: leftovers of
 * builds that were interrupted before their indexBackflow. */
static void remove_stale_generations(const struct coll *c)
{
    char dir[4096], keep[64], path[8192];
    coll_dir(c->name, dir, sizeof dir);
    snprintf(keep, sizeof keep, "gen-%llu", (unsigned long long)c->gen_id);
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (strncmp(e->d_name, "gen-", 4) == 0 && strcmp(e->d_name, keep) != 0) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            rm_rf(path);
        }
    if (d)
        closedir(d);
}

static int64_t jint(struct json_object *o, const char *k)
{
    struct json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

static void load_tasks(struct coll *c, struct json_object *o)
{
    struct json_object *a;
    if (json_object_object_get_ex(o, "tasks", &a) && json_object_is_type(a, json_type_array))
        for (size_t i = 0; i < json_object_array_length(a); i++)
            push_task(c, (uint64_t)json_object_get_int64(json_object_array_get_idx(a, i)));
}

static void load_coll(const char *name, const char *json, void *arg)
{
    bool *legacy = arg;
    char err[512], dir[4096];
    struct json_object *o = json_tokener_parse(json), *v;
    struct coll *c = xcalloc(1, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    if (o && json_object_object_get_ex(o, "created", &v))
        snprintf(c->created, sizeof c->created, "%s", json_object_get_string(v));
    if (o && json_object_object_get_ex(o, "spec", &v) && json_object_is_type(v, json_type_object))
        c->spec = spec_from_json(name, v, err, sizeof err);
    c->gen_id = (uint64_t)jint(o, "generation");
    c->last_verify = (uint64_t)jint(o, "verify_task");
    if (o && json_object_object_get_ex(o, "tasks", &v))
        load_tasks(c, o);
    else
        *legacy = true;
    if (c->gen_id) {
        coll_gen_dir(name, c->gen_id, dir, sizeof dir);
        if (!(c->gen = gen_open(dir, err, sizeof err))) {
            fprintf(stderr, "tisfs: collection %s: cannot open its generation: %s\n", name, err);
            c->gen_err = xstrdup(err);
        }
    }
    remove_stale_generations(c);
    c->next = R.list;
    R.list = c;
    json_object_put(o);
}

/* Records written before collections listed their tasks: find each task's
 * collection from its status, once, and write the lists. */
static void adopt_task(uint64_t id, const char *json, void *arg)
{
    (void)arg;
    struct json_object *o = json_tokener_parse(json), *v;
    struct coll *c = o && json_object_object_get_ex(o, "indexName", &v)
                         ? coll_find(json_object_get_string(v)) : NULL;
    if (c)
        push_task(c, id);
    json_object_put(o);
}

/* Directories of collections the catalog does not know: a delete killed
 * between removing the record and the files. */
static void remove_orphans(void)
{
    char dir[4096], path[8192];
    snprintf(dir, sizeof dir, "%s/collections", R.data);
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        bool known = e->d_name[0] == '.';
        for (struct coll *c = R.list; c && !known; c = c->next)
            known = strcmp(c->name, e->d_name) == 0;
        if (!known) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            fprintf(stderr, "tisfs: removing %s: no collection of that name\n", path);
            rm_rf(path);
        }
    }
    if (d)
        closedir(d);
}

void coll_registry_open(const char *data_dir, struct catalog *cat)
{
    bool legacy = false;
    R.data = xstrdup(data_dir);
    R.cat = cat;
    cat_coll_each(cat, load_coll, &legacy);
    remove_orphans();
    if (legacy) {
        cat_task_each(cat, adopt_task, NULL);
        for (struct coll *c = R.list; c; c = c->next)
            coll_persist(c);
        cat_sync(cat);
    }
}

static void coll_free(struct coll *c)
{
    gen_unref(c->gen);
    free(c->gen_err);
    spec_free(c->spec);
    spec_free(c->next_spec);
    free(c->tasks);
    free(c);
}

void coll_registry_close(void)
{
    while (R.list) {
        struct coll *c = R.list;
        R.list = c->next;
        coll_free(c);
    }
    free(R.data);
    R.data = NULL;
    R.cat = NULL;
}

void coll_destroy(struct coll *c)
{
    /* c stays listed (deleting: coll_find passes it by, coll_add refuses
     * its name) until its records and directory are gone: a collection of
     * the same name accepted meanwhile lost its own to this cleanup. */
    for (size_t i = 0; i < c->ntasks; i++)
        cat_task_del(R.cat, c->tasks[i]);
    cat_coll_del(R.cat, c->name);
    cat_sync(R.cat);
    char dir[4096];
    coll_dir(c->name, dir, sizeof dir);
    if (c->gen)
        gen_doom(c->gen);
    rm_rf(dir);
    coll_lock();
    for (struct coll **p = &R.list; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    coll_unlock();
    coll_free(c);
}
