/* gen — per-collection generations in LMDB. */
#define _GNU_SOURCE
#include "tisfs/gen.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gen_internal.h"
#include "tisfs/util.h"

/* A build's environment opens at 64 GiB (virtual: the file grows as pages
 * are written) and grows between its transactions (lmdb_map_room), which
 * only its thread runs, so it needs no lock: a transaction of the build (a
 * batch of documents, 16 MiB of postings) always finds room. Once built,
 * the generation opens anew for serving at max(1 GiB, twice its file) and
 * doubles when a write finds it full (lmdb_map.h). A fixed map would have to
 * be sized for the largest collection, and cost that much address space per
 * generation open (1 TiB each capped a daemon at ~120). */
#define GEN_BUILD_MAP ((size_t)64 << 30)

static void env_close(struct gen_env *e)
{
    if (!e->env)
        return;
    mdb_env_close(e->env);
    lmdb_map_destroy(&e->map);
    pk_filter_free(e->filter);
    e->filter = NULL;
    e->env = NULL;
}

static int env_open(struct gen_env *e, const char *dir, bool readonly, size_t mapsize)
{
    MDB_txn *txn = NULL;
    unsigned dbflags = readonly ? 0 : MDB_CREATE;
    int rc = mdb_env_create(&e->env);
    if (rc)
        return rc;
    /* A generation opens 13 databases; the limit is the process's, not
     * the file's, so headroom costs nothing and a future one needs no
     * format change. */
    mdb_env_set_maxdbs(e->env, 32);
    lmdb_map_init(&e->map, e->env, mapsize);
    rc = mdb_env_open(e->env, dir,
                      MDB_NOTLS | MDB_NORDAHEAD | (readonly ? MDB_RDONLY : MDB_NOSYNC), 0600);
    if (!rc) {
        lmdb_map_opened(&e->map);
        /* Nothing else has the environment yet: no lock. */
        rc = mdb_txn_begin(e->env, NULL, readonly ? MDB_RDONLY : 0, &txn);
    }
    if (!rc)
        rc = mdb_dbi_open(txn, "docs", dbflags | MDB_INTEGERKEY, &e->docs);
    if (!rc)
        rc = mdb_dbi_open(txn, "pk", dbflags, &e->pk);
    if (!rc)
        rc = mdb_dbi_open(txn, "meta", dbflags, &e->meta);
    if (!rc) { /* older generations lack it: a reader does without */
        rc = mdb_dbi_open(txn, "pkrecent", dbflags, &e->pkrecent);
        e->has_recent = rc == 0;
        rc = rc == MDB_NOTFOUND && readonly ? 0 : rc;
    }
    if (!rc && !readonly) /* only writers need them: older generations lack them */
        rc = mdb_dbi_open(txn, "dead", MDB_CREATE, &e->dead);
    if (!rc && !readonly)
        rc = mdb_dbi_open(txn, "sums", MDB_CREATE, &e->sums);
    if (!rc && !readonly)
        rc = mdb_dbi_open(txn, "sumlog", MDB_CREATE, &e->sumlog);
    if (!rc)
        rc = index_open_dbs(txn, !readonly, &e->index);
    if (!rc) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (txn)
        mdb_txn_abort(txn);
    if (rc)
        env_close(e);
    return rc;
}

int lmdb_fail(int rc, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %s", what, mdb_strerror(rc));
    return -1;
}

/* ---- primary key encoding ----
 * Encoded so that byte order is key order: integers as 8 big-endian bytes
 * (sign bit flipped for signed ones), anything else as its bytes with 0x00
 * escaped to 00 FF and a 00 00 terminator. A table scanned in primary key
 * order (InnoDB's, TiDB's) then arrives in key order and every insert is an
 * append. */

#define SIGN_BIT ((uint64_t)1 << 63)

/* An integer key's 8 bytes (bits: int64_t bits when signed). */
static void pk_int_bytes(uint64_t bits, bool is_signed, unsigned char be[8])
{
    put_be64(be, is_signed ? bits ^ SIGN_BIT : bits);
}

static void pk_add_int(struct tbuf *k, const struct tis_value *v, bool is_signed)
{
    char tmp[32];
    size_t n = v->len < sizeof tmp ? v->len : sizeof tmp - 1;
    memcpy(tmp, v->p, n);
    tmp[n] = 0;
    unsigned char be[8];
    pk_int_bytes(is_signed ? (uint64_t)strtoll(tmp, NULL, 10) : strtoull(tmp, NULL, 10),
                 is_signed, be);
    tbuf_add(k, be, 8);
}

static void pk_add_bytes(struct tbuf *k, const struct tis_value *v)
{
    for (size_t i = 0; i < v->len; i++) {
        tbuf_add(k, &v->p[i], 1);
        if (v->p[i] == 0)
            tbuf_add(k, "\xff", 1);
    }
    tbuf_add(k, "\0\0", 2);
}

void pk_encode(const struct tis_schema *sc, const struct tis_value *vals, struct tbuf *k)
{
    tbuf_reset(k);
    for (size_t i = 0; i < sc->npk; i++) {
        const struct tis_field *f = &sc->fields[sc->pk[i]];
        const struct tis_value *v = &vals[sc->pk[i]];
        if (f->vt == VT_INT || f->vt == VT_UINT)
            pk_add_int(k, v, f->vt == VT_INT);
        else
            pk_add_bytes(k, v);
    }
}

/* ---- chunk sums (rowsum.h) ---- */

void sums_key(int64_t key, unsigned char b[8])
{
    pk_int_bytes((uint64_t)key, true, b);
}

void sums_encode(const struct rowsum *s, unsigned char b[SUMS_VALUE_SIZE])
{
    memcpy(b, &s->count, 8);
    memcpy(b + 8, &s->sum, 8);
    memcpy(b + 16, &s->x, 4);
}

bool sums_decode(const MDB_val *v, struct rowsum *s)
{
    if (v->mv_size != SUMS_VALUE_SIZE)
        return false;
    memcpy(&s->count, v->mv_data, 8);
    memcpy(&s->sum, (char *)v->mv_data + 8, 8);
    memcpy(&s->x, (char *)v->mv_data + 16, 4);
    return true;
}

/* A log record's entry: the chunk key (i64), then sums_encode's form. */
#define SUMS_LOG_ENTRY (8 + SUMS_VALUE_SIZE)

void sums_log_encode(const struct rowsum_map *m, const int64_t *keys, size_t n, struct tbuf *out)
{
    unsigned char e[SUMS_LOG_ENTRY];
    tbuf_reset(out);
    tbuf_reserve(out, n * SUMS_LOG_ENTRY);
    for (size_t i = 0; i < n; i++) {
        memcpy(e, &keys[i], 8);
        sums_encode(&rowsum_map_find(m, keys[i])->s, e + 8);
        tbuf_add(out, e, sizeof e);
    }
}

bool sums_log_decode(const MDB_val *v, struct rowsum_map *m)
{
    if (v->mv_size % SUMS_LOG_ENTRY)
        return false;
    for (char *p = v->mv_data, *e = p + v->mv_size; p < e; p += SUMS_LOG_ENTRY) {
        int64_t key;
        struct rowsum s;
        MDB_val sv = {SUMS_VALUE_SIZE, p + 8};
        memcpy(&key, p, 8);
        sums_decode(&sv, &s);
        rowsum_merge(&rowsum_map_get(m, key)->s, &s);
    }
    return true;
}

/* meta "rowsums": the chunk width the sums were kept with, as text. */
#define ROWSUMS_WIDTH_TEXT TIS_STR(ROWSUM_CHUNK_WIDTH)

bool rowsums_kept(struct gen *g, MDB_txn *txn)
{
    MDB_val k = {7, "rowsums"}, v;
    /* A read-only environment has not opened sums and sumlog (0 would be
     * LMDB's free list). */
    return g->e.sums && g->e.sumlog && mdb_get(txn, g->e.meta, &k, &v) == 0 &&
           v.mv_size == strlen(ROWSUMS_WIDTH_TEXT) &&
           memcmp(v.mv_data, ROWSUMS_WIDTH_TEXT, v.mv_size) == 0;
}

int gen_rowsums_read(struct gen *g, MDB_txn *txn, struct rowsum_map *m)
{
    MDB_cursor *cur;
    MDB_val k, v;
    if (!rowsums_kept(g, txn))
        return 1;
    int rc = mdb_cursor_open(txn, g->e.sums, &cur);
    if (rc)
        return -1;
    for (int op = MDB_FIRST; (rc = mdb_cursor_get(cur, &k, &v, op)) == 0; op = MDB_NEXT) {
        struct rowsum s;
        if (k.mv_size != 8 || !sums_decode(&v, &s)) {
            rc = MDB_CORRUPTED;
            break;
        }
        rowsum_map_get(m, (int64_t)(get_be64(k.mv_data) ^ SIGN_BIT))->s = s; /* sums_key's */
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND || (rc = mdb_cursor_open(txn, g->e.sumlog, &cur)) != 0)
        return -1;
    /* The changes the merge has not folded in yet. */
    for (int op = MDB_FIRST; (rc = mdb_cursor_get(cur, &k, &v, op)) == 0; op = MDB_NEXT)
        if (!sums_log_decode(&v, m)) {
            rc = MDB_CORRUPTED;
            break;
        }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : -1;
}

int gen_chunk_ids(struct gen *g, MDB_txn *txn, int64_t key, roaring_bitmap_t *ids)
{
    const struct tis_field *f = &g->sc->fields[g->sc->pk[0]];
    bool is_signed = f->vt != VT_UINT;
    uint64_t lo, hi;
    unsigned char from[8], to[8];
    rowsum_chunk_bounds(f, key, &lo, &hi);
    pk_int_bytes(lo, is_signed, from);
    pk_int_bytes(hi, is_signed, to);
    MDB_val fk = {8, from}, tk = {8, to};
    return pk_ids_in_range(txn, &g->e, &fk, &tk, ids);
}

/* ---- document encoding ----
 * Per field in schema order: varint(len + 1) then the bytes, or varint 0 for
 * NULL. Values stay in the server's text form; typing happens on output. */
void doc_encode(const struct tis_schema *sc, const struct tis_value *vals, struct tbuf *d)
{
    tbuf_reset(d);
    for (size_t i = 0; i < sc->nfields; i++) {
        tbuf_add_varint(d, vals[i].null ? 0 : vals[i].len + 1);
        if (!vals[i].null)
            tbuf_add(d, vals[i].p, vals[i].len);
    }
}

bool doc_values(const struct tis_schema *sc, const MDB_val *v, struct tis_value *vals)
{
    const unsigned char *p = v->mv_data, *end = p + v->mv_size;
    for (size_t i = 0; i < sc->nfields; i++) {
        uint64_t n;
        if (!varint_read(&p, end, &n) || (n && (uint64_t)(end - p) < n - 1))
            return false;
        vals[i] = (struct tis_value){(const char *)p, n ? n - 1 : 0, n == 0};
        if (n)
            p += n - 1;
    }
    return true;
}

static struct json_object *doc_decode(const struct tis_schema *sc, const MDB_val *v)
{
    struct tis_value *vals = xcalloc(sc->nfields, sizeof *vals);
    struct json_object *o = json_object_new_object();
    bool ok = doc_values(sc, v, vals);
    for (size_t i = 0; ok && i < sc->nfields; i++) {
        const struct tis_field *f = &sc->fields[i];
        if (f->store || f->pk)
            json_object_object_add(o, f->name, vals[i].null ? NULL
                                                            : value_to_json(f->vt, vals[i].p,
                                                                            vals[i].len));
    }
    free(vals);
    return o;
}

/* ---- builder ---- */
struct gen_builder {
    struct gen_env e;
    struct tis_schema *sc;
    struct index_builder *ib;
    struct analysis_opts opts;
    MDB_txn *txn;
    uint32_t next_id;
    uint64_t in_batch, batch_bytes;
    struct tbuf key, last_key, doc, rowbuf;
    /* The chunk sums (rowsum.h), while every key is a plain integer. */
    bool rowsums;
    struct rowsum_map sums;
};

struct gen_builder *gen_builder_open(const char *dir, const struct tis_schema *sc,
                                     const struct analysis_opts *opts, char *err, size_t errlen)
{
    struct gen_builder *b = xcalloc(1, sizeof *b);
    int rc = mkdir(dir, 0700) < 0 ? errno : 0;
    if (rc) {
        snprintf(err, errlen, "create %s: %s", dir, strerror(rc));
        free(b);
        return NULL;
    }
    size_t min = lmdb_map_initial(0);
    if ((rc = env_open(&b->e, dir, false, min > GEN_BUILD_MAP ? min : GEN_BUILD_MAP)) != 0 ||
        (rc = mdb_txn_begin(b->e.env, NULL, 0, &b->txn)) != 0) {
        lmdb_fail(rc, dir, err, errlen);
        gen_builder_free(b);
        return NULL;
    }
    b->sc = schema_ref(sc);
    b->opts = *opts;
    b->rowsums = rowsum_chunkable(sc);
    if (!(b->ib = index_builder_new(sc, opts, dir, 0, err, errlen))) {
        gen_builder_free(b);
        return NULL;
    }
    return b;
}

static int commit_batch(struct gen_builder *b, char *err, size_t errlen)
{
    int rc = mdb_txn_commit(b->txn);
    b->txn = NULL;
    if (!rc)
        rc = lmdb_map_room(b->e.env);
    if (!rc)
        rc = mdb_txn_begin(b->e.env, NULL, 0, &b->txn);
    b->in_batch = b->batch_bytes = 0;
    return rc ? lmdb_fail(rc, "write generation", err, errlen) : 0;
}

/* The row into its chunk's sums; the pk entry's value (id, then the row
 * hash while sums are kept) into v. */
static void sum_row(struct gen_builder *b, const struct tis_value *vals, uint32_t id,
                    unsigned char v[8], MDB_val *val)
{
    int64_t key;
    memcpy(v, &id, 4);
    *val = (MDB_val){4, v};
    if (b->rowsums && !rowsum_chunk_key(&b->sc->fields[b->sc->pk[0]], &vals[b->sc->pk[0]], &key)) {
        b->rowsums = false; /* verify will read the documents */
        rowsum_map_free(&b->sums);
    }
    if (!b->rowsums)
        return;
    uint32_t h = rowsum_hash(b->sc, vals, &b->rowbuf);
    rowsum_add(&rowsum_map_get(&b->sums, key)->s, h);
    memcpy(v + 4, &h, 4);
    val->mv_size = 8;
}

static int put_sums(struct gen_builder *b)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < b->sums.cap; i++) {
        const struct rowsum_chunk *c = &b->sums.t[i];
        unsigned char kb[8], vb[SUMS_VALUE_SIZE];
        if (!c->used)
            continue;
        sums_key(c->key, kb);
        sums_encode(&c->s, vb);
        MDB_val k = {8, kb}, v = {sizeof vb, vb};
        rc = mdb_put(b->txn, b->e.sums, &k, &v, 0);
    }
    MDB_val k = {7, "rowsums"}, v = {strlen(ROWSUMS_WIDTH_TEXT), ROWSUMS_WIDTH_TEXT};
    return rc ? rc : mdb_put(b->txn, b->e.meta, &k, &v, 0);
}

static int put_pk(struct gen_builder *b, MDB_val *id, char *err, size_t errlen)
{
    MDB_val k = {b->key.len, b->key.data};
    bool after = b->last_key.len == 0 ||
                 memcmp(b->key.data, b->last_key.data,
                        b->key.len < b->last_key.len ? b->key.len : b->last_key.len) > 0 ||
                 (b->key.len > b->last_key.len &&
                  memcmp(b->key.data, b->last_key.data, b->last_key.len) == 0);
    int rc = mdb_put(b->txn, b->e.pk, &k, id, after ? MDB_APPEND : MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
        snprintf(err, errlen, "duplicate primary key in row %u", b->next_id);
        return -1;
    }
    if (rc)
        return lmdb_fail(rc, "write primary key", err, errlen);
    if (after) {
        tbuf_reset(&b->last_key);
        tbuf_add(&b->last_key, b->key.data, b->key.len);
    }
    return 0;
}

int gen_builder_add(struct gen_builder *b, const struct tis_value *vals, char *err,
                    size_t errlen)
{
    if (b->next_id == UINT32_MAX) {
        snprintf(err, errlen, "too many rows for one collection (limit %u)", UINT32_MAX - 1);
        return -1;
    }
    /* No table has a NULL key cell: a server that sends one (an impostor,
     * a broken proxy) would otherwise key the row as an empty value, and a
     * second such row would be reported as a duplicate. */
    for (size_t i = 0; i < b->sc->npk; i++)
        if (vals[b->sc->pk[i]].null) {
            snprintf(err, errlen, "the server answered NULL for primary key column %s in row %u",
                     b->sc->fields[b->sc->pk[i]].name, b->next_id + 1);
            return -1;
        }
    uint32_t id = ++b->next_id;
    MDB_val k = {sizeof id, &id};
    pk_encode(b->sc, vals, &b->key);
    doc_encode(b->sc, vals, &b->doc);
    MDB_val d = {b->doc.len, b->doc.data};
    int rc = mdb_put(b->txn, b->e.docs, &k, &d, MDB_APPEND);
    if (rc)
        return lmdb_fail(rc, "write document", err, errlen);
    unsigned char pv[8];
    MDB_val pkv;
    sum_row(b, vals, id, pv, &pkv);
    if (put_pk(b, &pkv, err, errlen))
        return -1;
    index_builder_add(b->ib, id, vals);
    b->batch_bytes += b->doc.len + b->key.len + 32;
    if (++b->in_batch >= GEN_BATCH_ROWS || b->batch_bytes >= GEN_BATCH_BYTES)
        return commit_batch(b, err, errlen);
    return 0;
}

uint64_t gen_builder_rows(const struct gen_builder *b)
{
    return b->next_id;
}

void gen_builder_set_cancel(struct gen_builder *b, const atomic_bool *cancel)
{
    if (b->ib)
        index_builder_set_cancel(b->ib, cancel);
}

uint64_t gen_builder_truncated(const struct gen_builder *b)
{
    return b->ib ? index_builder_truncated(b->ib) : 0;
}

static int put_meta(struct gen_builder *b, const char *key, struct json_object *val)
{
    const char *s = json_object_to_json_string_ext(val, JSON_C_TO_STRING_PLAIN);
    MDB_val k = {strlen(key), (void *)key}, v = {strlen(s), (void *)s};
    return mdb_put(b->txn, b->e.meta, &k, &v, 0);
}

static struct json_object *opts_json(const struct analysis_opts *o)
{
    struct json_object *j = json_object_new_object();
    json_object_object_add(j, "minGramSize", json_object_new_int(o->min_gram));
    json_object_object_add(j, "maxGramSize", json_object_new_int(o->max_gram));
    return j;
}

/* indexBuild: the documents are in; the index is merged and written in bulk,
 * then the meta, then one sync. */
int gen_builder_finish(struct gen_builder *b, struct json_object *snapshot, char *err,
                       size_t errlen)
{
    struct json_object *stats = NULL;
    int rc = mdb_txn_commit(b->txn);
    b->txn = NULL;
    if (!rc)
        rc = lmdb_map_room(b->e.env);
    if (rc)
        return lmdb_fail(rc, "write documents", err, errlen);
    if (index_builder_finish(b->ib, b->e.env, &b->e.index, &stats, err, errlen))
        return -1;
    struct json_object *sc = schema_to_json(b->sc), *n = json_object_new_int64(b->next_id),
                       *opts = opts_json(&b->opts), *format = json_object_new_int(INDEX_FORMAT);
    rc = lmdb_map_room(b->e.env);
    if (!rc)
        rc = mdb_txn_begin(b->e.env, NULL, 0, &b->txn);
    if (!rc)
        rc = put_meta(b, "schema", sc);
    if (!rc)
        rc = put_meta(b, "docs", n);
    if (!rc)
        rc = put_meta(b, "index_stats", stats);
    if (!rc)
        rc = put_meta(b, "analysis", opts);
    if (!rc)
        rc = put_meta(b, "format", format);
    if (!rc && snapshot)
        rc = put_meta(b, "snapshot", snapshot);
    if (!rc && b->rowsums)
        rc = put_sums(b);
    json_object_put(sc);
    json_object_put(n);
    json_object_put(stats);
    json_object_put(opts);
    json_object_put(format);
    if (!rc) {
        rc = mdb_txn_commit(b->txn);
        b->txn = NULL;
    }
    if (!rc)
        rc = mdb_env_sync(b->e.env, 1);
    return rc ? lmdb_fail(rc, "finish generation", err, errlen) : 0;
}

void gen_builder_free(struct gen_builder *b)
{
    if (!b)
        return;
    if (b->txn)
        mdb_txn_abort(b->txn);
    index_builder_free(b->ib);
    env_close(&b->e);
    schema_free(b->sc);
    tbuf_free(&b->key);
    tbuf_free(&b->last_key);
    tbuf_free(&b->doc);
    tbuf_free(&b->rowbuf);
    rowsum_map_free(&b->sums);
    free(b);
}

/* ---- reading ---- */

struct json_object *meta_get(struct gen *g, MDB_txn *txn, const char *key)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    if (mdb_get(txn, g->e.meta, &k, &v))
        return NULL;
    char *s = xstrndup(v.mv_data, v.mv_size);
    struct json_object *o = json_tokener_parse(s);
    free(s);
    return o;
}

struct gen *gen_open(const char *dir, char *err, size_t errlen)
{
    struct gen *g = xcalloc(1, sizeof *g);
    MDB_txn *txn;
    int rc = env_open(&g->e, dir, false, lmdb_map_initial(lmdb_file_size(dir)));
    if (rc) {
        lmdb_fail(rc, dir, err, errlen);
        free(g);
        return NULL;
    }
    g->dir = xstrdup(dir);
    atomic_init(&g->refs, 1);
    int format = 1; /* generations before the format was recorded */
    if (gen_txn_begin(g, &txn) == 0) {
        struct json_object *sc = meta_get(g, txn, "schema"), *n = meta_get(g, txn, "docs"),
                           *f = meta_get(g, txn, "format");
        if (f)
            format = json_object_get_int(f);
        json_object_put(f);
        g->sc = schema_from_json(sc);
        g->docs = n ? (uint64_t)json_object_get_int64(n) : 0;
        g->snapshot = meta_get(g, txn, "snapshot");
        g->stats = meta_get(g, txn, "index_stats");
        struct json_object *o = meta_get(g, txn, "analysis"), *v;
        if (o && json_object_object_get_ex(o, "minGramSize", &v))
            g->opts.min_gram = json_object_get_int(v);
        if (o && json_object_object_get_ex(o, "maxGramSize", &v))
            g->opts.max_gram = json_object_get_int(v);
        json_object_put(o);
        json_object_put(sc);
        json_object_put(n);
        gen_txn_end(g, txn);
    }
    if (g->sc && format != INDEX_FORMAT) {
        /* Its postings lack what this version's queries read (positions,
         * dense norms): answers would be wrong, not merely slow. */
        snprintf(err, errlen, "%s: written by another version of tisfs (index format %d, this "
                 "one reads %d): rebuild the collection (echo 1 > collections/NAME/build)", dir,
                 format, INDEX_FORMAT);
        schema_free(g->sc);
        g->sc = NULL;
        g->doomed = false;
        gen_unref(g);
        return NULL;
    }
    if (!g->sc) {
        snprintf(err, errlen, "%s: not a finished generation (no schema)", dir);
        g->doomed = false;
        gen_unref(g);
        return NULL;
    }
    return g;
}

void gen_ref(struct gen *g)
{
    atomic_fetch_add(&g->refs, 1);
}

void gen_unref(struct gen *g)
{
    if (!g || atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    env_close(&g->e);
    if (atomic_load(&g->doomed))
        rm_rf(g->dir);
    schema_free(g->sc);
    json_object_put(g->snapshot);
    json_object_put(g->stats);
    free(g->dir);
    free(g);
}

void gen_doom(struct gen *g)
{
    atomic_store(&g->doomed, true);
}

uint64_t gen_doc_count(struct gen *g)
{
    MDB_txn *txn;
    struct gen_stats st = {0, 0, NULL};
    if (gen_txn_begin(g, &txn) == 0) {
        gen_stats_read(g, txn, &st);
        gen_txn_end(g, txn);
    }
    gen_stats_free(&st);
    return st.docs;
}

const struct tis_schema *gen_schema(const struct gen *g)
{
    return g->sc;
}

struct json_object *gen_snapshot(const struct gen *g)
{
    return g->snapshot;
}

const char *gen_dir(const struct gen *g)
{
    return g->dir;
}

int gen_each_doc(struct gen *g, int (*fn)(struct json_object *, void *), void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int stop = 0;
    if (gen_txn_begin(g, &txn))
        return -1;
    /* A removed document stays in docs until the merge purges it. */
    roaring_bitmap_t *deleted;
    if (index_deleted(txn, &g->e.index, &deleted)) {
        gen_txn_end(g, txn);
        return -1;
    }
    mdb_cursor_open(txn, g->e.docs, &cur);
    for (int op = MDB_FIRST; !stop && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        uint32_t id;
        memcpy(&id, k.mv_data, sizeof id);
        if (roaring_bitmap_contains(deleted, id))
            continue;
        struct json_object *doc = doc_decode(g->sc, &v);
        stop = fn(doc, arg);
        json_object_put(doc);
    }
    mdb_cursor_close(cur);
    roaring_bitmap_free(deleted);
    gen_txn_end(g, txn);
    return stop;
}

/* The totals the build wrote, before any live change. */
static void base_stats(const struct gen *g, struct gen_stats *st)
{
    st->last_id = (uint32_t)g->docs;
    st->docs = g->docs;
    for (size_t i = 0; i < g->sc->nfields; i++) {
        struct json_object *f, *v;
        if (!g->stats || !json_object_object_get_ex(g->stats, g->sc->fields[i].name, &f))
            continue;
        if (json_object_object_get_ex(f, "docs", &v))
            st->f[i].docs = json_object_get_int64(v);
        if (json_object_object_get_ex(f, "tokens", &v))
            st->f[i].tokens = json_object_get_int64(v);
    }
}

/* meta "live": u32 last id, u32 nfields, u64 docs, then i64 docs and i64
 * tokens per field; written by every batch of live changes. */
void gen_stats_read(struct gen *g, MDB_txn *txn, struct gen_stats *st)
{
    size_t nf = g->sc->nfields;
    MDB_val k = {4, "live"}, v;
    st->f = xcalloc(nf ? nf : 1, sizeof *st->f);
    uint32_t n;
    if (mdb_get(txn, g->e.meta, &k, &v) || v.mv_size != 16 + nf * 16 ||
        (memcpy(&n, (char *)v.mv_data + 4, 4), n != nf)) {
        base_stats(g, st);
        return;
    }
    const char *p = v.mv_data;
    memcpy(&st->last_id, p, 4);
    memcpy(&st->docs, p + 8, 8);
    memcpy(st->f, p + 16, nf * 16);
}

void gen_stats_free(struct gen_stats *st)
{
    free(st->f);
    st->f = NULL;
}

const struct analysis_opts *gen_analysis_opts(const struct gen *g)
{
    return &g->opts;
}

int gen_txn_begin(struct gen *g, MDB_txn **txn)
{
    return lmdb_map_begin(&g->e.map, MDB_RDONLY, txn, NULL);
}

void gen_txn_end(struct gen *g, MDB_txn *txn)
{
    lmdb_map_end(&g->e.map, txn);
}

size_t gen_map_size(struct gen *g)
{
    lmdb_map_hold(&g->e.map);
    size_t n = g->e.map.size;
    lmdb_map_release(&g->e.map);
    return n;
}

const struct index_dbs *gen_index(const struct gen *g)
{
    return &g->e.index;
}

struct json_object *gen_doc_json(struct gen *g, MDB_txn *txn, uint32_t id)
{
    MDB_val k = {sizeof id, &id}, v;
    if (mdb_get(txn, g->e.docs, &k, &v))
        return NULL;
    return doc_decode(g->sc, &v);
}

bool gen_doc_values(struct gen *g, MDB_txn *txn, uint32_t id, struct tis_value *vals)
{
    MDB_val k = {sizeof id, &id}, v;
    return mdb_get(txn, g->e.docs, &k, &v) == 0 && doc_values(g->sc, &v, vals);
}

int gen_walk_doc_values(struct gen *g, MDB_txn *txn, const roaring_bitmap_t *ids,
                        struct tis_value *vals,
                        int (*fn)(void *arg, uint32_t id, const struct tis_value *vals),
                        void *arg)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int stop = 0;
    roaring_uint32_iterator_t it;
    roaring_init_iterator(ids, &it);
    if (!it.has_value || mdb_cursor_open(txn, g->e.docs, &cur))
        return 0;
    /* The next leaf entry instead of a descent from the root for each id,
     * which is most of the time of a walk over many documents; a jump
     * (MDB_SET_RANGE) only over a gap of more than a few. */
    uint32_t want = it.current_value, at;
    k = (MDB_val){sizeof want, &want};
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (!rc && !stop && it.has_value && k.mv_size == sizeof at) {
        memcpy(&at, k.mv_data, sizeof at);
        want = it.current_value;
        if (at > want) { /* no document for want: on to the ids from at */
            roaring_move_uint32_iterator_equalorlarger(&it, at);
            continue;
        }
        if (at == want) {
            if (doc_values(g->sc, &v, vals))
                stop = fn(arg, at, vals);
            if (!roaring_advance_uint32_iterator(&it))
                break;
            want = it.current_value;
        }
        if (want - at <= 16) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        } else {
            k = (MDB_val){sizeof want, &want};
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        }
    }
    mdb_cursor_close(cur);
    return stop;
}
