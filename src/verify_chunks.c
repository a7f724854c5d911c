/* verify_chunks — a verification pass by chunks of the primary key, their
 * checksums computed on the server and by the daemon, only differing
 * chunks looked into (verify.h). */
#define _GNU_SOURCE
#include "verify_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tisfs/index.h"
#include "tisfs/rowsum.h"
#include "tisfs/source_tidb.h"
#include "tisfs/util.h"

/* With a single integer primary key on MySQL/MariaDB, rows are grouped by
 * pk DIV ROWSUM_CHUNK_WIDTH, and both sides sum the row hash of rowsum.h
 * over each chunk: the server in one GROUP BY, the daemon from the sums
 * its generation keeps (or, without them, from every document). Only
 * chunks whose sums differ are looked into. */
/* A differing chunk is looked into by the hash of each row (the server
 * sends key and hash), and only the rows whose hashes differ are read
 * whole: a few changed rows cost a few rows, not their chunks. When most
 * chunks differ, reading them whole at once is cheaper. */
#define ROWS_BY_HASH_MAX_SHARE 2 /* row hashes while at most 1/2 of the chunks differ */
/* Runs of keys a connection of the server's checksums, taken in turn. */
#define RUNS_PER_CONN 4
/* Key ranges per query: the server tests each row against every range of
 * its WHERE (an OR of BETWEENs), so a long list costs more than queries. */
#define RANGES_PER_QUERY 32
/* Adjacent differing chunks merge into one range of at most this many. */
#define RANGE_MAX_CHUNKS 100
/* Rows read whole per query (WHERE pk IN (...)). */
#define KEYS_PER_QUERY 1000

/* A chunk with the ids of its documents (a map of chunks being a
 * rowsum_map). */
static struct rowsum_chunk *chunk_get(struct rowsum_map *m, int64_t key)
{
    struct rowsum_chunk *c = rowsum_map_get(m, key);
    if (!c->ids)
        c->ids = roaring_bitmap_create();
    return c;
}

/* What a repair's second pass checks again: the keys of the rows the first
 * repaired (int64_t bits when signed). Every other row was found equal by
 * checksum or by its hash at the first pass's snapshot; the second pass
 * proves the repairs, not the table again. */
struct recheck {
    uint64_t *keys;
    size_t n, cap;
};


void verify_chunks_free(struct recheck *r)
{
    if (r)
        free(r->keys);
    free(r);
}

/* "pk BETWEEN lo AND hi" for chunks first..last. */
static void range_sql(const struct tis_field *f, int64_t first, int64_t last, struct tbuf *w)
{
    uint64_t lo, hi, unused;
    rowsum_chunk_bounds(f, first, &lo, &unused);
    rowsum_chunk_bounds(f, last, &unused, &hi);
    tidb_add_ident(w, f->name);
    if (f->vt == VT_UINT)
        tbuf_printf(w, " BETWEEN %llu AND %llu", (unsigned long long)lo, (unsigned long long)hi);
    else
        tbuf_printf(w, " BETWEEN %lld AND %lld", (long long)(int64_t)lo, (long long)(int64_t)hi);
}

/* The WHERE of each query over the sorted chunk keys: adjacent chunks
 * merged into ranges, RANGES_PER_QUERY ranges a query, each a NUL-ended
 * string in out. Returns the number of queries. */
static size_t ranges_where(const struct tis_field *f, const int64_t *keys, size_t n, struct tbuf *out)
{
    size_t queries = 0, in_query = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && keys[j] == keys[j - 1] + 1 && j - i < RANGE_MAX_CHUNKS)
            j++;
        if (in_query == RANGES_PER_QUERY) {
            tbuf_add(out, "", 1);
            in_query = 0;
        }
        if (in_query++)
            tbuf_adds(out, " OR ");
        else
            queries++;
        range_sql(f, keys[i], keys[j - 1], out);
        i = j;
    }
    if (in_query)
        tbuf_add(out, "", 1);
    return queries;
}

bool verify_chunkable(struct source *src, const struct tis_schema *sc)
{
    return !source_is_tidb(src) && rowsum_chunkable(sc);
}

/* ---- the server's hash ---- */

/* A value as the hash reads it: text and binary columns as they are (their
 * bytes; CAST(c AS BINARY) would copy them first, a third of the server's
 * time), anything else in its text form through CAST(c AS BINARY) (no
 * character set can widen its digits). The key is an integer, so every
 * CONCAT_WS has a binary argument: its result is binary and no column's
 * bytes are converted to another character set. OCTET_LENGTH counts bytes
 * in every SQL mode (LENGTH counts characters under sql_mode=ORACLE). */
static void add_value(struct tbuf *q, const struct tis_field *f)
{
    bool raw = f->vt == VT_STRING || f->vt == VT_BINARY;
    tbuf_adds(q, raw ? "" : "CAST(");
    tidb_add_ident(q, f->name);
    tbuf_adds(q, raw ? "" : " AS BINARY)");
}

static void hash_sql(struct tbuf *q, const struct tis_schema *sc)
{
    tbuf_adds(q, "CRC32(CONCAT_WS('|'");
    for (size_t i = 0; i < sc->nfields; i++) {
        tbuf_adds(q, ", IFNULL(OCTET_LENGTH(");
        add_value(q, &sc->fields[i]);
        tbuf_adds(q, "), -1)");
    }
    for (size_t i = 0; i < sc->nfields; i++) {
        tbuf_adds(q, ", ");
        add_value(q, &sc->fields[i]);
    }
    tbuf_adds(q, "))");
}

/* ---- the daemon's side ---- */

struct ours_job {
    struct pass *ps;
    struct rowsum_map c;
    struct tbuf b;
    uint64_t n;
    int rc;
    int deleted_rc; /* the deleted set's LMDB error (rc -2) */
    double secs;
};

static int ours_doc(void *arg, uint32_t id, const struct tis_value *vals)
{
    struct ours_job *j = arg;
    const struct tis_schema *sc = j->ps->sc;
    int64_t key;
    if ((++j->n & 0xFFFF) == 0) {
        gen_release_pages(j->ps->v->g);
        if (atomic_load(&j->ps->v->cancel))
            return -1;
    }
    if (!rowsum_chunk_key(&sc->fields[sc->pk[0]], &vals[sc->pk[0]], &key))
        return 1; /* not a plain integer: compare row by row instead */
    struct rowsum_chunk *ch = chunk_get(&j->c, key);
    rowsum_add(&ch->s, rowsum_hash(sc, vals, &j->b));
    roaring_bitmap_add(ch->ids, id);
    return 0;
}

/* Without kept sums: every live document into its chunk, on its own
 * thread while the server computes its side (on two cores the two
 * overlap). */
static void *ours_thread(void *arg)
{
    struct ours_job *j = arg;
    struct pass *ps = j->ps;
    struct verify *v = ps->v;
    double t0 = mono_now();
    struct gen_stats st;
    gen_stats_read(v->g, ps->txn, &st);
    roaring_bitmap_t *deleted;
    if ((j->deleted_rc = index_deleted(ps->txn, gen_index(v->g), &deleted)) != 0) {
        j->rc = -2; /* reported by the caller */
        gen_stats_free(&st);
        return NULL;
    }
    roaring_bitmap_t *live = index_live(st.last_id, deleted);
    j->rc = gen_walk_doc_values(v->g, ps->txn, live, ps->stored, ours_doc, j);
    tbuf_free(&j->b);
    roaring_bitmap_free(live);
    roaring_bitmap_free(deleted);
    gen_stats_free(&st);
    j->secs = mono_now() - t0;
    return NULL;
}

/* ---- the server's side ---- */

/* One row of the server's GROUP BY: a part of a chunk's rows (their
 * count, XOR and SUM), added to the chunk's: the server's rows of one
 * chunk may come in parts, from several runs of keys or connections. */
static int server_chunk(void *arg, const struct tis_value *vals)
{
    if (vals[0].null || vals[1].null || vals[2].null || vals[3].null)
        return 0;
    struct rowsum part = {strtoull(vals[1].p, NULL, 10), strtoull(vals[3].p, NULL, 10),
                          (uint32_t)strtoul(vals[2].p, NULL, 10)};
    rowsum_merge(&rowsum_map_get(arg, strtoll(vals[0].p, NULL, 10))->s, &part);
    return 0;
}

static void add_table(struct tbuf *q, const struct tis_spec *spec)
{
    tidb_add_ident(q, spec->ds.db);
    tbuf_adds(q, ".");
    tidb_add_ident(q, spec->table);
}

/* Count, BIT_XOR (mixed: ROWSUM_XOR_MIX) and SUM of the row hash per chunk, the hash computed once
 * a row: merged into the outer query, the derived table would compute it
 * for each aggregate (MariaDB's SET STATEMENT, MySQL's NO_MERGE hint).
 * where (may be NULL) limits the rows. */
static void checksum_sql(struct source *src, const struct tis_spec *spec,
                         const struct tis_schema *sc, const char *where, struct tbuf *q)
{
    const char *pk = sc->fields[sc->pk[0]].name;
    bool mariadb = strstr(source_server_version(src), "MariaDB") != NULL;
    if (mariadb)
        tbuf_adds(q, "SET STATEMENT optimizer_switch='derived_merge=off' FOR ");
    tbuf_adds(q, mariadb ? "SELECT CAST(" : "SELECT /*+ NO_MERGE(r) */ CAST(");
    tidb_add_ident(q, pk);
    tbuf_printf(q, " DIV %d AS CHAR), COUNT(*), " ROWSUM_XOR_SQL ", SUM(h) FROM (SELECT ",
                ROWSUM_CHUNK_WIDTH);
    tidb_add_ident(q, pk);
    tbuf_adds(q, ", ");
    hash_sql(q, sc);
    tbuf_adds(q, " AS h FROM ");
    add_table(q, spec);
    if (where)
        tbuf_printf(q, " WHERE %s", where);
    tbuf_adds(q, ") r GROUP BY ");
    tidb_add_ident(q, pk);
    tbuf_printf(q, " DIV %d", ROWSUM_CHUNK_WIDTH);
}

/* ---- the server's side over several connections ---- */

/* The lowest key of chunk k. */
static void chunk_low_sql(const struct tis_field *f, int64_t k, struct tbuf *w)
{
    uint64_t lo, hi;
    rowsum_chunk_bounds(f, k, &lo, &hi);
    if (f->vt == VT_UINT)
        tbuf_printf(w, "%llu", (unsigned long long)lo);
    else
        tbuf_printf(w, "%lld", (long long)(int64_t)lo);
}

struct key_span {
    const struct tis_field *f;
    int64_t lo, hi; /* chunk keys */
    bool ok;
};

static int span_row(void *arg, const struct tis_value *vals)
{
    struct key_span *sp = arg;
    sp->ok = rowsum_chunk_key(sp->f, &vals[0], &sp->lo) &&
             rowsum_chunk_key(sp->f, &vals[1], &sp->hi) &&
             sp->lo <= sp->hi;
    return 0;
}

/* The WHERE of each connection's part of the checksum query, each a
 * NUL-ended string in out: the chunks from the lowest key's to the
 * highest's cut into n runs of equal key width (a table's keys are mostly
 * dense; MIN and MAX cost two probes of the primary key, counting rows
 * would cost a scan). Returns how many parts: 1 (no WHERE) when the keys
 * span fewer than n chunks or cannot be read. */
static size_t split_parts(struct pass *ps, struct source *src, size_t n, struct tbuf *out)
{
    const struct tis_field *f = &ps->sc->fields[ps->sc->pk[0]];
    struct key_span sp = {.f = f};
    struct tbuf q = {0};
    char err[256];
    tbuf_adds(&q, "SELECT MIN(");
    tidb_add_ident(&q, f->name);
    tbuf_adds(&q, "), MAX(");
    tidb_add_ident(&q, f->name);
    tbuf_adds(&q, ") FROM ");
    add_table(&q, ps->v->spec);
    int rc = source_query(src, q.data, 2, span_row, &sp, &ps->v->cancel, err, sizeof err);
    tbuf_free(&q);
    if (rc || !sp.ok || (uint64_t)(sp.hi - sp.lo) + 1 < n)
        return 1;
    uint64_t width = (uint64_t)(sp.hi - sp.lo) + 1;
    for (size_t i = 0; i < n; i++) {
        int64_t from = sp.lo + (int64_t)(width / n * i + width % n * i / n);
        int64_t to = sp.lo + (int64_t)(width / n * (i + 1) + width % n * (i + 1) / n);
        if (i) {
            tidb_add_ident(out, f->name);
            tbuf_adds(out, " >= ");
            chunk_low_sql(f, from, out);
        }
        if (i && i + 1 < n)
            tbuf_adds(out, " AND ");
        if (i + 1 < n) {
            tidb_add_ident(out, f->name);
            tbuf_adds(out, " < ");
            chunk_low_sql(f, to, out);
        }
        tbuf_add(out, "", 1);
    }
    return n;
}

/* The server's checksums into theirs: over every connection that reads
 * the snapshot, the scan and its hash being most of a pass's time and a
 * server having more than one core. The keys are cut into a few runs a
 * connection, each connection taking the next when done with one: two
 * halves would leave a core idle while the slower half (or the one that
 * shared its core with the daemon's side) finishes. Returns how many
 * connections were used, 0 on error (err). */
static size_t server_sums(struct pass *ps, struct source *src, struct rowsum_map *theirs,
                          char *err, size_t errlen)
{
    struct tbuf wh = {0};
    size_t conns = source_snapshot_conns(src);
    size_t n = conns > 1 ? split_parts(ps, src, conns * RUNS_PER_CONN, &wh) : 1;
    struct tbuf *q = xcalloc(n, sizeof *q);
    const char **sql = xcalloc(n, sizeof *sql);
    struct rowsum_map *part = xcalloc(conns, sizeof *part);
    void **args = xcalloc(conns, sizeof *args);
    const char *w = n > 1 ? wh.data : NULL;
    for (size_t i = 0; i < n; i++) {
        checksum_sql(src, ps->v->spec, ps->sc, w, &q[i]);
        sql[i] = q[i].data;
        if (w)
            w += strlen(w) + 1;
    }
    for (size_t i = 0; i < conns; i++)
        args[i] = &part[i];
    int rc = source_query_each(src, sql, n, 4, server_chunk, args, &ps->v->cancel, err, errlen);
    for (size_t i = 0; i < conns; i++) {
        for (size_t k = 0; !rc && k < part[i].cap; k++) {
            const struct rowsum_chunk *from = &part[i].t[k];
            if (from->used)
                rowsum_merge(&rowsum_map_get(theirs, from->key)->s, &from->s);
        }
        rowsum_map_free(&part[i]);
    }
    for (size_t i = 0; i < n; i++)
        tbuf_free(&q[i]);
    free(args);
    free(part);
    free(sql);
    free(q);
    tbuf_free(&wh);
    return rc ? 0 : (n < conns ? n : conns);
}

size_t verify_snapshot_conns(const struct verify *v, const struct tis_schema *sc)
{
    return rowsum_chunkable(sc) && !v->recheck ? VERIFY_SERVER_CONNS : 1;
}

/* ---- looking into chunks ---- */

/* The documents of the chunks looked into by key: their ids and hashes,
 * so that a row's hash from the server costs one probe, not a lookup of
 * its key, version and document in the index. */
struct rowent {
    uint64_t pk; /* int64_t bits when signed */
    uint32_t id, h;
    bool used;
};

struct rowmap {
    struct rowent *t;
    size_t cap;
};

static struct rowent *row_slot(const struct rowmap *m, uint64_t pk)
{
    size_t i = rowsum_key_hash((int64_t)pk) & (m->cap - 1);
    while (m->t[i].used && m->t[i].pk != pk)
        i = (i + 1) & (m->cap - 1);
    return &m->t[i];
}

/* Every document of scope by key (at most half full: no growing). */
struct fill {
    struct rowmap *m;
    struct pass *ps;
    struct tbuf b;
};

static int fill_doc(void *arg, uint32_t id, const struct tis_value *vals)
{
    struct fill *f = arg;
    const struct tis_schema *sc = f->ps->sc;
    const struct tis_field *pkf = &sc->fields[sc->pk[0]];
    int64_t s = 0;
    uint64_t u = 0;
    if (!rowsum_pk_number(pkf, &vals[sc->pk[0]], &s, &u))
        return 0; /* left to the comparison of rows and the search for extras */
    uint64_t pk = pkf->vt == VT_UINT ? u : (uint64_t)s;
    *row_slot(f->m, pk) = (struct rowent){pk, id, rowsum_hash(sc, vals, &f->b), true};
    return 0;
}

static void rowmap_fill(struct rowmap *m, struct pass *ps, const roaring_bitmap_t *scope,
                        struct tis_value *vals)
{
    struct fill f = {m, ps, {0}};
    m->cap = 16;
    while (m->cap < 2 * roaring_bitmap_get_cardinality(scope))
        m->cap *= 2;
    m->t = xcalloc(m->cap, sizeof *m->t);
    gen_walk_doc_values(ps->v->g, ps->txn, scope, vals, fill_doc, &f);
    tbuf_free(&f.b);
}

struct descent {
    struct pass *ps;
    struct source *src;
    const struct tis_schema *sc;
    uint64_t *keys; /* the keys of rows to read whole (int64_t bits when signed) */
    size_t nkeys, cap;
    struct rowmap docs;
    uint64_t hashed, read;
};

static void add_key(struct descent *d, uint64_t pk)
{
    if (d->nkeys == d->cap)
        d->keys = xrealloc(d->keys, (d->cap = d->cap ? d->cap * 2 : 256) * sizeof *d->keys);
    d->keys[d->nkeys++] = pk;
}

/* A row's key and hash from the server, parsed on the thread of its
 * connection. */
struct pair {
    uint64_t pk; /* int64_t bits when signed */
    uint32_t h;
    bool hashed; /* false: the server's hash was NULL */
};

struct pairs {
    const struct tis_field *pkf;
    struct pair *p;
    size_t n, cap;
};

static int collect_pair(void *arg, const struct tis_value *vals)
{
    struct pairs *ps = arg;
    int64_t s = 0;
    uint64_t u = 0;
    if (!rowsum_pk_number(ps->pkf, &vals[0], &s, &u))
        return 0; /* no key to read it by: the search for extras still runs */
    if (ps->n == ps->cap)
        ps->p = xrealloc(ps->p, (ps->cap = ps->cap ? ps->cap * 2 : 1024) * sizeof *ps->p);
    /* A NULL hash (CONCAT_WS longer than max_allowed_packet) still names a
     * row of the table: it is read whole, never taken for missing. */
    ps->p[ps->n++] = (struct pair){ps->pkf->vt == VT_UINT ? u : (uint64_t)s,
                                   vals[1].null ? 0 : (uint32_t)strtoul(vals[1].p, NULL, 10),
                                   !vals[1].null};
    return 0;
}

/* The server's row hashes against the documents': an equal one checks the
 * row, any other row is read whole later. */
static void match_pairs(struct descent *d, const struct pairs *ps)
{
    uint64_t equal = 0;
    for (size_t i = 0; i < ps->n; i++) {
        const struct rowent *e = row_slot(&d->docs, ps->p[i].pk);
        if (e->used && ps->p[i].hashed && e->h == ps->p[i].h) {
            roaring_bitmap_add(d->ps->seen, e->id);
            equal++;
        } else
            add_key(d, ps->p[i].pk);
    }
    d->hashed += ps->n;
    pthread_mutex_lock(&d->ps->v->mu);
    d->ps->v->checked += equal;
    pthread_mutex_unlock(&d->ps->v->mu);
}

static int run_query(struct descent *d, const char *sql, size_t ncols, source_row_fn fn, void *arg,
                     char *err, size_t errlen)
{
    struct pass *ps = d->ps;
    int rc = source_query(d->src, sql, ncols, fn, arg, &ps->v->cancel, err, errlen);
    if (rc && ps->err[0])
        snprintf(err, errlen, "%s", ps->err);
    return rc;
}

/* The rows of the listed keys, read whole and compared. */
static int read_listed(struct descent *d, char *err, size_t errlen)
{
    const struct tis_field *f = &d->sc->fields[d->sc->pk[0]];
    struct tbuf where = {0}, q = {0};
    int rc = 0;
    for (size_t i = 0; i < d->nkeys && !rc; i += KEYS_PER_QUERY) {
        tbuf_reset(&where);
        tbuf_reset(&q);
        tidb_add_ident(&where, f->name);
        tbuf_adds(&where, " IN (");
        for (size_t k = i; k < d->nkeys && k < i + KEYS_PER_QUERY; k++)
            if (f->vt == VT_UINT)
                tbuf_printf(&where, "%s%llu", k > i ? "," : "", (unsigned long long)d->keys[k]);
            else
                tbuf_printf(&where, "%s%lld", k > i ? "," : "", (long long)(int64_t)d->keys[k]);
        tbuf_adds(&where, ")");
        tidb_select_sql(&q, d->ps->v->spec->ds.db, d->ps->v->spec->table, d->sc, where.data);
        rc = run_query(d, q.data, d->sc->nfields, verify_compare_row, d->ps, err, errlen);
    }
    d->read += d->nkeys;
    d->nkeys = 0;
    tbuf_free(&where);
    tbuf_free(&q);
    return rc;
}

/* One query's ranges, every row read whole. */
static int read_ranges(struct descent *d, const char *where, char *err, size_t errlen)
{
    struct tbuf q = {0};
    tidb_select_sql(&q, d->ps->v->spec->ds.db, d->ps->v->spec->table, d->sc, where);
    int rc = run_query(d, q.data, d->sc->nfields, verify_compare_row, d->ps, err, errlen);
    tbuf_free(&q);
    return rc;
}

static void row_hash_sql(struct descent *d, const char *where, struct tbuf *q)
{
    tbuf_adds(q, "SELECT ");
    tidb_add_ident(q, d->sc->fields[d->sc->pk[0]].name);
    tbuf_adds(q, ", ");
    hash_sql(q, d->sc);
    tbuf_adds(q, " FROM ");
    add_table(q, d->ps->v->spec);
    tbuf_printf(q, " WHERE %s", where);
}

struct fill_job {
    struct rowmap *m;
    struct pass *ps;
    const roaring_bitmap_t *scope;
    struct tis_value *vals;
};

static void *fill_thread(void *arg)
{
    struct fill_job *j = arg;
    rowmap_fill(j->m, j->ps, j->scope, j->vals);
    return NULL;
}

/* By the hash of each row: the queries (NUL-ended WHEREs in w) over every
 * connection that reads the snapshot, the daemon hashing its documents of
 * scope meanwhile; then the rows whose hashes differ are read whole. The
 * server's pairs are all kept until the daemon's map is there: a third of
 * the map's own size. */
static int look_by_hash(struct descent *d, const char *w, size_t nq, const roaring_bitmap_t *scope,
                        char *err, size_t errlen)
{
    size_t conns = source_snapshot_conns(d->src);
    struct fill_job fj = {&d->docs, d->ps, scope,
                          xcalloc(d->sc->nfields, sizeof *fj.vals)};
    pthread_t th;
    bool filling = pthread_create(&th, NULL, fill_thread, &fj) == 0;
    if (!filling)
        fill_thread(&fj);
    struct tbuf *q = xcalloc(nq, sizeof *q);
    const char **sql = xcalloc(nq, sizeof *sql);
    struct pairs *got = xcalloc(conns, sizeof *got);
    void **args = xcalloc(conns, sizeof *args);
    for (size_t i = 0; i < nq; i++, w += strlen(w) + 1) {
        row_hash_sql(d, w, &q[i]);
        sql[i] = q[i].data;
    }
    for (size_t k = 0; k < conns; k++) {
        got[k].pkf = &d->sc->fields[d->sc->pk[0]];
        args[k] = &got[k];
    }
    int rc = source_query_each(d->src, sql, nq, 2, collect_pair, args, &d->ps->v->cancel, err,
                               errlen);
    if (filling)
        pthread_join(th, NULL);
    for (size_t k = 0; k < conns && !rc; k++) {
        match_pairs(d, &got[k]);
        /* A query's worth of keys at a time: the list stays bounded. */
        if (d->nkeys >= KEYS_PER_QUERY)
            rc = read_listed(d, err, errlen);
    }
    if (!rc)
        rc = read_listed(d, err, errlen);
    for (size_t k = 0; k < conns; k++)
        free(got[k].p);
    for (size_t i = 0; i < nq; i++)
        tbuf_free(&q[i]);
    free(args);
    free(got);
    free(sql);
    free(q);
    free(fj.vals);
    return rc;
}

/* With kept sums: the looked-into chunks summed again from their
 * documents (whose row hashes the map holds), against what the generation
 * kept for them. They differ only if the kept sums are off (a fault of
 * the store or of tisfs, not drift): the rows were compared exactly all
 * the same, but every verification would look into those chunks again, so
 * it is said, and a repair corrects them. Both sides are of the pass's
 * snapshot; the correction is their difference, added to whatever the
 * channel and the repairs changed since, as their own changes are. */
static int check_kept(const struct descent *d, const struct rowsum_map *c)
{
    struct rowsum_map docs = {0};
    const struct tis_field *f = &d->sc->fields[d->sc->pk[0]];
    const struct rowsum zero = {0};
    size_t off = 0;
    int rc = 0;
    for (size_t i = 0; i < d->docs.cap; i++) {
        const struct rowent *e = &d->docs.t[i];
        if (!e->used)
            continue;
        rowsum_add(&rowsum_map_get(&docs, rowsum_chunk_of(f, e->pk))->s, e->h);
    }
    for (size_t i = 0; i < c->cap && !rc; i++) {
        const struct rowsum_chunk *k = &c->t[i];
        if (!k->used)
            continue;
        const struct rowsum_chunk *o = rowsum_map_find(&docs, k->key);
        const struct rowsum *want = o ? &o->s : &zero;
        if (rowsum_equal(&k->s, want))
            continue;
        off++;
        struct rowsum delta = {want->count - k->s.count, want->sum - k->s.sum, want->x ^ k->s.x};
        if (d->ps->repair)
            rc = verify_correct_sums(d->ps, k->key, &delta);
    }
    if (off)
        verify_log(d->ps->v, "the kept sums of %zu of the %zu chunks looked into are not their "
                   "documents' (the rows were compared all the same): %s", off, c->n,
                   d->ps->repair ? "corrected with the repairs" : "a repair corrects them");
    rowsum_map_free(&docs);
    return rc;
}

/* The chunks of keys (sorted) looked into, by the hash of each row when
 * given their map c (with the daemon's sums), else reading every row; then
 * the documents of scope that no row matched are extra. */
static int look_into_chunks(struct pass *ps, struct source *src, const int64_t *keys,
                            size_t n, const struct rowsum_map *c, bool kept,
                            const roaring_bitmap_t *scope, char *err, size_t errlen)
{
    bool by_hash = c != NULL;
    struct descent d = {.ps = ps, .src = src, .sc = ps->sc};
    double t0 = mono_now();
    struct tbuf wh = {0};
    size_t nq = ranges_where(&ps->sc->fields[ps->sc->pk[0]], keys, n, &wh);
    int rc = 0;
    const char *w = wh.data;
    if (by_hash)
        rc = look_by_hash(&d, w, nq, scope, err, errlen);
    if (!rc && by_hash && kept && check_kept(&d, c) != 0)
        rc = -1, snprintf(err, errlen, "%s", ps->err);
    for (size_t i = 0; !by_hash && i < nq && !rc; i++, w += strlen(w) + 1)
        rc = read_ranges(&d, w, err, errlen);
    if (!rc && (rc = verify_find_extra(ps, scope)) != 0)
        snprintf(err, errlen, "%s", ps->err);
    if (!rc && by_hash)
        verify_log(ps->v, "looked into %zu chunks by the hash of each row: %llu rows, %llu of "
                   "them read whole (%.2f s)", n, (unsigned long long)d.hashed,
                   (unsigned long long)d.read, mono_now() - t0);
    else if (!rc)
        verify_log(ps->v, "looked into %zu chunks: every row read whole (%.2f s)", n,
                   mono_now() - t0);
    tbuf_free(&wh);
    free(d.keys);
    free(d.docs.t);
    return rc;
}

/* ---- the passes ---- */

static void count_checked(struct verify *v, uint64_t n)
{
    pthread_mutex_lock(&v->mu);
    v->checked += n;
    pthread_mutex_unlock(&v->mu);
}

/* Marks the chunks of ours and theirs that differ into c, with the ids
 * ours has of their documents (kept sums have none); returns how many
 * chunks either side has. */
static size_t compare_sums(struct pass *ps, const struct rowsum_map *ours,
                           const struct rowsum_map *theirs, struct rowsum_map *c)
{
    size_t all = theirs->n;
    for (size_t i = 0; i < theirs->cap; i++) {
        const struct rowsum_chunk *t = &theirs->t[i], *o;
        if (!t->used)
            continue;
        o = rowsum_map_find(ours, t->key);
        if (o && rowsum_equal(&o->s, &t->s)) {
            count_checked(ps->v, t->s.count); /* all its rows are equal */
            continue;
        }
        struct rowsum_chunk *ch = chunk_get(c, t->key);
        if (o)
            ch->s = o->s; /* the daemon's, for check_kept */
        if (o && o->ids)
            roaring_bitmap_or_inplace(ch->ids, o->ids);
    }
    for (size_t i = 0; i < ours->cap; i++) {
        const struct rowsum_chunk *o = &ours->t[i];
        if (o->used && !rowsum_empty(&o->s) &&
            !rowsum_map_find(theirs, o->key)) { /* only the daemon has it */
            struct rowsum_chunk *ch = chunk_get(c, o->key);
            ch->s = o->s;
            if (o->ids)
                roaring_bitmap_or_inplace(ch->ids, o->ids);
            all++;
        }
    }
    return all;
}

/* With kept sums: the documents of each differing chunk, from the keys
 * (a range of the pk tree each). */
static int kept_ids(struct pass *ps, struct rowsum_map *c, char *err, size_t errlen)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < c->cap; i++)
        if (c->t[i].used)
            rc = gen_chunk_ids(ps->v->g, ps->txn, c->t[i].key, c->t[i].ids);
    if (rc)
        snprintf(err, errlen, "read the keys of a chunk: %s", mdb_strerror(rc));
    return rc ? -1 : 0;
}

/* The union of c's chunks' documents into ids. */
static void chunk_docs(const struct rowsum_map *c, roaring_bitmap_t *ids)
{
    for (size_t i = 0; i < c->cap; i++)
        if (c->t[i].used && c->t[i].ids)
            roaring_bitmap_or_inplace(ids, c->t[i].ids);
}

/* Both sides' checksums of every chunk: those that differ into c, how
 * many there are in all into *all. The daemon's are the generation's kept
 * sums or, without them, a walk over its documents beside the server's
 * work. Returns 0, -1, or 1 when the daemon's keys are not integers. */
static int checksums(struct pass *ps, struct source *src, struct rowsum_map *c,
                     size_t *all, bool *kept_used, char *err, size_t errlen)
{
    struct ours_job ours = {.ps = ps};
    struct rowsum_map theirs = {0};
    pthread_t th;
    double t0 = mono_now();
    int read = gen_rowsums_read(ps->v->g, ps->txn, &ours.c);
    bool kept = read == 0;
    ours.secs = mono_now() - t0;
    if (read < 0)
        verify_log(ps->v, "the generation's chunk sums cannot be read: its documents are summed "
                   "instead");
    bool threaded = false;
    if (!kept) {
        rowsum_map_free(&ours.c);
        threaded = pthread_create(&th, NULL, ours_thread, &ours) == 0;
    }
    t0 = mono_now();
    size_t conns = server_sums(ps, src, &theirs, err, errlen);
    int rc = conns ? 0 : -1;
    double server = mono_now() - t0;
    if (threaded)
        pthread_join(th, NULL);
    else if (!kept) /* no thread to be had: the documents' sums here, after */
        ours_thread(&ours);
    if (ours.rc == -2)
        snprintf(err, errlen, "the collection's deleted documents cannot be read: %s",
                 mdb_strerror(ours.deleted_rc));
    /* 1: keys that are not integers (compare row by row), -1: cancelled */
    if (ours.rc)
        rc = ours.rc < 0 ? -1 : ours.rc;
    if (rc < 0 && !err[0])
        snprintf(err, errlen, "cancelled");
    if (!rc)
        *all = compare_sums(ps, &ours.c, &theirs, c);
    if (!rc && kept)
        rc = kept_ids(ps, c, err, errlen);
    *kept_used = kept;
    if (!rc)
        verify_log(ps->v, "compared %zu chunks of %d key values by checksum: %zu differ "
                   "(the server's sums in %.2f s over %zu connection%s, the daemon's %s in "
                   "%.2f s)", *all, ROWSUM_CHUNK_WIDTH, c->n, server, conns,
                   conns == 1 ? "" : "s", kept ? "kept sums read" : "documents summed",
                   ours.secs);
    rowsum_map_free(&ours.c);
    rowsum_map_free(&theirs);
    return rc;
}

/* verify.c's hook: the key of a row the first pass repairs. */
static void keep_key(void *arg, const struct tis_value *vals)
{
    struct pass *ps = arg;
    struct recheck *r = ps->v->recheck;
    const struct tis_field *f = &ps->sc->fields[ps->sc->pk[0]];
    int64_t s = 0;
    uint64_t u = 0;
    if (!rowsum_pk_number(f, &vals[ps->sc->pk[0]], &s, &u))
        return;
    if (r->n == r->cap)
        r->keys = xrealloc(r->keys, (r->cap = r->cap ? r->cap * 2 : 256) * sizeof *r->keys);
    r->keys[r->n++] = f->vt == VT_UINT ? u : (uint64_t)s;
}

/* The documents that hold keys now: what no row may match (extra). */
static roaring_bitmap_t *keys_docs(struct pass *ps, const struct recheck *r)
{
    const struct tis_field *f = &ps->sc->fields[ps->sc->pk[0]];
    roaring_bitmap_t *ids = roaring_bitmap_create();
    struct tis_value *kv = xcalloc(ps->sc->nfields, sizeof *kv);
    for (size_t i = 0; i < r->n; i++) {
        char num[24];
        struct gen_row row;
        int len = f->vt == VT_UINT ? snprintf(num, sizeof num, "%llu", (unsigned long long)r->keys[i])
                                   : snprintf(num, sizeof num, "%lld", (long long)(int64_t)r->keys[i]);
        kv[ps->sc->pk[0]] = (struct tis_value){num, (size_t)len, false};
        if (gen_row_lookup(ps->v->g, ps->txn, kv, &ps->key, &row) == 0 && row.present)
            roaring_bitmap_add(ids, row.id);
    }
    free(kv);
    return ids;
}

/* A repair's second pass: the rows the first repaired, read whole and
 * compared; the documents of their keys that no row matched are extra. */
static int recheck_pass(struct pass *ps, struct source *src, char *err, size_t errlen)
{
    const struct recheck *r = ps->v->recheck;
    if (r->n == 0) {
        verify_log(ps->v, "nothing was repaired: nothing to check again");
        return 0;
    }
    double t0 = mono_now();
    struct descent d = {.ps = ps, .src = src, .sc = ps->sc, .keys = r->keys, .nkeys = r->n};
    int rc = read_listed(&d, err, errlen);
    roaring_bitmap_t *scope = rc ? NULL : keys_docs(ps, r);
    if (scope && (rc = verify_find_extra(ps, scope)) != 0)
        snprintf(err, errlen, "%s", ps->err);
    if (!rc)
        verify_log(ps->v, "checked again the %zu rows the first pass repaired (%.2f s)", r->n,
                   mono_now() - t0);
    if (scope) /* this CRoaring's free does not take NULL */
        roaring_bitmap_free(scope);
    return rc;
}

/* The whole pass by chunks. Returns 0, -1 on error, or 1 when the table's
 * keys do not allow it (the caller compares row by row). */
int verify_chunked_pass(struct pass *ps, struct source *src, const struct tis_schema *sc,
                        char *err, size_t errlen)
{
    (void)sc; /* the table's as described; ps->sc, the collection's, is the same */
    if (ps->v->recheck)
        return recheck_pass(ps, src, err, errlen);
    if (ps->repair) {
        ps->v->recheck = xcalloc(1, sizeof *ps->v->recheck);
        ps->on_repair = keep_key;
    }
    struct rowsum_map c = {0};
    size_t all = 0;
    bool kept = false;
    int rc = checksums(ps, src, &c, &all, &kept, err, errlen);
    roaring_bitmap_t *scope = roaring_bitmap_create();
    int64_t *keys = NULL;
    if (!rc) {
        keys = rowsum_map_keys(&c);
        chunk_docs(&c, scope);
    }
    if (!rc && c.n) {
        bool by_hash = c.n * ROWS_BY_HASH_MAX_SHARE <= all;
        rc = look_into_chunks(ps, src, keys, c.n, by_hash ? &c : NULL, kept, scope, err,
                              errlen);
    }
    free(keys);
    roaring_bitmap_free(scope);
    rowsum_map_free(&c);
    return rc;
}
