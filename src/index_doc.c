/* index_doc — the index terms of one document: every (field, term) key its
 * values yield through their analyzers, counted, with their positions and
 * the field lengths (BM25's norms). Shared by the bulk build's tokenizer
 * threads and by live changes. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index_internal.h"

static void bit_to_decimal(const char *p, size_t len, char *out, size_t outlen)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len && i < 8; i++)
        v = v << 8 | (unsigned char)p[i];
    snprintf(out, outlen, "%llu", (unsigned long long)v);
}

static int doc_token(void *arg, const char *t, size_t len, uint32_t pos)
{
    struct doc_terms *dt = arg;
    if (dt->n - dt->field_start >= INDEX_MAX_TOKENS_PER_VALUE) {
        dt->cut = true; /* stops the analyzer: the rest of the value is not indexed */
        return 1;
    }
    if (dt->n == dt->tokcap) {
        dt->tokcap = dt->tokcap ? dt->tokcap * 2 : 256;
        dt->tokpos = xrealloc(dt->tokpos, dt->tokcap * sizeof *dt->tokpos);
    }
    dt->tokpos[dt->n] = pos;
    uint16_t n = (uint16_t)(len + 1);
    /* One reservation, then plain copies; 16 bytes more, for the gather's
     * whole-word loads of a key's first bytes (load_prefix). */
    tbuf_reserve(&dt->keys, 3 + len + 16);
    char *w = dt->keys.data + dt->keys.len;
    memcpy(w, &n, 2);
    w[2] = (char)dt->field;
    memcpy(w + 3, t, len);
    dt->keys.len += 3 + len;
    dt->n++;
    return 0;
}

void doc_terms_collect(struct doc_terms *dt, struct analyzer *an, const struct analysis_opts *o,
                       const struct tis_value *vals)
{
    tbuf_reset(&dt->keys);
    dt->n = 0;
    for (size_t i = 0; i < dt->sc->nfields; i++) {
        const struct tis_field *f = &dt->sc->fields[i];
        dt->lens[i] = 0;
        if (!f->search || vals[i].null)
            continue;
        dt->field = (uint8_t)i;
        dt->field_start = dt->n;
        if (field_is_typed(f)) {
            unsigned char term[40];
            size_t n;
            char dec[24];
            const char *p = vals[i].p;
            size_t len = vals[i].len;
            if (f->vt == VT_BIT) {
                bit_to_decimal(p, len, dec, sizeof dec);
                p = dec;
                len = strlen(dec);
            }
            if (index_typed_term(f->vt, p, len, term, &n)) {
                doc_token(dt, (const char *)term, n, 0);
                dt->lens[i] = 1;
            }
        } else if (f->token != TOK_DEFAULT) {
            /* Only a prefix is analysed (its tokens fill the cap anyway), so
             * that the analyzer's copies of a huge value stay small. */
            size_t len = vals[i].len;
            dt->cut = len > INDEX_MAX_BYTES_PER_VALUE;
            if (dt->cut) /* at a character boundary */
                for (len = INDEX_MAX_BYTES_PER_VALUE;
                     len && ((unsigned char)vals[i].p[len] & 0xC0) == 0x80;)
                    len--;
            dt->lens[i] = analyze(an, f->token, o, vals[i].p, len, doc_token, dt);
            if (dt->lens[i] > NORM_MAX) /* what the norms keep, so totals agree */
                dt->lens[i] = NORM_MAX;
            dt->truncated += dt->cut;
        }
    }
}

uint64_t key_hash(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* Distinct keys with their counts, through a small hash table: order does
 * not matter to anyone, so no sort. */
void doc_terms_reserve(struct doc_terms *dt)
{
    if (dt->n > dt->cap) {
        dt->cap = dt->n * 2;
        dt->refs = xrealloc(dt->refs, dt->cap * sizeof *dt->refs);
        dt->tf = xrealloc(dt->tf, dt->cap * sizeof *dt->tf);
        dt->hash = xrealloc(dt->hash, dt->cap * sizeof *dt->hash);
        dt->tokkey = xrealloc(dt->tokkey, dt->cap * sizeof *dt->tokkey);
    }
}

size_t doc_terms_distinct(struct doc_terms *dt)
{
    doc_terms_reserve(dt);
    size_t slots = 16;
    while (slots < dt->n * 2)
        slots *= 2;
    if (slots > dt->nslots) {
        free(dt->slots);
        dt->slots = xmalloc(slots * sizeof *dt->slots);
        dt->nslots = slots;
    }
    memset(dt->slots, 0, slots * sizeof *dt->slots);
    const unsigned char *p = (const unsigned char *)dt->keys.data;
    size_t n = 0;
    for (size_t i = 0; i < dt->n; i++) {
        uint16_t len;
        memcpy(&len, p, 2);
        const unsigned char *k = p + 2;
        p += 2 + len;
        uint64_t hash = key_hash(k, len);
        size_t h = hash & (slots - 1);
        for (;; h = (h + 1) & (slots - 1)) {
            uint32_t s = dt->slots[h];
            if (!s) {
                dt->refs[n] = (struct keyref){k, len};
                dt->tf[n] = 1;
                dt->hash[n] = hash;
                dt->tokkey[i] = (uint32_t)n;
                dt->slots[h] = (uint32_t)++n;
                break;
            }
            if (dt->refs[s - 1].len == len && memcmp(dt->refs[s - 1].p, k, len) == 0) {
                dt->tf[s - 1]++;
                dt->tokkey[i] = s - 1;
                break;
            }
        }
    }
    return n;
}

/* A counting sort of the tokens by key keeps each key's positions in token
 * order, which is ascending position order within a value. */
void doc_terms_positions(struct doc_terms *dt, size_t nd)
{
    if (!dt->posoff || dt->n > dt->poscap) { /* nd <= n */
        dt->poscap = dt->n > 16 ? dt->n : 16;
        dt->posoff = xrealloc(dt->posoff, (dt->poscap + 1) * sizeof *dt->posoff);
        dt->posv = xrealloc(dt->posv, dt->poscap * sizeof *dt->posv);
    }
    dt->posoff[0] = 0;
    for (size_t k = 0; k < nd; k++)
        dt->posoff[k + 1] = dt->posoff[k] + dt->tf[k];
    for (size_t i = 0; i < dt->n; i++) /* posoff[k] walks to posoff[k + 1] ... */
        dt->posv[dt->posoff[dt->tokkey[i]]++] = dt->tokpos[i];
    for (size_t k = nd; k > 0; k--) /* ... and is put back */
        dt->posoff[k] = dt->posoff[k - 1];
    dt->posoff[0] = 0;
}

void doc_terms_pos_blob(const struct doc_terms *dt, size_t k, struct tbuf *out)
{
    uint32_t first = dt->posoff[k], last = dt->posoff[k + 1], prev = 0;
    size_t most = (size_t)(last - first) * 5; /* bytes of the gaps at most */
    /* The usual blob is short: its length is one byte, so the gaps are
     * written in place after it. */
    size_t hdr = most < 0x80 ? 1 : 0;
    tbuf_reserve(out, hdr + most);
    unsigned char *w = (unsigned char *)out->data + out->len + hdr, *start = w;
    if (!hdr) { /* a long one: gaps first, then its length */
        struct tbuf gaps = {0};
        for (uint32_t i = first; i < last; i++) {
            tbuf_add_varint(&gaps, dt->posv[i] - prev);
            prev = dt->posv[i];
        }
        tbuf_add_varint(out, gaps.len);
        tbuf_add(out, gaps.data, gaps.len);
        tbuf_free(&gaps);
        return;
    }
    for (uint32_t i = first; i < last; i++) {
        uint32_t g = dt->posv[i] - prev;
        prev = dt->posv[i];
        for (; g >= 0x80; g >>= 7)
            *w++ = (unsigned char)(g | 0x80);
        *w++ = (unsigned char)g;
    }
    out->data[out->len] = (char)(w - start);
    out->len += hdr + (size_t)(w - start);
    out->data[out->len] = 0;
}

void doc_terms_init(struct doc_terms *dt, const struct tis_schema *sc)
{
    memset(dt, 0, sizeof *dt);
    dt->sc = sc;
    dt->lens = xcalloc(sc->nfields, sizeof *dt->lens);
}

void doc_terms_free(struct doc_terms *dt)
{
    tbuf_free(&dt->keys);
    free(dt->lens);
    free(dt->refs);
    free(dt->tf);
    free(dt->hash);
    free(dt->slots);
    free(dt->tokpos);
    free(dt->tokkey);
    free(dt->posoff);
    free(dt->posv);
}
