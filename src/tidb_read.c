/* tidb_read — the parallel reader of a TiDB snapshot: chunks read on
 * several connections, rows handed to one consumer through a bounded queue
 * (see include/tisfs/source_tidb.h). */
#define _GNU_SOURCE
#include "tisfs/source_tidb.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tisfs/tidb_sql.h"

/* ---- parallel reader ---- */

struct vref {
    size_t off, len;
    bool null;
};

/* Rows (or one log line, msg) handed from a worker to the caller. */
struct batch {
    struct batch *next;
    size_t nrows;
    struct tbuf data;
    struct vref *v;
    size_t vlen, vcap;
    char *msg;
};

struct par;

struct worker {
    struct par *p;
    size_t idx;
    pthread_t th;
    bool started;
    pthread_mutex_t mu; /* guards x against abort from the caller */
    struct sqlx *x;
    struct batch *cur;
    uint64_t chunk_rows;
    char desc[128];
};

struct par {
    const struct tidb_read *r;
    pthread_mutex_t mu;
    pthread_cond_t can_pop, can_push;
    struct batch *head, *tail;
    size_t count, cap;
    size_t live;       /* workers still running */
    size_t next_chunk; /* the next chunk to hand out */
    atomic_bool stop;
    bool failed;
    char err[1024];
};

static void batch_free(struct batch *b)
{
    if (!b)
        return;
    tbuf_free(&b->data);
    free(b->v);
    free(b->msg);
    free(b);
}

/* Queues b; blocks while the queue is full. Frees b when stopping. */
static void push(struct par *p, struct batch *b)
{
    pthread_mutex_lock(&p->mu);
    while (p->count >= p->cap && !atomic_load(&p->stop))
        pthread_cond_wait(&p->can_push, &p->mu);
    if (atomic_load(&p->stop)) {
        pthread_mutex_unlock(&p->mu);
        batch_free(b);
        return;
    }
    if (p->tail)
        p->tail->next = b;
    else
        p->head = b;
    p->tail = b;
    p->count++;
    pthread_cond_signal(&p->can_pop);
    pthread_mutex_unlock(&p->mu);
}

static void push_msg(struct par *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void push_msg(struct par *p, const char *fmt, ...)
{
    struct batch *b = xcalloc(1, sizeof *b);
    struct tbuf t = {0};
    va_list ap;
    va_start(ap, fmt);
    tbuf_vprintf(&t, fmt, ap);
    va_end(ap);
    b->msg = tbuf_take(&t);
    push(p, b);
}

/* Records the first failure and stops everything. Failures after a stop
 * (connections cut on purpose) are not causes. */
static void fail(struct par *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct par *p, const char *fmt, ...)
{
    pthread_mutex_lock(&p->mu);
    if (!atomic_load(&p->stop)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err, sizeof p->err, fmt, ap);
        va_end(ap);
        p->failed = true;
        atomic_store(&p->stop, true);
        pthread_cond_broadcast(&p->can_pop);
        pthread_cond_broadcast(&p->can_push);
    }
    pthread_mutex_unlock(&p->mu);
}

static int worker_row(void *arg, const struct tis_value *vals, size_t n)
{
    struct worker *w = arg;
    struct par *p = w->p;
    if (atomic_load(&p->stop))
        return 1;
    if (n != p->r->nfields) { /* a short row's missing cells are not NULLs */
        fail(p, "%s: the server answered %zu columns for the %zu asked", w->desc, n,
             p->r->nfields);
        return 1;
    }
    if (!w->cur)
        w->cur = xcalloc(1, sizeof *w->cur);
    struct batch *b = w->cur;
    size_t nf = p->r->nfields;
    if (b->vlen + nf > b->vcap) {
        b->vcap = b->vcap ? 2 * b->vcap : nf * 64;
        while (b->vcap < b->vlen + nf)
            b->vcap *= 2;
        b->v = xrealloc(b->v, b->vcap * sizeof *b->v);
    }
    for (size_t i = 0; i < nf; i++) {
        bool has = !vals[i].null;
        b->v[b->vlen++] = (struct vref){b->data.len, has ? vals[i].len : 0, !has};
        if (has)
            tbuf_add(&b->data, vals[i].p, vals[i].len);
    }
    b->nrows++;
    w->chunk_rows++;
    if (b->nrows >= TIDB_BATCH_ROWS || b->data.len >= TIDB_BATCH_BYTES) {
        w->cur = NULL;
        push(p, b);
    }
    return atomic_load(&p->stop) ? 1 : 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct par *p = w->p;
    const struct tidb_read *r = p->r;
    char err[1024] = "";
    struct sqlx *x = r->open(r->open_arg, w->idx, w->desc, sizeof w->desc, err, sizeof err);
    if (!x) {
        fail(p, "connection %zu: %s", w->idx + 1, err);
        goto out;
    }
    pthread_mutex_lock(&w->mu);
    w->x = x;
    pthread_mutex_unlock(&w->mu);
    push_msg(p, "connection %zu: %s", w->idx + 1, w->desc);
    for (size_t i = 0; i < r->nsetup && !atomic_load(&p->stop); i++)
        if (x->exec(x, r->setup[i], NULL, err, sizeof err)) {
            fail(p, "connection %zu (%s): %s: %s", w->idx + 1, w->desc, r->setup[i], err);
            goto out;
        }
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t c = p->next_chunk;
        bool done = atomic_load(&p->stop) || c >= r->nchunks;
        if (!done)
            p->next_chunk++;
        pthread_mutex_unlock(&p->mu);
        if (done)
            break;
        double t0 = mono_now();
        w->chunk_rows = 0;
        int rc = x->stream(x, r->sqls[c], worker_row, w, err, sizeof err);
        if (rc < 0) {
            fail(p, "chunk %zu/%zu on %s: %s", c + 1, r->nchunks, w->desc, err);
            break;
        }
        if (rc > 0 || atomic_load(&p->stop))
            break;
        if (w->cur) {
            struct batch *b = w->cur;
            w->cur = NULL;
            push(p, b);
        }
        push_msg(p, "chunk %zu/%zu done: %" PRIu64 " rows in %.3f s on %s", c + 1, r->nchunks,
                 w->chunk_rows, mono_now() - t0, w->desc);
    }
out:
    batch_free(w->cur);
    w->cur = NULL;
    pthread_mutex_lock(&w->mu);
    w->x = NULL;
    pthread_mutex_unlock(&w->mu);
    if (x)
        x->close(x);
    pthread_mutex_lock(&p->mu);
    p->live--;
    pthread_cond_broadcast(&p->can_pop);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void stop_all(struct par *p, struct worker *ws, size_t n)
{
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->can_push);
    pthread_cond_broadcast(&p->can_pop);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&ws[i].mu);
        if (ws[i].x && ws[i].x->abort)
            ws[i].x->abort(ws[i].x);
        pthread_mutex_unlock(&ws[i].mu);
    }
}

int tidb_parallel_read(const struct tidb_read *r, source_row_fn fn, void *arg,
                       const atomic_bool *cancel, char *err, size_t errlen)
{
    struct par p = {.r = r};
    size_t nw = r->nworkers ? r->nworkers : 1;
    if (nw > r->nchunks)
        nw = r->nchunks;
    if (nw == 0)
        return 0;
    p.cap = r->queue_batches ? r->queue_batches : 2 * nw;
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.can_pop, NULL);
    pthread_cond_init(&p.can_push, NULL);
    atomic_init(&p.stop, false);
    struct worker *ws = xcalloc(nw, sizeof *ws);
    p.live = nw;
    for (size_t i = 0; i < nw; i++) {
        ws[i].p = &p;
        ws[i].idx = i;
        pthread_mutex_init(&ws[i].mu, NULL);
        snprintf(ws[i].desc, sizeof ws[i].desc, "connection %zu", i + 1);
    }
    for (size_t i = 0; i < nw; i++) {
        if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) == 0) {
            ws[i].started = true;
        } else {
            pthread_mutex_lock(&p.mu);
            p.live--;
            pthread_mutex_unlock(&p.mu);
            fail(&p, "cannot start reader thread %zu", i + 1);
        }
    }
    source_logf(r->log, r->log_arg, "reading %zu chunks over %zu connections", r->nchunks, nw);

    bool cancelled = false, fn_stopped = false;
    struct tis_value *vals = xcalloc(r->nfields ? r->nfields : 1, sizeof *vals);
    for (;;) {
        pthread_mutex_lock(&p.mu);
        while (!p.head && p.live > 0 && !atomic_load(&p.stop)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&p.can_pop, &p.mu, &ts);
            if (cancel && atomic_load(cancel))
                break;
        }
        struct batch *b = NULL;
        bool end = atomic_load(&p.stop) || (!p.head && p.live == 0);
        if (!end && p.head) {
            b = p.head;
            p.head = b->next;
            if (!p.head)
                p.tail = NULL;
            p.count--;
            pthread_cond_signal(&p.can_push);
        }
        pthread_mutex_unlock(&p.mu);
        if (cancel && atomic_load(cancel)) {
            batch_free(b);
            cancelled = true;
            break;
        }
        if (end)
            break;
        if (!b)
            continue;
        if (b->msg) {
            source_logf(r->log, r->log_arg, "%s", b->msg);
        } else {
            for (size_t row = 0; row < b->nrows && !fn_stopped; row++) {
                for (size_t i = 0; i < r->nfields; i++) {
                    const struct vref *v = &b->v[row * r->nfields + i];
                    vals[i] = (struct tis_value){b->data.data + v->off, v->len, v->null};
                }
                if (fn(arg, vals))
                    fn_stopped = true;
            }
        }
        batch_free(b);
        if (fn_stopped)
            break;
    }
    free(vals);
    stop_all(&p, ws, nw);
    for (size_t i = 0; i < nw; i++)
        if (ws[i].started)
            pthread_join(ws[i].th, NULL);
    while (p.head) {
        struct batch *b = p.head;
        p.head = b->next;
        batch_free(b);
    }
    int rc = 0;
    if (p.failed) {
        snprintf(err, errlen, "%s", p.err);
        rc = -1;
    } else if (cancelled) {
        snprintf(err, errlen, "cancelled");
        rc = -1;
    } else if (fn_stopped) {
        rc = -1;
    }
    for (size_t i = 0; i < nw; i++)
        pthread_mutex_destroy(&ws[i].mu);
    free(ws);
    pthread_cond_destroy(&p.can_pop);
    pthread_cond_destroy(&p.can_push);
    pthread_mutex_destroy(&p.mu);
    return rc;
}
