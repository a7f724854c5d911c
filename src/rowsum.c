/* rowsum — a row's verification hash, and the sums of a chunk of rows
 * (rowsum.h). */
#include "tisfs/rowsum.h"

#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>

bool rowsum_chunkable(const struct tis_schema *sc)
{
    return sc->npk == 1 &&
           (sc->fields[sc->pk[0]].vt == VT_INT || sc->fields[sc->pk[0]].vt == VT_UINT);
}

/* Parsed here, not by strtoll: a build parses one a row, and the server's
 * text is plain digits with an optional '-'. */
bool rowsum_pk_number(const struct tis_field *f, const struct tis_value *v, int64_t *s,
                      uint64_t *u)
{
    if (v->null || v->len == 0 || v->len > 20)
        return false;
    const char *p = v->p, *e = p + v->len;
    bool neg = *p == '-';
    if (neg && (f->vt == VT_UINT || ++p == e))
        return false;
    uint64_t n = 0;
    for (; p < e; p++) {
        unsigned d = (unsigned)(unsigned char)*p - '0';
        if (d > 9 || n > (UINT64_MAX - d) / 10)
            return false;
        n = n * 10 + d;
    }
    if (f->vt == VT_UINT) {
        *u = n;
        return true;
    }
    if (n > (uint64_t)INT64_MAX + neg)
        return false;
    *s = !neg ? (int64_t)n : n ? -(int64_t)(n - 1) - 1 : 0;
    return true;
}

int64_t rowsum_chunk_of(const struct tis_field *f, uint64_t bits)
{
    return f->vt == VT_UINT ? (int64_t)(bits / ROWSUM_CHUNK_WIDTH)
                            : (int64_t)bits / ROWSUM_CHUNK_WIDTH;
}

bool rowsum_chunk_key(const struct tis_field *f, const struct tis_value *v, int64_t *key)
{
    int64_t s;
    uint64_t u;
    if (!rowsum_pk_number(f, v, &s, &u))
        return false;
    *key = rowsum_chunk_of(f, f->vt == VT_UINT ? u : (uint64_t)s);
    return true;
}

void rowsum_chunk_bounds(const struct tis_field *f, int64_t key, uint64_t *lo, uint64_t *hi)
{
    const int64_t w = ROWSUM_CHUNK_WIDTH;
    if (f->vt == VT_UINT) {
        uint64_t l = (uint64_t)key * (uint64_t)w;
        *lo = l;
        *hi = l > UINT64_MAX - (uint64_t)(w - 1) ? UINT64_MAX : l + (uint64_t)(w - 1);
        return;
    }
    int64_t l = key * w, h = key * w;
    if (key <= 0)
        l = l < INT64_MIN + (w - 1) ? INT64_MIN : l - (w - 1);
    if (key >= 0)
        h = h > INT64_MAX - (w - 1) ? INT64_MAX : h + (w - 1);
    *lo = (uint64_t)l;
    *hi = (uint64_t)h;
}

/* Rows longer than this are hashed value by value, not copied first. */
#define ROWSUM_COPY_MAX (64 << 10)

/* CRC-32 of the lengths, then of '|' and each value. A row is put
 * together in b and hashed in one call: a call for each of its fifteen or
 * so pieces, most a few bytes, cost more than copying the few hundred
 * bytes of a row. A long one is not copied: a 40 MB cell would cost 40 MB
 * more memory. */
uint32_t rowsum_hash(const struct tis_schema *sc, const struct tis_value *vals, struct tbuf *b)
{
    size_t need = sc->nfields * 22;
    for (size_t i = 0; i < sc->nfields; i++)
        need += vals[i].null ? 0 : vals[i].len + 1;
    bool copy = need <= ROWSUM_COPY_MAX;
    tbuf_reset(b);
    tbuf_reserve(b, copy ? need : sc->nfields * 22);
    char *o = b->data;
    for (size_t i = 0; i < sc->nfields; i++) {
        char num[24], *e = num + sizeof num, *p = e;
        size_t n = vals[i].len;
        if (vals[i].null)
            *--p = '1', *--p = '-';
        else
            do
                *--p = (char)('0' + n % 10);
            while (n /= 10);
        if (i)
            *--p = '|';
        memcpy(o, p, (size_t)(e - p));
        o += e - p;
    }
    if (!copy) {
        uint32_t crc = libdeflate_crc32(0, b->data, (size_t)(o - b->data));
        for (size_t i = 0; i < sc->nfields; i++)
            if (!vals[i].null) {
                crc = libdeflate_crc32(crc, "|", 1);
                if (vals[i].len)
                    crc = libdeflate_crc32(crc, vals[i].p, vals[i].len);
            }
        return crc;
    }
    for (size_t i = 0; i < sc->nfields; i++)
        if (!vals[i].null) { /* CONCAT_WS skips NULLs */
            *o++ = '|';
            if (vals[i].len)
                memcpy(o, vals[i].p, vals[i].len);
            o += vals[i].len;
        }
    b->len = (size_t)(o - b->data);
    b->data[b->len] = 0; /* a tbuf stays a C string */
    return libdeflate_crc32(0, b->data, b->len);
}

/* ---- chunks by key ---- */

size_t rowsum_key_hash(int64_t k)
{
    uint64_t h = (uint64_t)k * 0x9E3779B97F4A7C15u;
    return (size_t)(h ^ (h >> 29));
}

static struct rowsum_chunk *slot(const struct rowsum_map *m, int64_t key)
{
    size_t h = rowsum_key_hash(key) & (m->cap - 1);
    while (m->t[h].used && m->t[h].key != key)
        h = (h + 1) & (m->cap - 1);
    return &m->t[h];
}

struct rowsum_chunk *rowsum_map_get(struct rowsum_map *m, int64_t key)
{
    if ((m->n + 1) * 2 > m->cap) { /* grow: rehash */
        size_t cap = m->cap ? m->cap * 2 : 1024;
        struct rowsum_map g = {xcalloc(cap, sizeof *g.t), cap, m->n};
        for (size_t i = 0; i < m->cap; i++)
            if (m->t[i].used)
                *slot(&g, m->t[i].key) = m->t[i];
        free(m->t);
        *m = g;
    }
    struct rowsum_chunk *c = slot(m, key);
    if (!c->used) {
        *c = (struct rowsum_chunk){.key = key, .used = true};
        m->n++;
    }
    return c;
}

struct rowsum_chunk *rowsum_map_find(const struct rowsum_map *m, int64_t key)
{
    if (!m->cap)
        return NULL;
    struct rowsum_chunk *c = slot(m, key);
    return c->used ? c : NULL;
}

static int key_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t *rowsum_map_keys(const struct rowsum_map *m)
{
    int64_t *keys = xmalloc((m->n ? m->n : 1) * sizeof *keys);
    size_t n = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->t[i].used)
            keys[n++] = m->t[i].key;
    qsort(keys, n, sizeof *keys, key_cmp);
    return keys;
}

void rowsum_map_free(struct rowsum_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->t[i].used && m->t[i].ids)
            roaring_bitmap_free(m->t[i].ids);
    free(m->t);
    *m = (struct rowsum_map){0};
}
