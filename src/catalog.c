/* catalog — LMDB: collections, tasks, logs. */
#define _GNU_SOURCE
#include "tisfs/catalog.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tisfs/lmdb_map.h"

struct catalog {
    MDB_env *env;
    struct lmdb_map map; /* every transaction holds it (lmdb_map.h) */
    MDB_dbi colls, tasks, logs, meta;
    struct fault { /* the test hook below; n == 0: none */
        MDB_dbi dbi;
        unsigned n, seen;
        int rc;
    } fault;
};

/* A test hook (tests/test_faults.py), always compiled in so that the tests
 * exercise the shipped binary: TISFS_FAULT=TABLE:N:ERROR makes the N-th write
 * into catalog table TABLE (collections, tasks, logs, meta) since start fail
 * once with ERROR (ENOSPC or MDB_MAP_FULL), as a full disk or a full map
 * would. A full disk cannot be timed to one chosen write from outside. The
 * injected MDB_MAP_FULL stands for a map at its largest size: the write
 * fails without the map growing (a real one grows, see wend). */
static _Thread_local bool injected_full;
static void fault_arm(struct catalog *c)
{
    const char *s = getenv("TISFS_FAULT");
    char table[16], error[16];
    unsigned n;
    if (!s || sscanf(s, "%15[a-z]:%u:%15[A-Z_]", table, &n, error) != 3)
        return;
    const char *names[] = {"collections", "tasks", "logs", "meta"};
    MDB_dbi dbis[] = {c->colls, c->tasks, c->logs, c->meta};
    int rc = strcmp(error, "ENOSPC") == 0 ? ENOSPC : MDB_MAP_FULL;
    for (size_t i = 0; i < 4; i++)
        if (strcmp(table, names[i]) == 0)
            c->fault = (struct fault){dbis[i], n, 0, rc};
    if (c->fault.n)
        fprintf(stderr, "tisfs: TISFS_FAULT: write %u into %s fails with %s\n", n, table, error);
}

/* Every write goes through here. Called inside a write transaction, which
 * serialises the count. */
static int cput(struct catalog *c, MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v,
                unsigned flags)
{
    if (c->fault.n && dbi == c->fault.dbi && ++c->fault.seen == c->fault.n) {
        injected_full = c->fault.rc == MDB_MAP_FULL;
        return c->fault.rc;
    }
    return mdb_put(txn, dbi, k, v, flags);
}

struct catalog *cat_open(const char *dir, char *err, size_t errlen)
{
    struct catalog *c = xcalloc(1, sizeof *c);
    MDB_txn *txn = NULL;
    int rc = mkdir_p(dir, 0700);
    if (rc == 0)
        rc = mdb_env_create(&c->env);
    if (rc == 0) {
        mdb_env_set_maxdbs(c->env, 8);
        /* Address space, not disk: the file grows as it is written, and the
         * map doubles when a write finds it full (wend). */
        lmdb_map_init(&c->map, c->env, lmdb_map_initial(lmdb_file_size(dir)));
        /* NOTLS: FUSE worker threads come and go; NOSYNC: see cat_sync. */
        rc = mdb_env_open(c->env, dir, MDB_NOTLS | MDB_NOSYNC, 0600);
        if (rc == 0)
            lmdb_map_opened(&c->map);
    }
    if (rc == 0)
        rc = mdb_txn_begin(c->env, NULL, 0, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "collections", MDB_CREATE, &c->colls);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "tasks", MDB_CREATE, &c->tasks);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "logs", MDB_CREATE, &c->logs);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &c->meta);
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (rc == 0)
        fault_arm(c);
    if (rc != 0) {
        snprintf(err, errlen, "catalog %s: %s", dir, rc < 0 ? mdb_strerror(rc) : strerror(rc));
        if (txn)
            mdb_txn_abort(txn);
        if (c->env) {
            mdb_env_close(c->env);
            lmdb_map_destroy(&c->map);
        }
        free(c);
        return NULL;
    }
    return c;
}

void cat_close(struct catalog *c)
{
    if (!c)
        return;
    mdb_env_sync(c->env, 1);
    mdb_env_close(c->env);
    lmdb_map_destroy(&c->map);
    free(c);
}

void cat_sync(struct catalog *c)
{
    mdb_env_sync(c->env, 1);
}

/* What wend returns when the transaction found the map full and the map
 * has grown: run it again (LMDB's errors are below -30000, errno's above 0). */
#define AGAIN (-1)

static int rbegin(struct catalog *c, MDB_txn **txn)
{
    return lmdb_map_begin(&c->map, MDB_RDONLY, txn, NULL);
}

static void rend(struct catalog *c, MDB_txn *txn)
{
    lmdb_map_end(&c->map, txn);
}

static int wbegin(struct catalog *c, MDB_txn **txn, size_t *seen)
{
    injected_full = false;
    return lmdb_map_begin(&c->map, 0, txn, seen);
}

/* Ends a write transaction begun under map size seen: commits it when rc
 * is 0, else aborts it. Returns the result, or AGAIN. */
static int wend(struct catalog *c, MDB_txn *txn, int rc, size_t seen)
{
    if (rc)
        lmdb_map_end(&c->map, txn);
    else
        rc = lmdb_map_commit(&c->map, txn);
    if (rc != MDB_MAP_FULL || injected_full)
        return rc;
    size_t now;
    int why = lmdb_map_grow(&c->map, seen, &now);
    if (why) {
        fprintf(stderr, "tisfs: the catalog's map is full (%zu MiB) and cannot grow: %s\n",
                seen >> 20, why > 0 ? strerror(why) : mdb_strerror(why));
        return rc;
    }
    fprintf(stderr, "tisfs: the catalog's map was full: it grew to %zu MiB\n", now >> 20);
    return AGAIN;
}

static int put(struct catalog *c, MDB_dbi dbi, MDB_val *k, const char *json)
{
    MDB_txn *txn;
    MDB_val v = {strlen(json), (void *)json};
    size_t seen;
    int rc;
    do {
        if ((rc = wbegin(c, &txn, &seen)) != 0)
            return rc;
        rc = wend(c, txn, cput(c, txn, dbi, k, &v, 0), seen);
    } while (rc == AGAIN);
    return rc;
}

static char *get(struct catalog *c, MDB_dbi dbi, MDB_val *k)
{
    MDB_txn *txn;
    MDB_val v;
    char *r = NULL;
    if (rbegin(c, &txn))
        return NULL;
    if (mdb_get(txn, dbi, k, &v) == 0)
        r = xstrndup(v.mv_data, v.mv_size);
    rend(c, txn);
    return r;
}

int cat_coll_put(struct catalog *c, const char *name, const char *json)
{
    MDB_val k = {strlen(name), (void *)name};
    return put(c, c->colls, &k, json);
}

char *cat_coll_get(struct catalog *c, const char *name)
{
    MDB_val k = {strlen(name), (void *)name};
    return get(c, c->colls, &k);
}

int cat_coll_del(struct catalog *c, const char *name)
{
    MDB_txn *txn;
    MDB_val k = {strlen(name), (void *)name};
    size_t seen;
    int rc;
    do {
        if ((rc = wbegin(c, &txn, &seen)) != 0)
            return rc;
        rc = mdb_del(txn, c->colls, &k, NULL);
        rc = wend(c, txn, rc == MDB_NOTFOUND ? 0 : rc, seen);
    } while (rc == AGAIN);
    return rc;
}

/* The entries of one table, copied out of a read transaction, so that the
 * callers' callbacks (which write tasks, open generations) run with no
 * transaction held: a write that found the map full could not grow it. */
struct entries {
    size_t n, cap;
    struct entry {
        char *key, *json;
        size_t klen;
    } *e;
};

static void read_all(struct catalog *c, MDB_dbi dbi, struct entries *out)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    if (rbegin(c, &txn))
        return;
    mdb_cursor_open(txn, dbi, &cur);
    for (int op = MDB_FIRST; mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        if (out->n == out->cap)
            out->e = xrealloc(out->e, (out->cap = out->cap ? 2 * out->cap : 16) * sizeof *out->e);
        out->e[out->n++] = (struct entry){xstrndup(k.mv_data, k.mv_size),
                                          xstrndup(v.mv_data, v.mv_size), k.mv_size};
    }
    mdb_cursor_close(cur);
    rend(c, txn);
}

static void entries_free(struct entries *es)
{
    for (size_t i = 0; i < es->n; i++) {
        free(es->e[i].key);
        free(es->e[i].json);
    }
    free(es->e);
}

void cat_coll_each(struct catalog *c, void (*fn)(const char *, const char *, void *), void *arg)
{
    struct entries es = {0};
    read_all(c, c->colls, &es);
    for (size_t i = 0; i < es.n; i++)
        fn(es.e[i].key, es.e[i].json, arg);
    entries_free(&es);
}

uint64_t cat_task_new_id(struct catalog *c)
{
    MDB_txn *txn;
    MDB_val k = {9, "next_task"}, v;
    uint64_t id;
    unsigned char buf[8];
    size_t seen;
    int rc;
    do {
        if (wbegin(c, &txn, &seen))
            return 0;
        id = 1;
        k = (MDB_val){9, "next_task"};
        if (mdb_get(txn, c->meta, &k, &v) == 0 && v.mv_size == 8)
            id = get_be64(v.mv_data);
        put_be64(buf, id + 1);
        v.mv_size = 8;
        v.mv_data = buf;
        /* wend aborts a failed one: else the write lock stays taken and
         * every later write hangs */
        rc = wend(c, txn, cput(c, txn, c->meta, &k, &v, 0), seen);
    } while (rc == AGAIN);
    return rc ? 0 : id;
}

int cat_task_put(struct catalog *c, uint64_t id, const char *json)
{
    unsigned char kb[8];
    put_be64(kb, id);
    MDB_val k = {8, kb};
    return put(c, c->tasks, &k, json);
}

char *cat_task_get(struct catalog *c, uint64_t id)
{
    unsigned char kb[8];
    put_be64(kb, id);
    MDB_val k = {8, kb};
    return get(c, c->tasks, &k);
}

int cat_task_del(struct catalog *c, uint64_t id)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    unsigned char kb[12] = {0};
    put_be64(kb, id);
    MDB_val k, v;
    size_t seen;
    int rc;
    do {
        if ((rc = wbegin(c, &txn, &seen)) != 0)
            return rc;
        k = (MDB_val){8, kb};
        int del = mdb_del(txn, c->tasks, &k, NULL);
        k.mv_size = 12;
        mdb_cursor_open(txn, c->logs, &cur);
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
             rc == 0 && k.mv_size == 12 && get_be64(k.mv_data) == id;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
            if ((del = mdb_cursor_del(cur, 0)) != 0) /* a delete can need a page too */
                break;
        mdb_cursor_close(cur);
        rc = wend(c, txn, del == MDB_NOTFOUND ? 0 : del, seen);
    } while (rc == AGAIN);
    return rc;
}

void cat_task_each(struct catalog *c, void (*fn)(uint64_t, const char *, void *), void *arg)
{
    struct entries es = {0};
    read_all(c, c->tasks, &es);
    for (size_t i = 0; i < es.n; i++)
        if (es.e[i].klen == 8)
            fn(get_be64((const unsigned char *)es.e[i].key), es.e[i].json, arg);
    entries_free(&es);
}

/* Log keys are (task id, line number), both big-endian, so one task's lines
 * are contiguous and in order; the next line number is found from the last
 * key instead of being kept anywhere. */
static int log_append(struct catalog *c, MDB_txn *txn, uint64_t task, const char *line)
{
    MDB_cursor *cur;
    unsigned char kb[12];
    put_be64(kb, task + 1);
    memset(kb + 8, 0, 4);
    MDB_val k = {12, kb}, v;
    uint32_t seq = 0;
    mdb_cursor_open(txn, c->logs, &cur);
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    rc = mdb_cursor_get(cur, &k, &v, rc == 0 ? MDB_PREV : MDB_LAST);
    if (rc == 0 && k.mv_size == 12 && get_be64(k.mv_data) == task) {
        const unsigned char *p = (const unsigned char *)k.mv_data + 8;
        seq = ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]) + 1;
    }
    mdb_cursor_close(cur);
    put_be64(kb, task);
    kb[8] = (unsigned char)(seq >> 24);
    kb[9] = (unsigned char)(seq >> 16);
    kb[10] = (unsigned char)(seq >> 8);
    kb[11] = (unsigned char)seq;
    k.mv_size = 12;
    k.mv_data = kb;
    v.mv_size = strlen(line);
    v.mv_data = (void *)line;
    rc = cput(c, txn, c->logs, &k, &v, MDB_APPEND);
    if (rc == MDB_KEYEXIST) /* not the global last key: a plain put */
        rc = cput(c, txn, c->logs, &k, &v, 0);
    return rc;
}

int cat_log_append(struct catalog *c, uint64_t task, const char *line)
{
    MDB_txn *txn;
    size_t seen;
    int rc;
    do {
        if ((rc = wbegin(c, &txn, &seen)) != 0)
            return rc;
        rc = wend(c, txn, log_append(c, txn, task, line), seen);
    } while (rc == AGAIN);
    return rc;
}

static int log_trim(struct catalog *c, MDB_txn *txn, uint64_t task, size_t keep)
{
    MDB_cursor *cur;
    unsigned char kb[12] = {0};
    MDB_val k = {12, kb}, v;
    size_t n = 0;
    int del = 0;
    mdb_cursor_open(txn, c->logs, &cur);
    put_be64(kb, task);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size == 12 && get_be64(k.mv_data) == task;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        n++;
    k.mv_size = 12;
    k.mv_data = kb;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (; n > keep && rc == 0 && k.mv_size == 12 && get_be64(k.mv_data) == task; n--) {
        if ((del = mdb_cursor_del(cur, 0)) != 0) /* a delete can need a page too */
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
    }
    mdb_cursor_close(cur);
    return del;
}

void cat_log_trim(struct catalog *c, uint64_t task, size_t keep)
{
    MDB_txn *txn;
    size_t seen;
    int rc;
    do {
        if (wbegin(c, &txn, &seen))
            return;
        rc = wend(c, txn, log_trim(c, txn, task, keep), seen);
    } while (rc == AGAIN);
}

void cat_log_read(struct catalog *c, uint64_t task, struct tbuf *out)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    unsigned char kb[12] = {0};
    put_be64(kb, task);
    MDB_val k = {12, kb}, v;
    if (rbegin(c, &txn))
        return;
    mdb_cursor_open(txn, c->logs, &cur);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size == 12 && get_be64(k.mv_data) == task;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        tbuf_add(out, v.mv_data, v.mv_size);
        tbuf_add(out, "\n", 1);
    }
    mdb_cursor_close(cur);
    rend(c, txn);
}

int cat_meta_put(struct catalog *c, const char *key, const char *value)
{
    MDB_txn *txn;
    MDB_val k = {strlen(key), (void *)key}, v = {strlen(value), (void *)value};
    size_t seen;
    int rc;
    do {
        if ((rc = wbegin(c, &txn, &seen)) != 0)
            return rc;
        rc = wend(c, txn, cput(c, txn, c->meta, &k, &v, 0), seen);
    } while (rc == AGAIN);
    return rc;
}

char *cat_meta_get(struct catalog *c, const char *key)
{
    MDB_txn *txn;
    MDB_val k = {strlen(key), (void *)key}, v;
    char *r = NULL;
    if (rbegin(c, &txn))
        return NULL;
    if (mdb_get(txn, c->meta, &k, &v) == 0)
        r = xstrndup(v.mv_data, v.mv_size);
    rend(c, txn);
    return r;
}
