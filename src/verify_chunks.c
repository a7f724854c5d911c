/* verify_chunks — a verification pass by chunks of the primary key, their
 * checksums computed on the server and by the daemon, only differing
 * chunks compared row by row (verify.h). */
#define _GNU_SOURCE
#include "verify_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tisfs/index.h"
#include "tisfs/source_tidb.h"
#include "tisfs/util.h"

/* With a single integer primary key on MySQL/MariaDB, rows are grouped by
 * pk DIV CHUNK_WIDTH; the server sums a hash of every row of each chunk in
 * one GROUP BY, the daemon the same hash of its documents, and only chunks
 * whose sums differ are compared row by row. The hash is over each value as
 * the text protocol sends it (what a build stores): every field's byte
 * length first (-1 for NULL), then the values that are not NULL, all joined
 * by '|' -- the lengths say where each value ends, so no two rows read
 * alike -- and CRC-32 of that; on the server
 *   CRC32(CONCAT_WS('|', IFNULL(LENGTH(CAST(a AS BINARY)), -1), ...,
 *                        CAST(a AS BINARY), ...))
 * over bytes, so it depends on no SQL mode, collation or client character
 * set (and costs the server little more than the scan). A mismatch of the two hashes can only cost time: the chunk is then
 * compared row by row, exactly. Chunks are small (100 key values) so that
 * changes spread over a table send a small part of it to that comparison. */
#define CHUNK_WIDTH 100
#define CHUNK_KEY_MAX 24
#define CHUNKS_PER_QUERY 200

struct chunk {
    char key[CHUNK_KEY_MAX]; /* pk DIV CHUNK_WIDTH, as text */
    uint64_t count, sum;
    uint32_t x;
    bool server, differ;
    roaring_bitmap_t *ids; /* the documents of the chunk */
};

struct chunks {
    struct chunk *t;
    size_t cap, n;
};

static size_t key_hash(const char *k)
{
    size_t h = 14695981039346656037u;
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211u;
    return h;
}

static struct chunk *chunk_get(struct chunks *c, const char *key)
{
    if ((c->n + 1) * 2 > c->cap) { /* grow: rehash */
        struct chunks g = {xcalloc(c->cap ? c->cap * 2 : 1024, sizeof *g.t), c->cap ? c->cap * 2 : 1024, 0};
        for (size_t i = 0; i < c->cap; i++)
            if (c->t[i].key[0]) {
                size_t h = key_hash(c->t[i].key) & (g.cap - 1);
                while (g.t[h].key[0])
                    h = (h + 1) & (g.cap - 1);
                g.t[h] = c->t[i];
                g.n++;
            }
        free(c->t);
        *c = g;
    }
    size_t h = key_hash(key) & (c->cap - 1);
    while (c->t[h].key[0] && strcmp(c->t[h].key, key) != 0)
        h = (h + 1) & (c->cap - 1);
    if (!c->t[h].key[0]) {
        snprintf(c->t[h].key, sizeof c->t[h].key, "%s", key);
        c->t[h].ids = roaring_bitmap_create();
        c->n++;
    }
    return &c->t[h];
}

static struct chunk *chunk_find(const struct chunks *c, const char *key)
{
    if (!c->cap)
        return NULL;
    size_t h = key_hash(key) & (c->cap - 1);
    for (; c->t[h].key[0]; h = (h + 1) & (c->cap - 1))
        if (strcmp(c->t[h].key, key) == 0)
            return &c->t[h];
    return NULL;
}

void verify_chunks_free(struct chunks *c)
{
    for (size_t i = 0; i < c->cap; i++)
        if (c->t[i].key[0])
            roaring_bitmap_free(c->t[i].ids);
    free(c->t);
}

static uint32_t row_hash(const struct tis_schema *sc, const struct tis_value *vals,
                         struct tbuf *b)
{
    tbuf_reset(b);
    for (size_t i = 0; i < sc->nfields; i++) {
        if (vals[i].null)
            tbuf_adds(b, i ? "|-1" : "-1");
        else
            tbuf_printf(b, i ? "|%zu" : "%zu", vals[i].len);
    }
    for (size_t i = 0; i < sc->nfields; i++)
        if (!vals[i].null) { /* CONCAT_WS skips NULLs */
            tbuf_add(b, "|", 1);
            tbuf_add(b, vals[i].p, vals[i].len);
        }
    return (uint32_t)crc32(0L, (const Bytef *)(b->data ? b->data : ""), (uInt)b->len);
}

/* The chunk key of an integer primary key's text, as the server's
 * CAST(pk DIV CHUNK_WIDTH AS CHAR) writes it; false when it is not one. */
static bool chunk_key(const struct tis_field *f, const struct tis_value *v, char *out)
{
    char num[32], *end;
    if (v->null || v->len == 0 || v->len >= sizeof num)
        return false;
    memcpy(num, v->p, v->len);
    num[v->len] = 0;
    errno = 0;
    if (f->vt == VT_UINT) {
        unsigned long long u = strtoull(num, &end, 10);
        if (*end || errno || num[0] == '-')
            return false;
        snprintf(out, CHUNK_KEY_MAX, "%llu", u / CHUNK_WIDTH);
    } else {
        long long s = strtoll(num, &end, 10);
        if (*end || errno)
            return false;
        snprintf(out, CHUNK_KEY_MAX, "%lld", s / CHUNK_WIDTH); /* truncates, as DIV does */
    }
    return true;
}

bool verify_chunkable(struct source *src, const struct tis_schema *sc)
{
    return !source_is_tidb(src) && sc->npk == 1 &&
           (sc->fields[sc->pk[0]].vt == VT_INT || sc->fields[sc->pk[0]].vt == VT_UINT);
}

/* The daemon's side: every live document into its chunk (only those of
 * the chunks in only, when it is not NULL). */
static int our_chunks(struct pass *ps, struct chunks *c, const struct chunks *only)
{
    struct verify *v = ps->v;
    const struct tis_field *pkf = &ps->sc->fields[ps->sc->pk[0]];
    struct gen_stats st;
    gen_stats_read(v->g, ps->txn, &st);
    roaring_bitmap_t *deleted = index_deleted(ps->txn, gen_index(v->g));
    roaring_bitmap_t *live = index_live(st.last_id, deleted);
    roaring_uint32_iterator_t it;
    struct tbuf b = {0};
    char key[CHUNK_KEY_MAX];
    int rc = 0;
    uint64_t n = 0;
    roaring_init_iterator(live, &it);
    for (; it.has_value && !rc; roaring_advance_uint32_iterator(&it), n++) {
        if ((n & 0xFFFF) == 0 && n) {
            gen_release_pages(v->g);
            if (atomic_load(&v->cancel))
                rc = -1;
        }
        if (!gen_doc_values(v->g, ps->txn, it.current_value, ps->stored))
            continue;
        if (!chunk_key(pkf, &ps->stored[ps->sc->pk[0]], key)) {
            rc = 1; /* not a plain integer: compare row by row instead */
            break;
        }
        if (only && !chunk_find(only, key))
            continue;
        uint32_t h = row_hash(ps->sc, ps->stored, &b);
        struct chunk *ch = chunk_get(c, key);
        ch->count++;
        ch->x ^= h;
        ch->sum += h;
        roaring_bitmap_add(ch->ids, it.current_value);
    }
    tbuf_free(&b);
    roaring_bitmap_free(live);
    roaring_bitmap_free(deleted);
    gen_stats_free(&st);
    return rc;
}

struct server_side {
    struct pass *ps;
    struct chunks *c;
};

/* One row of the server's GROUP BY: a chunk's count and sums. */
static int server_chunk(void *arg, const struct tis_value *vals)
{
    struct server_side *ss = arg;
    char key[CHUNK_KEY_MAX];
    if (vals[0].null || vals[1].null || vals[2].null || vals[3].null)
        return 0;
    snprintf(key, sizeof key, "%.*s", (int)vals[0].len, vals[0].p);
    struct chunk *ch = chunk_get(ss->c, key);
    ch->count = strtoull(vals[1].p, NULL, 10);
    ch->x = (uint32_t)strtoul(vals[2].p, NULL, 10);
    ch->sum = strtoull(vals[3].p, NULL, 10);
    ch->server = true;
    return 0;
}

/* The daemon's side on its own thread, while the server computes its own:
 * on two cores the two sides overlap. */
struct ours_job {
    struct pass *ps;
    struct chunks c;
    const struct chunks *only;
    int rc;
};

static void *ours_thread(void *arg)
{
    struct ours_job *j = arg;
    j->rc = our_chunks(j->ps, &j->c, j->only);
    return NULL;
}

/* "`pk` DIV CHUNK_WIDTH IN (k, ...)" over the chunks of c. */
static void chunks_where(const struct tis_schema *sc, const struct chunks *c, struct tbuf *w)
{
    tidb_add_ident(w, sc->fields[sc->pk[0]].name);
    tbuf_printf(w, " DIV %d IN (", CHUNK_WIDTH);
    size_t n = 0;
    for (size_t i = 0; i < c->cap; i++)
        if (c->t[i].key[0])
            tbuf_printf(w, "%s%s", n++ ? ", " : "", c->t[i].key); /* our own digits */
    tbuf_adds(w, ")");
}

static void checksum_sql(const struct tis_spec *spec, const struct tis_schema *sc,
                         const struct chunks *only, struct tbuf *q)
{
    const char *pk = sc->fields[sc->pk[0]].name;
    tbuf_adds(q, "SELECT CAST(");
    tidb_add_ident(q, pk);
    tbuf_printf(q, " DIV %d AS CHAR), COUNT(*), BIT_XOR(h), SUM(h) FROM (SELECT ", CHUNK_WIDTH);
    tidb_add_ident(q, pk);
    tbuf_adds(q, ", CRC32(CONCAT_WS('|'");
    for (size_t i = 0; i < sc->nfields; i++) {
        tbuf_adds(q, ", IFNULL(LENGTH(CAST(");
        tidb_add_ident(q, sc->fields[i].name);
        tbuf_adds(q, " AS BINARY)), -1)");
    }
    for (size_t i = 0; i < sc->nfields; i++) {
        tbuf_adds(q, ", CAST(");
        tidb_add_ident(q, sc->fields[i].name);
        tbuf_adds(q, " AS BINARY)");
    }
    tbuf_adds(q, ")) AS h FROM ");
    tidb_add_ident(q, spec->ds.db);
    tbuf_adds(q, ".");
    tidb_add_ident(q, spec->table);
    if (only) {
        tbuf_adds(q, " WHERE ");
        chunks_where(sc, only, q);
    }
    tbuf_adds(q, ") r GROUP BY ");
    tidb_add_ident(q, pk);
    tbuf_printf(q, " DIV %d", CHUNK_WIDTH);
}

/* The rows of up to CHUNKS_PER_QUERY differing chunks, compared row by row. */
static int compare_chunk_rows(struct pass *ps, struct source *src, const struct tis_schema *sc,
                              char *const *keys, size_t n, char *err, size_t errlen)
{
    struct tbuf where = {0}, q = {0};
    tidb_add_ident(&where, sc->fields[sc->pk[0]].name);
    tbuf_printf(&where, " DIV %d IN (", CHUNK_WIDTH);
    for (size_t i = 0; i < n; i++)
        tbuf_printf(&where, "%s%s", i ? ", " : "", keys[i]); /* our own digits */
    tbuf_adds(&where, ")");
    tidb_select_sql(&q, ps->v->spec->ds.db, ps->v->spec->table, sc, where.data);
    int rc = source_query(src, q.data, sc->nfields, verify_compare_row, ps, &ps->v->cancel, err, errlen);
    if (rc && ps->err[0])
        snprintf(err, errlen, "%s", ps->err);
    tbuf_free(&where);
    tbuf_free(&q);
    return rc;
}

/* The whole pass by chunks. Returns 0, -1 on error, or 1 when the table's
 * keys do not allow it (the caller compares row by row). */
int verify_chunked_pass(struct pass *ps, struct source *src, const struct tis_schema *sc,
                        char *err, size_t errlen)
{
    const struct chunks *only = ps->v->recheck;
    if (only && only->n == 0) { /* the first pass found every chunk equal */
        verify_log(ps->v, "no chunk differed: nothing to check again");
        return 0;
    }
    struct ours_job ours = {ps, {0}, only, 0};
    struct chunks theirs = {0}, c = {0};
    pthread_t th;
    pthread_create(&th, NULL, ours_thread, &ours);
    struct tbuf q = {0};
    struct server_side ss = {ps, &theirs};
    checksum_sql(ps->v->spec, sc, only, &q);
    int rc = source_query(src, q.data, 4, server_chunk, &ss, &ps->v->cancel, err, errlen);
    tbuf_free(&q);
    pthread_join(th, NULL);
    if (ours.rc) /* 1: keys that are not integers (compare row by row), -1: cancelled */
        rc = ours.rc;
    if (rc < 0 && !err[0])
        snprintf(err, errlen, "cancelled");
    /* c: every chunk either side has, marked as the server has it and as
     * the sums compare. */
    for (size_t i = 0; !rc && i < theirs.cap; i++) {
        struct chunk *t = &theirs.t[i], *o;
        if (!t->key[0])
            continue;
        o = chunk_find(&ours.c, t->key);
        struct chunk *ch = chunk_get(&c, t->key);
        ch->server = true;
        ch->differ = !o || o->count != t->count || o->x != t->x || o->sum != t->sum;
        if (o)
            roaring_bitmap_or_inplace(ch->ids, o->ids);
        if (!ch->differ) { /* all its rows are equal */
            pthread_mutex_lock(&ps->v->mu);
            ps->v->checked += t->count;
            pthread_mutex_unlock(&ps->v->mu);
        }
    }
    for (size_t i = 0; !rc && i < ours.c.cap; i++)
        if (ours.c.t[i].key[0] && !chunk_find(&theirs, ours.c.t[i].key)) {
            struct chunk *ch = chunk_get(&c, ours.c.t[i].key); /* only the daemon has it */
            roaring_bitmap_or_inplace(ch->ids, ours.c.t[i].ids);
        }
    verify_chunks_free(&ours.c);
    verify_chunks_free(&theirs);
    roaring_bitmap_t *scope = roaring_bitmap_create();
    char **keys = xcalloc(CHUNKS_PER_QUERY, sizeof *keys);
    size_t nk = 0, ndiff = 0;
    for (size_t i = 0; !rc && i < c.cap; i++) {
        struct chunk *ch = &c.t[i];
        if (!ch->key[0] || (ch->server && !ch->differ))
            continue;
        ndiff++;
        roaring_bitmap_or_inplace(scope, ch->ids);
        if (ps->repair) { /* the second pass checks these again */
            if (!ps->v->recheck)
                ps->v->recheck = xcalloc(1, sizeof *ps->v->recheck);
            chunk_get(ps->v->recheck, ch->key);
        }
        if (ch->server) /* rows to compare; a chunk only we hold is all extra */
            keys[nk++] = ch->key;
        if (nk == CHUNKS_PER_QUERY) {
            rc = compare_chunk_rows(ps, src, sc, keys, nk, err, errlen);
            nk = 0;
        }
    }
    if (!rc && nk)
        rc = compare_chunk_rows(ps, src, sc, keys, nk, err, errlen);
    if (!rc) {
        if (ps->repair && !ps->v->recheck) /* all equal: an empty set, not "every row" */
            ps->v->recheck = xcalloc(1, sizeof *ps->v->recheck);
        verify_log(ps->v, "compared %zu chunks of %d key values by checksum%s: %zu differ", c.n,
             CHUNK_WIDTH, only ? " (those the first pass found different)" : "", ndiff);
        if ((rc = verify_find_extra(ps, scope)) != 0)
            snprintf(err, errlen, "%s", ps->err);
    }
    free(keys);
    roaring_bitmap_free(scope);
    verify_chunks_free(&c);
    return rc;
}
