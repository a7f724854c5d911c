/* index_group — a batch analysed ahead of its writing (see index.h).
 *
 * The channel's writing thread was the busier of its two: of its time, a
 * tenth went to gathering each document's entries by term and another to
 * sorting them by term at the commit, work that needs no document id. The
 * decoding thread now does both, under ordinals (the order in which the
 * writing thread will add the documents, so ids grow with them), and lays
 * each term's entries out as a segment posting stores them: ordinals,
 * tfs, then the positions blobs end to end. The writing thread maps each
 * ordinal to its id and copies the rest. The seal (the sort by term, ~6 %
 * of the decoding thread) is done by whichever thread would otherwise
 * wait (incr_decode.c): since Debezium's batches grew to 8 192 messages
 * its decoding thread is the busier one (7.0-7.2 against 5.3-5.5 CPU s
 * in a 1M-event catch-up; 6.3-6.4 against 5.8-5.9 with the seal on the
 * writing thread), while open-protocol's writing thread is. Each group
 * keeps its gathering arrays from batch to batch (reset empties them). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "index_internal.h"

struct index_group *index_group_new(void)
{
    return xcalloc(1, sizeof(struct index_group));
}

void index_group_reset(struct index_group *g)
{
    gather_reset(&g->in);
    g->ndocs = 0;
    g->nt = 0;
    g->sealed = false;
    tbuf_reset(&g->blobs);
}

void index_group_free(struct index_group *g)
{
    if (!g)
        return;
    gather_free(&g->in);
    free(g->t);
    free(g->ord);
    free(g->tf);
    tbuf_free(&g->blobs);
    free(g);
}

size_t index_group_bytes(const struct index_group *g)
{
    return g->in.keys.len + g->in.blobs.len + g->in.n * sizeof *g->in.e +
           g->in.nt * sizeof *g->in.t;
}

void index_group_add(struct index_group *g, struct index_doc *x, struct analyzer *an,
                     const struct analysis_opts *o, const struct tis_value *vals,
                     struct tbuf *out)
{
    struct doc_terms *dt = index_doc_terms(x);
    doc_terms_collect(dt, an, o, vals);
    uint32_t ord = g->ndocs++;
    tbuf_add(out, dt->lens, dt->sc->nfields * sizeof *dt->lens);
    tbuf_add(out, &ord, sizeof ord);
    gather_tokens(&g->in, dt, ord);
}

/* A counting sort of the entries straight into the sealed arrays: each
 * term's place (entries and blob bytes) from the terms in key order, then
 * every entry copied once, in the order it came. */
void index_group_seal(struct index_group *g)
{
    struct gather *in = &g->in;
    if (g->sealed)
        return;
    uint32_t *order = xmalloc((in->nt ? in->nt : 1) * sizeof *order);
    gather_sort_terms(in, order);
    if (in->nt + 1 > g->tcap) {
        g->tcap = in->nt + 1;
        g->t = xrealloc(g->t, g->tcap * sizeof *g->t);
    }
    if (in->n > g->ecap) {
        g->ecap = in->n;
        g->ord = xrealloc(g->ord, g->ecap * sizeof *g->ord);
        g->tf = xrealloc(g->tf, g->ecap);
    }
    /* Entries and blob bytes by term (indexed as in), then where each term
     * goes. */
    uint32_t *bytes = xcalloc(in->nt ? in->nt : 1, sizeof *bytes);
    gather_count_terms(in, bytes);
    uint32_t *at = xmalloc((in->nt ? in->nt : 1) * 2 * sizeof *at), *bat = at + in->nt;
    uint32_t n = 0, b = 0;
    for (size_t k = 0; k < in->nt; k++) {
        const struct gather_term *t = &in->t[order[k]];
        g->t[k] = (struct group_term){t->prefix, t->koff, n, b, t->klen};
        at[order[k]] = n;
        bat[order[k]] = b;
        n += t->count;
        b += bytes[order[k]];
    }
    g->t[in->nt] = (struct group_term){0, 0, n, b, 0};
    tbuf_reset(&g->blobs);
    tbuf_reserve(&g->blobs, b);
    for (size_t i = 0; i < in->n; i++) {
        const struct gather_entry *e = &in->e[i];
        uint32_t to = at[e->term]++;
        g->ord[to] = e->doc;
        g->tf[to] = e->tf;
        memcpy(g->blobs.data + bat[e->term], in->blobs.data + e->boff, e->blen);
        bat[e->term] += e->blen;
    }
    g->blobs.len = b;
    g->nt = in->nt;
    g->sealed = true;
    free(order);
    free(bytes);
    free(at);
}

/* The general case: some of the term's ordinals were not added (or their
 * ids removed again), or the batch analysed documents of its own with the
 * key. Both lists ascend by id: merged. */
static uint32_t merge_term(const struct index_group *g, size_t k, const uint32_t *map,
                           const struct gather *own, const struct gather_entry *es, uint32_t nes,
                           const roaring_bitmap_t *gone, struct seg_out *o)
{
    const struct group_term *t = &g->t[k];
    const unsigned char *bp = (const unsigned char *)g->blobs.data + t->bstart,
                        *bend = (const unsigned char *)g->blobs.data + t[1].bstart;
    bool positions = bend > bp; /* a term's entries all have blobs or none (its field's) */
    uint32_t gi = t->start, gend = t[1].start, m = 0;
    const struct gather_entry *oe = es, *oend = es + nes;
    tbuf_reset(&o->blobs);
    while (gi < gend || oe < oend) {
        uint32_t gid = gi < gend ? map[g->ord[gi]] : 0;
        size_t glen = gi < gend && positions ? pos_blob_len(bp, bend) : 0;
        if (gi < gend && !gid) {
            bp += glen, gi++;
            continue;
        }
        if (oe < oend && gone && roaring_bitmap_contains(gone, oe->doc)) {
            oe++;
            continue;
        }
        if (gi < gend && (oe == oend || gid < oe->doc)) {
            o->ids[m] = gid;
            o->tf[m++] = g->tf[gi++];
            tbuf_add(&o->blobs, bp, glen);
            bp += glen;
        } else {
            o->ids[m] = oe->doc;
            o->tf[m++] = oe->tf;
            tbuf_add(&o->blobs, own->blobs.data + oe->boff, oe->blen);
            oe++;
        }
    }
    return m;
}

int group_put_term(struct seg_writer *w, const struct index_group *g, size_t k,
                   const uint32_t *map, const struct gather *own, const struct gather_entry *es,
                   uint32_t nes, const roaring_bitmap_t *gone, struct seg_out *o,
                   uint64_t *written)
{
    const struct group_term *t = &g->t[k];
    uint32_t m = 0;
    bool whole = !nes; /* every entry the group's, every ordinal added */
    for (uint32_t i = t->start; i < t[1].start && whole; i++)
        whole = (o->ids[m++] = map[g->ord[i]]) != 0;
    const uint8_t *tf = g->tf + t->start;
    const unsigned char *blobs = (const unsigned char *)g->blobs.data + t->bstart;
    size_t bloblen = t[1].bstart - t->bstart;
    if (!whole) {
        m = merge_term(g, k, map, own, es, nes, gone, o);
        tf = o->tf;
        blobs = (const unsigned char *)o->blobs.data;
        bloblen = o->blobs.len;
    }
    if (!m)
        return 0;
    struct tbuf *val = seg_writer_open_entry(w, g->in.keys.data + t->koff, t->klen);
    segment_posting_encode(o->ids, tf, m, blobs, bloblen, val);
    *written += m;
    return seg_writer_close_entry(w);
}
