/* gen_live — live changes to a serving generation: upserts, deletes and
 * truncates under the version rule, one write transaction per batch. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>

#include "gen_internal.h"

struct gen_writer {
    struct gen *g;
    MDB_txn *txn;
    size_t seen; /* the map size the transaction runs under */
    bool full;   /* a write found the map full */
    struct analyzer *an;
    struct gen_stats st;
    struct version snapshot, floor;
    struct tbuf key, doc, old;
    struct tis_value *oldv, *merged;
    struct index_delta *delta; /* the term entries, written at the commit */
    roaring_bitmap_t *dead;    /* ids whose documents the merge purges */
    /* The batch's new documents (ids first_new on), appended together at
     * the commit: put as each row came, their pages would alternate with
     * the pk leaves the batch rewrites, and every read of a pk leaf maps
     * the pages around it (the kernel's fault-around) into the daemon's
     * RSS, documents included. */
    struct tbuf news;
    size_t *new_at, nnew, new_cap;
    uint32_t first_new;
    /* The batch's change to the chunk sums (rowsum.h), while kept:
     * appended to the sums log at the commit as one record. */
    bool rowsums, sums_broken;
    struct rowsum_map sums;
    struct tbuf rowbuf;
    struct pk_writer pk;
    enum pk_where where; /* of the key find_current looked up */
};

/* A stored version (u8 domain + u64, put_version's form) into *r; false,
 * leaving *r as it is, when v is not one. */
static bool version_decode(const MDB_val *v, struct version *r)
{
    if (v->mv_size != 9)
        return false;
    r->domain = *(const uint8_t *)v->mv_data;
    memcpy(&r->v, (const char *)v->mv_data + 1, 8);
    return true;
}

struct version meta_version(struct gen *g, MDB_txn *txn, const char *key)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    struct version r = {VER_NONE, 0};
    if (mdb_get(txn, g->e.meta, &k, &v) == 0)
        version_decode(&v, &r);
    return r;
}

/* version_decode's form, into b[0..9). */
static void version_encode(struct version v, unsigned char *b)
{
    b[0] = v.domain;
    memcpy(b + 1, &v.v, 8);
}

static int put_version(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, struct version v)
{
    unsigned char b[9];
    version_encode(v, b);
    MDB_val val = {9, b};
    return mdb_put(txn, dbi, k, &val, 0);
}

/* A row's pk entry (gen_internal.h): its document id (0: none), its
 * version when the stream wrote one, and then its document's hash. One
 * lookup and one write a change: they were two of each, in two B-trees,
 * each dirtying its own pages. The hash answers "unchanged?" without
 * reading the document (a random page of the largest tree). While the
 * generation keeps chunk sums, the entry ends with the row hash (rowsum.h)
 * that a change takes out of its chunk. Sizes: 4 (a build's, without
 * sums), 8 (a build's), 13 (a tombstone), 21, 25 (the stream's). */
struct row_entry {
    uint32_t id;
    bool has_version, has_hash, has_rh;
    struct version v;
    uint64_t hash;
    uint32_t rh;
};

static bool row_decode(const MDB_val *v, struct row_entry *r)
{
    size_t n = v->mv_size;
    const char *p = v->mv_data;
    if (n != 4 && n != 8 && n != 13 && n != 21 && n != 25)
        return false;
    memcpy(&r->id, p, 4);
    MDB_val ver = {9, (char *)p + 4};
    r->has_version = n >= 13 && version_decode(&ver, &r->v);
    r->has_hash = n >= 21;
    if (r->has_hash)
        memcpy(&r->hash, p + 13, 8);
    r->has_rh = n == 8 || n == 25;
    if (r->has_rh)
        memcpy(&r->rh, p + n - 4, 4);
    return true;
}

/* The entry of the key find_current looked up last. id 0 (a tombstone)
 * keeps no hash; rh NULL: no row hash. */
static int row_put(struct gen_writer *w, MDB_val *k, uint32_t id, struct version v,
                   uint64_t hash, const uint32_t *rh)
{
    unsigned char b[25];
    memcpy(b, &id, 4);
    version_encode(v, b + 4);
    memcpy(b + 13, &hash, 8);
    if (rh)
        memcpy(b + 21, rh, 4);
    MDB_val val = {!id ? 13 : rh ? 25 : 21, b};
    return pk_put(w->txn, &w->g->e, &w->pk, k, &val, w->where);
}

struct version gen_snapshot_version(const struct gen *g)
{
    return gen_version_of_snapshot(g->snapshot);
}

struct version gen_version_of_snapshot(struct json_object *snapshot)
{
    struct json_object *v, *f, *p;
    struct version r = {VER_NONE, 0};
    if (!snapshot)
        return r;
    if (json_object_object_get_ex(snapshot, "tso", &v) && json_object_is_type(v, json_type_int))
        return (struct version){VER_TSO, (uint64_t)json_object_get_int64(v)};
    if (json_object_object_get_ex(snapshot, "binlog", &v) &&
        json_object_object_get_ex(v, "file", &f) && json_object_object_get_ex(v, "pos", &p)) {
        r = cdc_binlog_version(json_object_get_string(f), (uint64_t)json_object_get_int64(p), 0);
        /* Transactions in the snapshot start before its position; the
         * first one after it may start exactly there. */
        if (r.domain != VER_NONE && r.v > 0) /* at 0 nothing starts before it */
            r.v--;
    }
    return r;
}

int gen_row_lookup(struct gen *g, MDB_txn *txn, const struct tis_value *vals, struct tbuf *key,
                   struct gen_row *r)
{
    pk_encode(g->sc, vals, key);
    MDB_val k = {key->len, key->data}, v;
    struct row_entry e = {0};
    enum pk_where where;
    memset(r, 0, sizeof *r);
    int rc = pk_get(txn, &g->e, &k, &v, &where);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    if (rc == 0 && !row_decode(&v, &e))
        return MDB_CORRUPTED;
    r->present = e.id != 0;
    r->id = e.id;
    if (e.has_version)
        r->v = e.v;
    else {
        struct version floor = meta_version(g, txn, "floor");
        r->v = !r->present && floor.domain != VER_NONE ? floor : gen_snapshot_version(g);
    }
    return 0;
}

/* Whether an event at version a replaces what version b wrote. Different
 * domains do not compare: the event is applied (an at-least-once handover).
 * Binlog coordinates of two changes of one transaction can coincide, and
 * so can the milliseconds of two transactions (VER_MS): a row's changes
 * come in order on its partition, and re-applying an image is harmless,
 * so equal binlog and millisecond versions apply. */
static bool newer(struct version a, struct version b)
{
    if (a.domain == VER_NONE || b.domain == VER_NONE || a.domain != b.domain)
        return true;
    return a.v > b.v || ((a.domain == VER_BINLOG || a.domain == VER_MS) && a.v == b.v);
}


bool gen_write_older(const struct gen_writer *w, struct version v)
{
    return v.domain != VER_NONE &&
           (!newer(v, w->snapshot) || (w->floor.domain != VER_NONE && !newer(v, w->floor)));
}

struct gen_writer *gen_write_begin(struct gen *g, struct analyzer *an, char *err, size_t errlen)
{
    struct gen_writer *w = xcalloc(1, sizeof *w);
    w->delta = index_delta_new();
    int rc = lmdb_map_begin(&g->e.map, 0, &w->txn, &w->seen);
    if (rc) {
        lmdb_fail(rc, "begin a batch", err, errlen);
        index_delta_free(w->delta);
        free(w);
        return NULL;
    }
    w->g = g;
    w->an = an;
    gen_stats_read(g, w->txn, &w->st);
    w->floor = meta_version(g, w->txn, "floor");
    w->rowsums = rowsums_kept(g, w->txn);
    w->snapshot = gen_snapshot_version(g);
    pk_writer_begin(w->txn, &g->e, &w->pk);
    w->oldv = xcalloc(g->sc->nfields, sizeof *w->oldv);
    w->merged = xcalloc(g->sc->nfields, sizeof *w->merged);
    return w;
}

/* Whether the key pk_encode made fits in an LMDB key (511 bytes: a long
 * string key, escaped, may not); else err says so. A row the stream
 * cannot store is its event's problem, not the batch's: failing the
 * batch, a channel would retry it for ever. */
static bool key_fits(struct gen_writer *w, char *err, size_t errlen)
{
    int max = mdb_env_get_maxkeysize(w->g->e.env);
    if (w->key.len <= (size_t)max)
        return true;
    snprintf(err, errlen,
             "the row's primary key takes %zu bytes encoded, more than the %d an index key "
             "can hold: the row cannot be stored",
             w->key.len, max);
    return false;
}

/* Looks the current key up into *e: *stale when an event at version ev
 * changes nothing (at or below the row's version: its own, else the
 * snapshot's, or the last TRUNCATE's). */
static int find_current(struct gen_writer *w, struct version ev, struct row_entry *e,
                        bool *stale)
{
    MDB_val k = {w->key.len, w->key.data}, v;
    *e = (struct row_entry){0};
    int rc = pk_find(w->txn, &w->g->e, &w->pk, &k, &v, &w->where);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    if (rc == 0 && !row_decode(&v, e))
        return MDB_CORRUPTED;
    struct version row = e->has_version ? e->v : w->snapshot;
    *stale = !newer(ev, row) || (w->floor.domain != VER_NONE && !newer(ev, w->floor));
    return 0;
}

/* The batch's i-th new document (id first_new + i). */
static MDB_val new_doc(const struct gen_writer *w, size_t i)
{
    size_t end = i + 1 < w->nnew ? w->new_at[i + 1] : w->news.len;
    return (MDB_val){end - w->new_at[i], w->news.data + w->new_at[i]};
}

/* Copies document id (its page may move under the writes that follow)
 * into w->old and its values into w->oldv. */
static int read_old(struct gen_writer *w, uint32_t id)
{
    MDB_val ik = {4, &id}, d;
    int rc = 0;
    if (w->nnew && id >= w->first_new && id - w->first_new < w->nnew)
        d = new_doc(w, id - w->first_new);
    else if ((rc = mdb_get(w->txn, w->g->e.docs, &ik, &d)) != 0)
        return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
    tbuf_reset(&w->old);
    tbuf_add(&w->old, d.mv_data, d.mv_size);
    MDB_val copy = {w->old.len, w->old.data};
    return doc_values(w->g->sc, &copy, w->oldv) ? 0 : MDB_CORRUPTED;
}

/* Takes document id out of the index. Its stored document stays until the
 * merge purges it (purge_dead): deleted here, each would dirty a random
 * page of the documents' tree, and map it, with the pages around it, into
 * the daemon's memory (a 1M-event catch-up: 430 MB peak RSS with, 276 MB
 * without, and 4.2 against 2.8 KB written an event). */
static int remove_doc(struct gen_writer *w, uint32_t id)
{
    if (!w->dead)
        w->dead = roaring_bitmap_create();
    roaring_bitmap_add(w->dead, id);
    return index_doc_remove(w->txn, &w->g->e.index, w->g->sc, id, w->st.f, w->delta);
}

static void add_new(struct gen_writer *w, uint32_t id)
{
    if (!w->nnew)
        w->first_new = id;
    if (w->nnew == w->new_cap) {
        w->new_cap = w->new_cap ? 2 * w->new_cap : 1024;
        w->new_at = xrealloc(w->new_at, w->new_cap * sizeof *w->new_at);
    }
    w->new_at[w->nnew++] = w->news.len;
    tbuf_add(&w->news, w->doc.data, w->doc.len);
}

static int put_news(struct gen_writer *w)
{
    MDB_cursor *cur;
    if (!w->nnew)
        return 0;
    int rc = mdb_cursor_open(w->txn, w->g->e.docs, &cur);
    if (rc)
        return rc;
    for (size_t i = 0; !rc && i < w->nnew; i++) {
        uint32_t id = w->first_new + (uint32_t)i;
        MDB_val k = {4, &id}, d = new_doc(w, i);
        rc = mdb_cursor_put(cur, &k, &d, MDB_APPEND);
    }
    mdb_cursor_close(cur);
    return rc;
}

/* A row's hash out of its chunk's sums (the row at key vals held the
 * document e names; its hash from the entry, or from w->oldv, read) and,
 * with rh, the new one in. */
static void sums_change(struct gen_writer *w, const struct tis_value *vals,
                        const struct row_entry *e, const uint32_t *rh)
{
    const struct tis_schema *sc = w->g->sc;
    int64_t key;
    if (!rowsum_chunk_key(&sc->fields[sc->pk[0]], &vals[sc->pk[0]], &key)) {
        w->sums_broken = true; /* verify will read the documents */
        return;
    }
    struct rowsum_chunk *c = rowsum_map_get(&w->sums, key);
    if (e && e->id)
        rowsum_sub(&c->s, e->has_rh ? e->rh : rowsum_hash(sc, w->oldv, &w->rowbuf));
    if (rh)
        rowsum_add(&c->s, *rh);
}

/* The sums of m added to the sums tree, chunk by chunk in key order
 * (neighbouring chunks share pages); a chunk left with nothing goes. */
static int sums_apply(struct gen_writer *w, const struct rowsum_map *m)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(w->txn, w->g->e.sums, &cur);
    int64_t *keys = rc ? NULL : rowsum_map_keys(m);
    for (size_t i = 0; !rc && i < m->n; i++) {
        unsigned char kb[8], vb[SUMS_VALUE_SIZE];
        struct rowsum s = {0};
        sums_key(keys[i], kb);
        MDB_val k = {8, kb}, v;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
        bool had = rc == 0;
        if (had && !sums_decode(&v, &s))
            rc = MDB_CORRUPTED;
        else if (rc == MDB_NOTFOUND)
            rc = 0;
        if (rc)
            break;
        rowsum_merge(&s, &rowsum_map_find(m, keys[i])->s);
        sums_encode(&s, vb);
        v = (MDB_val){sizeof vb, vb};
        k = (MDB_val){8, kb};
        if (!rowsum_empty(&s))
            rc = mdb_cursor_put(cur, &k, &v, had ? MDB_CURRENT : 0);
        else if (had)
            rc = mdb_cursor_del(cur, 0);
    }
    if (keys) /* the cursor opened */
        mdb_cursor_close(cur);
    free(keys);
    return rc;
}

/* The batch's change to the chunk sums, appended to the sums log as one
 * record, which the merge folds into the tree later (fold_sums). Written
 * into the tree here, the few hundred leaves a batch touches would each be
 * read through the map, and each read maps the megabyte around it into
 * the daemon's RSS (an open-protocol 1M-event catch-up peaked at 308
 * against 251 MB); a new record is written, not read. */
static int log_sums(struct gen_writer *w)
{
    MDB_val mk = {7, "rowsums"}, k, v;
    if (!w->rowsums || (!w->sums.n && !w->sums_broken))
        return 0;
    if (w->sums_broken) { /* verify will read the documents */
        int rc = mdb_drop(w->txn, w->g->e.sums, 0);
        if (!rc)
            rc = mdb_drop(w->txn, w->g->e.sumlog, 0);
        return rc ? rc : mdb_del(w->txn, w->g->e.meta, &mk, NULL);
    }
    MDB_cursor *cur;
    int rc = mdb_cursor_open(w->txn, w->g->e.sumlog, &cur);
    if (rc)
        return rc;
    uint64_t seq = 0; /* the next record's */
    if ((rc = mdb_cursor_get(cur, &k, &v, MDB_LAST)) == 0 && k.mv_size == 8)
        seq = get_be64(k.mv_data) + 1;
    if (rc == 0 || rc == MDB_NOTFOUND) {
        unsigned char kb[8];
        int64_t *keys = rowsum_map_keys(&w->sums);
        sums_log_encode(&w->sums, keys, w->sums.n, &w->rowbuf);
        free(keys);
        put_be64(kb, seq);
        k = (MDB_val){8, kb};
        v = (MDB_val){w->rowbuf.len, w->rowbuf.data};
        rc = mdb_cursor_put(cur, &k, &v, MDB_APPEND);
    }
    mdb_cursor_close(cur);
    return rc;
}

/* Up to max records of the sums log, oldest first, folded into the tree. */
static int fold_sums(struct gen_writer *w, size_t max, bool *ran)
{
    MDB_cursor *cur;
    MDB_val k, v;
    struct rowsum_map m = {0};
    size_t n = 0;
    int rc = w->rowsums ? mdb_cursor_open(w->txn, w->g->e.sumlog, &cur) : 0;
    if (rc || !w->rowsums)
        return rc;
    for (int op = MDB_FIRST; n < max && (rc = mdb_cursor_get(cur, &k, &v, op)) == 0;
         op = MDB_NEXT, n++) {
        if (!sums_log_decode(&v, &m))
            rc = MDB_CORRUPTED;
        if (rc || (rc = mdb_cursor_del(cur, 0)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND || rc == 0)
        rc = n ? sums_apply(w, &m) : 0;
    *ran |= n > 0;
    rowsum_map_free(&m);
    return rc;
}

static bool some_absent(const struct tis_schema *sc, const bool *present)
{
    for (size_t i = 0; present && i < sc->nfields; i++)
        if (!present[i])
            return true;
    return false;
}

/* present NULL: every field is; pre: the packed analysis of vals then, or
 * NULL. */
static int upsert(struct gen_writer *w, const struct tis_value *vals, const bool *present,
                  const void *pre, struct version v, enum gen_outcome *out, char *err,
                  size_t errlen)
{
    const struct gen *g = w->g;
    struct row_entry e;
    bool stale = false, partial = some_absent(g->sc, present);
    pk_encode(g->sc, vals, &w->key);
    if (!key_fits(w, err, errlen))
        return *out = GEN_REFUSED, 0;
    int rc = find_current(w, v, &e, &stale);
    if (!rc && stale)
        return *out = GEN_STALE, 0;
    bool had = !rc && e.id,
         old_read = had && (partial || !e.has_hash || (w->rowsums && !e.has_rh));
    if (old_read)
        rc = read_old(w, e.id);
    for (size_t i = 0; i < g->sc->nfields; i++)
        w->merged[i] = !present || present[i] ? vals[i]
                       : had                  ? w->oldv[i]
                                              : (struct tis_value){"", 0, true};
    doc_encode(g->sc, w->merged, &w->doc);
    uint64_t hash = hash64(w->doc.data, w->doc.len);
    uint32_t rh = w->rowsums ? rowsum_hash(g->sc, w->merged, &w->rowbuf) : 0;
    bool same = had && (e.has_hash ? e.hash == hash
                                   : w->doc.len == w->old.len &&
                                         memcmp(w->doc.data, w->old.data, w->old.len) == 0);
    MDB_val k = {w->key.len, w->key.data};
    uint32_t id = e.id;
    *out = GEN_APPLIED;
    if (!rc && same) {
        *out = GEN_UNCHANGED;
    } else if (!rc) {
        if (w->rowsums)
            sums_change(w, vals, had ? &e : NULL, &rh);
        if (had)
            rc = remove_doc(w, e.id);
        if (!rc && w->st.last_id == UINT32_MAX) {
            /* Ids run out: a larger map would not help. */
            snprintf(err, errlen, "apply an upsert: no document id left (rebuild the collection)");
            return -1;
        }
        id = ++w->st.last_id;
        if (!rc)
            add_new(w, id);
        if (!rc && pre)
            rc = index_doc_add_packed(w->txn, &g->e.index, g->sc, pre, id, w->merged, w->st.f,
                                      w->delta);
        else if (!rc)
            rc = index_doc_add(w->txn, &g->e.index, g->sc, w->an, &g->opts, id, w->merged, w->st.f,
                               w->delta);
        w->st.docs += !had;
    }
    if (!rc && same && e.has_rh)
        rh = e.rh; /* what the sums hold for it, even if two hashes collided */
    if (!rc)
        rc = row_put(w, &k, id, v, hash, w->rowsums ? &rh : NULL);
    w->full |= rc == MDB_MAP_FULL;
    return rc ? lmdb_fail(rc, "apply an upsert", err, errlen) : 0;
}

int gen_write_upsert(struct gen_writer *w, const struct tis_value *vals, const bool *present,
                     struct version v, enum gen_outcome *out, char *err, size_t errlen)
{
    return upsert(w, vals, present, NULL, v, out, err, errlen);
}

void gen_write_use_group(struct gen_writer *w, const struct index_group *g)
{
    index_delta_attach(w->delta, g);
}

int gen_write_upsert_analyzed(struct gen_writer *w, const struct tis_value *vals,
                              const void *pre, struct version v, enum gen_outcome *out,
                              char *err, size_t errlen)
{
    return upsert(w, vals, NULL, pre, v, out, err, errlen);
}

int gen_write_delete(struct gen_writer *w, const struct tis_value *vals, struct version v,
                     enum gen_outcome *out, char *err, size_t errlen)
{
    const struct gen *g = w->g;
    struct row_entry e;
    bool stale = false;
    pk_encode(g->sc, vals, &w->key);
    if (!key_fits(w, err, errlen))
        return *out = GEN_REFUSED, 0;
    int rc = find_current(w, v, &e, &stale);
    if (!rc && stale)
        return *out = GEN_STALE, 0;
    MDB_val k = {w->key.len, w->key.data};
    bool had = !rc && e.id;
    if (had && w->rowsums && !e.has_rh)
        rc = read_old(w, e.id);
    if (!rc && had && w->rowsums)
        sums_change(w, vals, &e, NULL);
    if (!rc && had) {
        rc = remove_doc(w, e.id);
        w->st.docs--;
    }
    /* The tombstone: a late, older insert of this row must stay out. */
    if (!rc)
        rc = row_put(w, &k, 0, v, 0, NULL);
    *out = had ? GEN_APPLIED : GEN_MISSING;
    w->full |= rc == MDB_MAP_FULL;
    return rc ? lmdb_fail(rc, "apply a delete", err, errlen) : 0;
}

/* Every document goes from pk; the versions stay (as tombstones), as
 * they would have in a table of their own: a TRUNCATE without a version
 * leaves no floor, and a replayed older event must still stay out. */
static int tombstones_only(MDB_txn *txn, MDB_dbi pk)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, pk, &cur);
    if (rc)
        return rc;
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        struct row_entry e;
        if (!row_decode(&v, &e)) {
            rc = MDB_CORRUPTED;
            break;
        }
        if (!e.id)
            continue;
        if (e.has_version) { /* its version, without id or hash */
            /* The key copied too: a value of another size moves the node,
             * and k points into its page (LMDB then re-inserts what it
             * reads there: a garbled key, out of order). */
            unsigned char b[13], key[512]; /* LMDB's keys: at most 511 bytes */
            if (k.mv_size > sizeof key) {
                rc = MDB_BAD_VALSIZE;
                break;
            }
            memcpy(b, v.mv_data, 13);
            memset(b, 0, 4);
            memcpy(key, k.mv_data, k.mv_size);
            MDB_val nk = {k.mv_size, key}, nv = {13, b};
            rc = mdb_cursor_put(cur, &nk, &nv, MDB_CURRENT);
        } else
            rc = mdb_cursor_del(cur, 0);
        if (rc)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int gen_write_truncate(struct gen_writer *w, struct version v, char *err, size_t errlen)
{
    const struct gen *g = w->g;
    int rc = mdb_drop(w->txn, g->e.docs, 0);
    if (!rc)
        rc = mdb_drop(w->txn, g->e.dead, 0);
    w->nnew = 0; /* ids the clear deletes */
    tbuf_reset(&w->news);
    if (w->dead)
        roaring_bitmap_free(w->dead);
    w->dead = NULL;
    if (!rc) /* one tree to go through */
        rc = pk_fold_all(w->txn, &g->e, &w->pk);
    if (!rc)
        rc = tombstones_only(w->txn, g->e.pk);
    rowsum_map_free(&w->sums); /* every chunk empty: the batch's changes are gone too */
    if (!rc && w->rowsums)
        rc = mdb_drop(w->txn, g->e.sums, 0);
    if (!rc && w->rowsums)
        rc = mdb_drop(w->txn, g->e.sumlog, 0);
    index_delta_reset(w->delta); /* entries of ids the clear deletes */
    if (!rc)
        rc = index_clear(w->txn, &g->e.index, w->st.last_id);
    MDB_val fk = {5, "floor"};
    if (!rc && v.domain != VER_NONE)
        rc = put_version(w->txn, g->e.meta, &fk, v);
    w->full |= rc == MDB_MAP_FULL;
    if (rc)
        return lmdb_fail(rc, "truncate", err, errlen);
    if (v.domain != VER_NONE)
        w->floor = v;
    w->st.docs = 0;
    memset(w->st.f, 0, g->sc->nfields * sizeof *w->st.f);
    return 0;
}

void gen_write_sums_correct(struct gen_writer *w, int64_t key, const struct rowsum *delta)
{
    if (w->rowsums)
        rowsum_merge(&rowsum_map_get(&w->sums, key)->s, delta);
}

/* Takes up to max stored documents of removed ids out of docs, lowest ids
 * first (neighbours share pages). */
static int purge_dead(struct gen_writer *w, uint32_t max, bool *ran)
{
    roaring_bitmap_t *ids;
    MDB_cursor *cur;
    int rc = index_idset_take(w->txn, w->g->e.dead, max, &ids);
    if (rc || !ids)
        return rc;
    *ran = true;
    if ((rc = mdb_cursor_open(w->txn, w->g->e.docs, &cur)) == 0) {
        roaring_uint32_iterator_t it;
        for (roaring_init_iterator(ids, &it); !rc && it.has_value;
             roaring_advance_uint32_iterator(&it)) {
            uint32_t id = it.current_value;
            MDB_val k = {4, &id}, v;
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET);
            rc = rc == 0 ? mdb_cursor_del(cur, 0) : rc == MDB_NOTFOUND ? 0 : rc;
        }
        mdb_cursor_close(cur);
    }
    roaring_bitmap_free(ids);
    return rc;
}

int gen_write_fold(struct gen_writer *w, enum index_merge_mode mode, double until, bool *ran,
                   bool *left, char *err, size_t errlen)
{
    int rc = index_fold(w->txn, &w->g->e.index, mode, until, ran, left);
    /* The documents once the postings are merged, and never far behind:
     * a catch-up's CPU goes to the stream. */
    MDB_stat st;
    if (!rc && !*ran && mode != INDEX_MERGE_BEHIND)
        rc = purge_dead(w, mode == INDEX_MERGE_ALL ? GEN_PURGE_IDS : GEN_PURGE_IDS_BUSY, ran);
    /* With the stream flowing, the log is folded a few records at a time,
     * not after every batch: the tree's leaves are then read and written
     * once for several batches, in a transaction of its own. */
    size_t logged = 0, due = mode == INDEX_MERGE_ALL ? 1 : GEN_FOLD_SUMS_BUSY;
    if (!rc && w->rowsums && mode != INDEX_MERGE_BEHIND &&
        (rc = mdb_stat(w->txn, w->g->e.sumlog, &st)) == 0)
        logged = st.ms_entries;
    if (!rc && !*ran && mode != INDEX_MERGE_BEHIND && logged >= due) {
        rc = fold_sums(w, GEN_FOLD_SUMS_RECORDS, ran);
        logged -= logged < GEN_FOLD_SUMS_RECORDS ? logged : GEN_FOLD_SUMS_RECORDS;
    }
    if (!rc && !*left && mode != INDEX_MERGE_BEHIND &&
        (rc = mdb_stat(w->txn, w->g->e.dead, &st)) == 0)
        *left = st.ms_entries > 0 || logged >= due; /* (more) purging or folding is due */
    w->full |= rc == MDB_MAP_FULL;
    return rc ? lmdb_fail(rc, "merge", err, errlen) : 0;
}

uint64_t gen_write_delta_entries(struct gen_writer *w)
{
    return index_delta_entries(w->txn, &w->g->e.index);
}

static void writer_free(struct gen_writer *w)
{
    index_delta_free(w->delta);
    if (w->dead) /* this CRoaring's free does not take NULL */
        roaring_bitmap_free(w->dead);
    gen_stats_free(&w->st);
    tbuf_free(&w->key);
    tbuf_free(&w->doc);
    tbuf_free(&w->news);
    free(w->new_at);
    tbuf_free(&w->old);
    rowsum_map_free(&w->sums);
    tbuf_free(&w->rowbuf);
    pk_writer_free(&w->pk);
    free(w->oldv);
    free(w->merged);
    free(w);
}

static int put_json_meta(MDB_txn *txn, MDB_dbi meta, const char *key, struct json_object *o)
{
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    MDB_val k = {strlen(key), (void *)key}, v = {strlen(s), (void *)s};
    return mdb_put(txn, meta, &k, &v, 0);
}

int gen_grow_ahead(struct gen *g, size_t *now)
{
    size_t used, mapped, seen;
    lmdb_map_hold(&g->e.map); /* another writer (a repair) may be growing it */
    int rc = lmdb_map_used(g->e.env, &used, &mapped);
    seen = g->e.map.size;
    lmdb_map_release(&g->e.map);
    if (rc || used <= seen / 2)
        return rc;
    rc = lmdb_map_grow(&g->e.map, seen, now);
    return rc ? rc : 1;
}

/* After a transaction that ran under map size seen found the map full and
 * ended: grows it. GEN_GREW, or -1 with err. */
static int grow(struct gen *g, size_t seen, char *err, size_t errlen)
{
    size_t now;
    int rc = lmdb_map_grow(&g->e.map, seen, &now);
    if (rc == 0) {
        snprintf(err, errlen, "the generation's map was full: it grew to %zu MiB", now >> 20);
        return GEN_GREW;
    }
    snprintf(err, errlen, "the generation's map is full (%zu MiB) and cannot grow: %s",
             seen >> 20,
             rc == MDB_MAP_FULL ? "at its largest size"
             : rc == EBUSY      ? "reads in progress did not end (a verify pass?)"
             : rc == EDEADLK    ? "this thread holds a read of it"
                                : mdb_strerror(rc));
    return -1;
}

/* A test hook (tests/test_incr.py), compiled in like catalog.c's so that
 * the tests exercise the shipped binary: TISFS_FAULT_BATCH=N makes the
 * first N commits of a channel's batches since start fail with ENOSPC, as
 * a full disk would. A full disk cannot be timed from outside to hit a
 * batch rather than the rest of the daemon's writes. */
static bool fault_batch(void)
{
    static atomic_int left = -1;
    int n = atomic_load(&left);
    if (n < 0) {
        const char *s = getenv("TISFS_FAULT_BATCH");
        int want = s ? atoi(s) : 0;
        atomic_compare_exchange_strong(&left, &n, want > 0 ? want : 0);
        n = atomic_load(&left);
    }
    while (n > 0 && !atomic_compare_exchange_weak(&left, &n, n - 1))
        ;
    return n > 0;
}

int gen_write_commit(struct gen_writer *w, struct json_object *channel, char *err, size_t errlen)
{
    struct gen *g = w->g;
    size_t nf = g->sc->nfields, seen = w->seen;
    struct tbuf live = {0};
    uint32_t n = (uint32_t)nf;
    tbuf_add(&live, &w->st.last_id, 4);
    tbuf_add(&live, &n, 4);
    tbuf_add(&live, &w->st.docs, 8);
    tbuf_add(&live, w->st.f, nf * sizeof *w->st.f);
    MDB_val k = {4, "live"}, v = {live.len, live.data};
    int rc = pk_fold_some(w->txn, &g->e, &w->pk);
    if (!rc)
        rc = put_news(w);
    if (!rc)
        rc = log_sums(w);
    if (!rc)
        rc = index_delta_flush(w->txn, &g->e.index, w->delta);
    if (!rc && w->dead)
        rc = index_idset_add(w->txn, g->e.dead, w->dead);
    if (!rc)
        rc = mdb_put(w->txn, g->e.meta, &k, &v, 0);
    if (!rc && channel)
        rc = put_json_meta(w->txn, g->e.meta, "channel", channel);
    if (!rc && channel && fault_batch())
        rc = ENOSPC;
    if (!rc)
        rc = lmdb_map_commit(&g->e.map, w->txn);
    else
        lmdb_map_end(&g->e.map, w->txn);
    bool full = w->full || rc == MDB_MAP_FULL;
    tbuf_free(&live);
    writer_free(w);
    if (full) /* the transaction is gone, and with it this thread's hold */
        return grow(g, seen, err, errlen);
    return rc ? lmdb_fail(rc, "commit a batch", err, errlen) : 0;
}

int gen_write_abort(struct gen_writer *w)
{
    if (!w)
        return 0;
    struct gen *g = w->g;
    size_t seen = w->seen;
    bool full = w->full;
    char err[256];
    lmdb_map_end(&g->e.map, w->txn);
    writer_free(w);
    return full && grow(g, seen, err, sizeof err) == GEN_GREW ? GEN_GREW : 0;
}

struct json_object *gen_channel_state(struct gen *g)
{
    MDB_txn *txn;
    if (gen_txn_begin(g, &txn))
        return NULL;
    struct json_object *o = meta_get(g, txn, "channel");
    gen_txn_end(g, txn);
    return o;
}

int gen_set_channel_state(struct gen *g, struct json_object *channel, char *err, size_t errlen)
{
    MDB_txn *txn;
    size_t seen;
    int rc;
    do {
        rc = lmdb_map_begin(&g->e.map, 0, &txn, &seen);
        if (rc)
            break;
        rc = put_json_meta(txn, g->e.meta, "channel", channel);
        if (!rc)
            rc = lmdb_map_commit(&g->e.map, txn);
        else
            lmdb_map_end(&g->e.map, txn);
    } while (rc == MDB_MAP_FULL && grow(g, seen, err, errlen) == GEN_GREW);
    if (rc == MDB_MAP_FULL)
        return -1; /* grow said why */
    if (!rc)
        rc = mdb_env_sync(g->e.env, 1);
    return rc ? lmdb_fail(rc, "store the channel's positions", err, errlen) : 0;
}

/* No hold of the map: without MDB_WRITEMAP, LMDB's sync is an fdatasync of
 * the file, which a remap does not disturb, and a grower must not wait for
 * a disk flush. */
void gen_sync(struct gen *g)
{
    mdb_env_sync(g->e.env, 1);
}

void gen_release_pages(struct gen *g)
{
    lmdb_map_release_pages(&g->e.map);
}

bool gen_faults_exact(struct gen *g)
{
    return lmdb_map_faults_exact(&g->e.map);
}
