/* index_gather — a batch's term entries, grouped by term: the documents'
 * analyses go in one after another, their entries come out term by term,
 * terms in key order, each term's entries in the order they went in. The
 * live segment of a write batch (index_live.c) and a batch analysed ahead
 * on the channel's decoding thread (index_group.c) are built on it. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "index_internal.h"

void gather_reset(struct gather *g)
{
    tbuf_reset(&g->keys);
    tbuf_reset(&g->blobs);
    g->n = g->nt = 0;
    if (g->slots)
        memset(g->slots, 0, g->nslots * sizeof *g->slots);
}

void gather_free(struct gather *g)
{
    tbuf_free(&g->keys);
    tbuf_free(&g->blobs);
    free(g->e);
    free(g->t);
    free(g->slots);
    memset(g, 0, sizeof *g);
}

static void slots_grow(struct gather *g)
{
    size_t n = g->nslots ? g->nslots * 2 : 4096;
    struct gather_slot *old = g->slots,
                       *s = xaligned_calloc(64, n, sizeof *s); /* two a cache line */
    for (size_t i = 0; i < g->nslots; i++) { /* (seen and local move along) */
        if (!old[i].term1)
            continue;
        size_t h = g->t[old[i].term1 - 1].hash & (n - 1);
        while (s[h].term1)
            h = (h + 1) & (n - 1);
        s[h] = old[i];
    }
    free(old);
    g->slots = s;
    g->nslots = n;
}

/* Up to 8 key bytes from p on, big-endian, zero past n: what key_prefix8
 * gives, in one load. The keys of a doc_terms have 16 bytes of room after
 * each (doc_token), so the load stays in their buffer. */
static inline uint64_t load_prefix(const unsigned char *p, size_t n)
{
    uint64_t v;
    memcpy(&v, p, 8);
    v = __builtin_bswap64(v);
    return n >= 8 ? v : n ? v & ~0ULL << (64 - 8 * n) : 0;
}

/* The table's hash of a key from its first 16 bytes (k0, k1) and the rest:
 * a word at a time (FNV byte by byte was a chain of multiplications). */
static inline uint64_t slot_hash(uint64_t k0, uint64_t k1, const unsigned char *key,
                                 uint16_t klen)
{
    uint64_t h = (k0 * 0x9E3779B97F4A7C15ULL) ^ ((k1 + klen) * 0xC2B2AE3D27D4EB4FULL);
    for (size_t i = 16; i < klen; i += 8)
        h = (h ^ load_prefix(key + i, klen - i)) * 0x9E3779B97F4A7C15ULL;
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ULL;
    return h ^ h >> 29;
}

/* The slot of key, filled with a new term when the key is new. Grouping by
 * hash, not by sorting every entry: sorting was a tenth of the channel. */
static struct gather_slot *slot_of(struct gather *g, const unsigned char *key, uint16_t klen)
{
    if ((g->nt + 1) * 2 > g->nslots)
        slots_grow(g);
    uint64_t k0 = load_prefix(key, klen), k1 = klen > 8 ? load_prefix(key + 8, klen - 8u) : 0;
    uint64_t hash = slot_hash(k0, k1, key, klen);
    size_t h = hash & (g->nslots - 1);
    struct gather_slot *s;
    for (; (s = &g->slots[h])->term1; h = (h + 1) & (g->nslots - 1)) {
        if (s->k0 == k0 && s->k1 == k1 && s->klen == klen &&
            (klen <= 16 ||
             memcmp(g->keys.data + g->t[s->term1 - 1].koff + 16, key + 16, klen - 16u) == 0))
            return s;
    }
    if (g->nt == g->tcap) {
        g->tcap = g->tcap ? g->tcap * 2 : 1024;
        g->t = xrealloc(g->t, g->tcap * sizeof *g->t);
    }
    g->t[g->nt] = (struct gather_term){(uint32_t)g->keys.len, 0, klen, hash, k0};
    tbuf_add(&g->keys, key, klen);
    *s = (struct gather_slot){k0, k1, (uint32_t)++g->nt, 0, 0, klen};
    return s;
}

void gather_tokens(struct gather *g, struct doc_terms *dt, uint32_t doc)
{
    doc_terms_reserve(dt);
    if (++g->stamp == 0) { /* (after 4G documents) stamps start again */
        for (size_t i = 0; i < g->nslots; i++)
            g->slots[i].seen = 0;
        g->stamp = 1;
    }
    /* The document's distinct keys: refs, tf, and in hash their terms. */
    const unsigned char *p = (const unsigned char *)dt->keys.data;
    size_t nd = 0;
    for (size_t i = 0; i < dt->n; i++) {
        uint16_t len;
        memcpy(&len, p, 2);
        const unsigned char *k = p + 2;
        p += 2 + len;
        struct gather_slot *s = slot_of(g, k, len);
        if (s->seen != g->stamp) {
            s->seen = g->stamp;
            s->local = (uint32_t)nd;
            dt->refs[nd] = (struct keyref){k, len};
            dt->tf[nd] = 0;
            dt->hash[nd++] = s->term1 - 1;
        }
        dt->tf[s->local]++;
        dt->tokkey[i] = s->local;
    }
    doc_terms_positions(dt, nd);
    if (g->n + nd > g->cap) {
        g->cap = g->cap ? g->cap * 2 : 1024;
        if (g->cap < g->n + nd)
            g->cap = g->n + nd;
        g->e = xrealloc(g->e, g->cap * sizeof *g->e);
    }
    for (size_t i = 0; i < nd; i++) {
        uint32_t ti = (uint32_t)dt->hash[i];
        size_t at = g->blobs.len;
        if (doc_terms_has_positions(dt, i))
            doc_terms_pos_blob(dt, i, &g->blobs);
        uint8_t tf = (uint8_t)(dt->tf[i] > 255 ? 255 : dt->tf[i]);
        g->e[g->n++] = (struct gather_entry){(uint32_t)at, (uint32_t)(g->blobs.len - at), doc, ti,
                                             tf};
    }
}

void gather_count_terms(struct gather *g, uint32_t *bytes)
{
    for (size_t i = 0; i < g->nt; i++)
        g->t[i].count = 0;
    for (size_t i = 0; i < g->n; i++) {
        const struct gather_entry *e = &g->e[i];
        g->t[e->term].count++;
        if (bytes)
            bytes[e->term] += e->blen;
    }
}

static int cmp_term(const void *x, const void *y, void *arg)
{
    const struct gather *g = arg;
    const struct gather_term *a = &g->t[*(const uint32_t *)x], *c = &g->t[*(const uint32_t *)y];
    return cmp_prefixed_keys(a->prefix, g->keys.data + a->koff, a->klen, c->prefix,
                             g->keys.data + c->koff, c->klen);
}

/* A term's first 8 key bytes and its index, as the radix sort moves them. */
struct term_rank {
    uint64_t prefix;
    uint32_t t;
};

/* The terms in key order into order[0..nt): a radix sort of their first 8
 * bytes (a pass per byte that differs among them), then the few that share
 * those sorted by comparison. qsort_r of every term was a tenth of the
 * segment's writing. */
void gather_sort_terms(struct gather *g, uint32_t *order)
{
    size_t n = g->nt;
    if (!n)
        return;
    struct term_rank *r = xmalloc(n * sizeof *r), *tmp = xmalloc(n * sizeof *tmp);
    for (size_t i = 0; i < n; i++)
        r[i] = (struct term_rank){g->t[i].prefix, (uint32_t)i};
    for (unsigned shift = 0; shift < 64; shift += 8) {
        size_t count[256] = {0};
        for (size_t i = 0; i < n; i++)
            count[r[i].prefix >> shift & 255]++;
        if (count[r[0].prefix >> shift & 255] == n)
            continue; /* the same byte in every key */
        for (size_t v = 0, at = 0; v < 256; v++) {
            size_t c = count[v];
            count[v] = at;
            at += c;
        }
        for (size_t i = 0; i < n; i++)
            tmp[count[r[i].prefix >> shift & 255]++] = r[i];
        struct term_rank *x = r;
        r = tmp, tmp = x;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = r[i].t;
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && r[j].prefix == r[i].prefix; j++)
            ;
        if (j - i > 1)
            qsort_r(order + i, j - i, sizeof *order, cmp_term, g);
    }
    free(r);
    free(tmp);
}

struct gather_entry *gather_by_term(struct gather *g, uint32_t **order)
{
    gather_count_terms(g, NULL);
    *order = xmalloc((g->nt ? g->nt : 1) * sizeof **order);
    gather_sort_terms(g, *order);
    uint32_t *start = xmalloc((g->nt ? g->nt : 1) * sizeof *start), at = 0;
    for (size_t k = 0; k < g->nt; k++) {
        start[(*order)[k]] = at;
        at += g->t[(*order)[k]].count;
    }
    struct gather_entry *sorted = xmalloc((g->n ? g->n : 1) * sizeof *sorted);
    for (size_t i = 0; i < g->n; i++) /* a term's stay in the order they came */
        sorted[start[g->e[i].term]++] = g->e[i];
    free(start);
    return sorted;
}
