/* incr_decode — the channel's second stage: a thread that polls the
 * consumer and decodes each batch's messages while the channel's thread
 * applies the one before (see incr_internal.h).
 *
 * Decoding (JSON parsing above all) was a third of the channel's thread;
 * on its own thread it runs beside the LMDB writes, on the second core.
 * Two batches are in flight at most: one being applied, one being polled
 * and decoded; memory stays bounded by two batches of messages. */
#define _GNU_SOURCE
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incr_internal.h"
#include "tisfs/cdc.h"
#include "tisfs/util.h"

enum { SLOTS = 2 };
/* Bytes of grouped analyses per batch at most (the rest are analysed by
 * the applying thread): they are kept until the batch is applied, and an
 * open-protocol batch may hold 16 rows a message. */
#define PRE_BYTES ((size_t)16 << 20)

struct incr_decoder {
    struct incr *c;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    struct decoded slot[SLOTS];
    int ready[SLOTS]; /* slots decoded, in order: ready[0] is the next */
    int nready;
    bool busy[SLOTS]; /* being filled, or handed out */
    bool idle;        /* the last poll found nothing */
    bool waiting;     /* the applying thread waits for the next batch */
    /* What the simple protocol learns across messages (table schemas):
     * carried from one message's event list to the next. */
    struct json_object *tables;
    struct jdoc *docs; /* the parser's documents, lent to each message's list */
    struct tbuf scratch; /* the decoders' working space, lent likewise */
    struct analyzer *an; /* the decoder's own (ICU's are not shared) */
    struct incr_waker *waker;
    struct rowbuf row;
    struct index_doc *work; /* the analysis's working space */
};

/* Analyses the after images of message i's events of the table, while
 * the batch has room (see decoded_pre). */
static void analyse_ahead(struct incr_decoder *d, struct decoded *b, int i)
{
    const struct cdc_events *ev = &b->ev[i];
    const struct tis_schema *sc = gen_schema(d->c->g);
    char err[256];
    b->first[i] = b->npre;
    for (size_t k = 0; k < ev->n; k++) {
        if (b->npre == b->precap) {
            b->precap = b->precap ? b->precap * 2 : 256;
            b->pre = xrealloc(b->pre, b->precap * sizeof *b->pre);
        }
        const struct cdc_event *e = &ev->ev[k];
        size_t j = b->npre++;
        b->pre[j] = SIZE_MAX;
        if (!d->an || index_group_bytes(b->group) >= PRE_BYTES || e->kind != CDC_ROW ||
            e->op == CDC_DELETE ||
            !incr_ours(d->c, e) || incr_row_values(d->c, &d->row, &e->after, true, err, sizeof err) ||
            !d->row.all)
            continue;
        if (!d->work)
            d->work = index_doc_new(sc);
        b->pre[j] = b->packed.len;
        index_group_add(b->group, d->work, d->an, gen_analysis_opts(d->c->g), d->row.vals,
                        &b->packed);
    }
}

static void decode_one(struct incr_decoder *d, struct decoded *b, int i)
{
    struct incr *c = d->c;
    const rd_kafka_message_t *m = b->msgs[i];
    struct cdc_events *ev = &b->ev[i];
    char err[512] = "";
    cdc_events_reset(ev);
    ev->tables = d->tables;
    ev->docs = d->docs;
    ev->scratch = d->scratch;
    if (!c->proto) {
        enum cdc_protocol found = cdc_detect(m->key, m->key_len, m->payload, m->len);
        pthread_mutex_lock(&c->mu);
        c->proto = found;
        pthread_mutex_unlock(&c->mu);
        if (found)
            incr_say(c, "protocol detected: %s", cdc_protocol_name(found));
    }
    if (c->proto)
        b->rc[i] = cdc_decode(c->proto, m->key, m->key_len, m->payload, m->len, ev, err,
                              sizeof err);
    else {
        snprintf(err, sizeof err, "not a message of any known protocol");
        b->rc[i] = -1;
    }
    if (b->rc[i]) {
        b->err[i] = b->errs.len;
        tbuf_add(&b->errs, err, strlen(err) + 1);
    }
    d->tables = ev->tables;
    ev->tables = NULL; /* the decoder's, not this list's */
    d->docs = ev->docs; /* one pair for the thread, not one a message */
    ev->docs = NULL;
    d->scratch = ev->scratch; /* working space, one for the thread too */
    ev->scratch = (struct tbuf){0};
}

static void slot_room(struct decoded *b)
{
    if (b->msgs)
        return;
    b->msgs = xcalloc(INCR_BATCH_MAX, sizeof *b->msgs);
    b->part = xcalloc(INCR_BATCH_MAX, sizeof *b->part);
    b->offset = xcalloc(INCR_BATCH_MAX, sizeof *b->offset);
    b->first = xcalloc(INCR_BATCH_MAX, sizeof *b->first);
    b->ev = xcalloc(INCR_BATCH_MAX, sizeof *b->ev);
    b->rc = xcalloc(INCR_BATCH_MAX, sizeof *b->rc);
    b->err = xcalloc(INCR_BATCH_MAX, sizeof *b->err);
    for (int i = 0; i < INCR_BATCH_MAX; i++)
        b->ev[i].shared = &b->arena;
    b->group = index_group_new();
}

static int free_slot(const struct incr_decoder *d)
{
    for (int s = 0; s < SLOTS; s++)
        if (!d->busy[s])
            return s;
    return -1;
}

static void *decoder(void *arg)
{
    struct incr_decoder *d = arg;
    pthread_setname_np(pthread_self(), "incr-decode");
    pthread_mutex_lock(&d->mu);
    for (;;) {
        int s = -1;
        while (!d->stop && (s = free_slot(d)) < 0)
            pthread_cond_wait(&d->cv, &d->mu);
        if (d->stop)
            break;
        d->busy[s] = true;
        pthread_mutex_unlock(&d->mu);
        struct decoded *b = &d->slot[s];
        slot_room(b);
        struct incr_poll p;
        rd_kafka_message_t *m;
        b->n = 0;
        b->npre = 0;
        cdc_arena_reset(&b->arena);
        tbuf_reset(&b->errs);
        tbuf_reset(&b->packed);
        index_group_reset(b->group);
        incr_poll_start(d->c, &p, 100);
        p.waker = d->waker;
        while ((m = incr_poll_next(d->c, &p)) != NULL) {
            int i = b->n++;
            b->msgs[i] = m;
            decode_one(d, b, i);
            p.bytes -= b->ev[i].repeated; /* the batch holds only the rest */
            analyse_ahead(d, b, i);
            b->part[i] = b->msgs[i]->partition;
            b->offset[i] = b->msgs[i]->offset;
            rd_kafka_message_destroy(b->msgs[i]);
            b->msgs[i] = NULL;
        }
        pthread_mutex_lock(&d->mu);
        if (b->n && !d->waiting) {
            /* The applying thread is busy with the batch before, and this
             * one would wait for it anyway: the seal (the sort by term)
             * costs nothing here. Otherwise that thread seals, while this
             * one decodes the next batch. */
            pthread_mutex_unlock(&d->mu);
            index_group_seal(b->group);
            pthread_mutex_lock(&d->mu);
        }
        d->idle = b->n == 0;
        if (b->n) {
            d->ready[d->nready++] = s;
            pthread_cond_broadcast(&d->cv);
        } else
            d->busy[s] = false; /* nothing came: poll again */
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

struct incr_decoder *incr_decoder_start(struct incr *c)
{
    struct incr_decoder *d = xcalloc(1, sizeof *d);
    d->c = c;
    d->tables = c->ev.tables; /* what earlier connections learned */
    c->ev.tables = NULL;
    char err[256];
    d->an = analyzer_new(err, sizeof err); /* NULL: the applying thread analyses */
    rowbuf_init(&d->row, gen_schema(c->g)->nfields);
    d->waker = incr_waker_start(c);
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&d->thread, NULL, decoder, d) != 0)
        abort();
    return d;
}

struct decoded *incr_decoder_next(struct incr_decoder *d, int wait_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += wait_ms / 1000;
    ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    struct decoded *b = NULL;
    pthread_mutex_lock(&d->mu);
    d->waiting = true;
    while (!d->nready && wait_ms > 0 && pthread_cond_timedwait(&d->cv, &d->mu, &ts) == 0)
        ;
    d->waiting = false;
    if (d->nready) {
        b = &d->slot[d->ready[0]];
        memmove(d->ready, d->ready + 1, (size_t)--d->nready * sizeof *d->ready);
    }
    pthread_mutex_unlock(&d->mu);
    return b;
}

bool incr_decoder_idle(struct incr_decoder *d)
{
    pthread_mutex_lock(&d->mu);
    bool idle = d->idle && !d->nready;
    pthread_mutex_unlock(&d->mu);
    return idle;
}

static void slot_clear(struct decoded *b)
{
    for (int i = 0; i < b->n; i++)
        if (b->msgs[i]) /* (polled, and the thread stopped before it was decoded) */
            rd_kafka_message_destroy(b->msgs[i]);
    b->n = 0;
}

void incr_decoder_done(struct incr_decoder *d, struct decoded *b)
{
    slot_clear(b);
    pthread_mutex_lock(&d->mu);
    d->busy[b - d->slot] = false;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

void incr_decoder_stop(struct incr_decoder *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stop = true;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    incr_waker_stop(d->waker);
    for (int s = 0; s < SLOTS; s++) {
        struct decoded *b = &d->slot[s];
        slot_clear(b); /* polled, never applied: the next assignment refetches them */
        for (int i = 0; b->ev && i < INCR_BATCH_MAX; i++)
            cdc_events_free(&b->ev[i]);
        free(b->pre);
        tbuf_free(&b->packed);
        index_group_free(b->group);
        free(b->first);
        free(b->msgs);
        free(b->part);
        free(b->offset);
        free(b->ev);
        free(b->rc);
        free(b->err);
        tbuf_free(&b->errs);
        cdc_arena_free(&b->arena);
    }
    d->c->ev.tables = d->tables; /* kept for the next connection */
    cdc_docs_free(d->docs);
    tbuf_free(&d->scratch);
    analyzer_free(d->an);
    index_doc_free(d->work);
    rowbuf_free(&d->row);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    free(d);
}
