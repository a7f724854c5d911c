/* gen_pk — a generation's primary key map in two trees: pk, and pkrecent
 * for the stream's changes of keys pk already holds (see gen_internal.h).
 *
 * Why two: a stream's updates and deletes land on random keys, and in one
 * tree each rewrites a 4 KB leaf of its own (copy on write): at 600 000
 * rows a 1M-event catch-up wrote ~1.4 KB of pk leaves an event, two thirds
 * of all it wrote, and every rewritten leaf moved, to be faulted in again
 * at its next read. pkrecent stays small (a few hundred leaves, all of
 * them hot) and is folded into pk a key range at a time: each fold
 * rewrites a leaf of pk once for every key of that range changed since the
 * last, not once a key. New keys above pk's last go to pk directly, as
 * appends. Everything is in the batch's own transaction: an abort or a
 * crash leaves both trees as the last commit did. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "gen_internal.h"

int pk_get(MDB_txn *txn, const struct gen_env *e, const MDB_val *k, MDB_val *v,
           enum pk_where *where)
{
    MDB_val key = *k;
    int rc = e->has_recent ? mdb_get(txn, e->pkrecent, &key, v) : MDB_NOTFOUND;
    if (rc == 0) {
        *where = PK_IN_RECENT;
        return 0;
    }
    if (rc != MDB_NOTFOUND)
        return rc;
    key = *k;
    rc = mdb_get(txn, e->pk, &key, v);
    *where = rc == 0 ? PK_IN_MAIN : PK_ABSENT;
    return rc;
}

/* ---- the writers' filter of pkrecent's keys ----
 * A stream's updates and deletes look up random keys, nearly all of them
 * absent from pkrecent: its walk down (pages the batch keeps copying, each
 * looked up in the transaction's dirty list first) was two thirds of the
 * pk lookups' time. The filter holds the hash of every key pkrecent has,
 * and more: keys are added as they are put, never taken out, so neither a
 * fold nor an aborted transaction can leave a key out. A write transaction
 * trusts it only when meta "pkrecent_by" holds the filter's id, which a
 * transaction that adds keys to pkrecent writes (0 without a filter): a
 * commit by any other writer, of this process or another, makes the next
 * transaction read pkrecent's keys again. So does the filter's growing
 * past twice the keys pkrecent keeps. */
struct pk_filter {
    uint64_t id;
    uint64_t *h; /* key hashes, never 0 (0: empty) */
    size_t cap, n;
    bool stale;  /* a fill failed: read the keys again */
};

static const MDB_val filter_key = {11, "pkrecent_by"};

static uint64_t filter_hash(const MDB_val *k)
{
    uint64_t h = hash64(k->mv_data, k->mv_size);
    return h ? h : 1;
}

/* Puts hash h into table t; whether it was not there yet. */
static bool filter_insert(uint64_t *t, size_t cap, uint64_t h)
{
    size_t i = h & (cap - 1);
    while (t[i] && t[i] != h)
        i = (i + 1) & (cap - 1);
    bool added = !t[i];
    t[i] = h;
    return added;
}

static void filter_add(struct pk_filter *f, const MDB_val *k)
{
    if ((f->n + 1) * 2 > f->cap) { /* (filter_new made the first table) */
        size_t cap = f->cap * 2;
        uint64_t *t = xcalloc(cap, sizeof *t);
        for (size_t i = 0; i < f->cap; i++)
            if (f->h[i])
                filter_insert(t, cap, f->h[i]);
        free(f->h);
        f->h = t, f->cap = cap;
    }
    f->n += filter_insert(f->h, f->cap, filter_hash(k));
}

static bool filter_may_have(const struct pk_filter *f, const MDB_val *k)
{
    uint64_t h = filter_hash(k);
    for (size_t i = h & (f->cap - 1); f->h[i]; i = (i + 1) & (f->cap - 1))
        if (f->h[i] == h)
            return true;
    return false;
}

static struct pk_filter *filter_new(void)
{
    struct pk_filter *f = xcalloc(1, sizeof *f);
    if (getrandom(&f->id, sizeof f->id, 0) != sizeof f->id)
        f->id = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)f;
    f->id |= 1; /* (0 names no filter) */
    f->cap = 4096;
    f->h = xcalloc(f->cap, sizeof *f->h);
    return f;
}

void pk_filter_free(struct pk_filter *f)
{
    if (f)
        free(f->h);
    free(f);
}

/* pkrecent's keys into f, anew. */
static int filter_fill(MDB_txn *txn, const struct gen_env *e, struct pk_filter *f)
{
    MDB_cursor *cur;
    MDB_val k, v;
    memset(f->h, 0, f->cap * sizeof *f->h);
    f->n = 0;
    f->stale = true;
    int rc = mdb_cursor_open(txn, e->pkrecent, &cur);
    if (rc)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        filter_add(f, &k);
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return rc;
    f->stale = false;
    return 0;
}

/* Whether the filter can be trusted in this transaction, made so if not. */
static bool filter_ready(MDB_txn *txn, const struct gen_env *e, struct pk_writer *pw)
{
    struct pk_filter *f = e->filter;
    MDB_val v;
    pw->claimed = mdb_get(txn, e->meta, (MDB_val *)&filter_key, &v) == 0 && v.mv_size == 8 &&
                  memcmp(v.mv_data, &f->id, 8) == 0;
    if (pw->claimed && !f->stale && f->n <= 2 * pw->keep + 1024)
        return true;
    return filter_fill(txn, e, f) == 0;
}

/* Names this transaction's filter (or none) as the one pkrecent's keys are
 * in, before it adds one. */
static int claim(MDB_txn *txn, const struct gen_env *e, struct pk_writer *pw)
{
    if (pw->claimed)
        return 0;
    uint64_t id = pw->filtered ? e->filter->id : 0;
    MDB_val v = {8, &id};
    int rc = mdb_put(txn, e->meta, (MDB_val *)&filter_key, &v, 0);
    pw->claimed = rc == 0;
    return rc;
}

/* A tree's last key, looked up once a transaction. */
static int last_known(MDB_txn *txn, MDB_dbi dbi, struct pk_last *l)
{
    if (l->state)
        return 0;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == 0) {
        tbuf_reset(&l->key);
        tbuf_add(&l->key, k.mv_data, k.mv_size);
        l->state = PK_LAST_KNOWN;
    } else if (rc == MDB_NOTFOUND) {
        l->state = PK_LAST_EMPTY;
        rc = 0;
    }
    mdb_cursor_close(cur);
    return rc;
}

/* Whether k is above l's key in pk's order (a tree without one: yes). A
 * key once known may be above the tree's last since (a TRUNCATE took
 * entries out), never below it, which is all the callers need: a fold,
 * which moves pkrecent's keys into pk, forgets what it knew (forget_lasts). */
static bool above(MDB_txn *txn, const struct gen_env *e, const struct pk_last *l,
                  const MDB_val *k)
{
    MDB_val last = {l->key.len, l->key.data};
    return l->state == PK_LAST_EMPTY || mdb_cmp(txn, e->pk, k, &last) > 0;
}

static void raise_last(MDB_txn *txn, const struct gen_env *e, struct pk_last *l,
                       const MDB_val *k)
{
    if (l->state && !above(txn, e, l, k))
        return;
    tbuf_reset(&l->key);
    tbuf_add(&l->key, k->mv_data, k->mv_size);
    l->state = PK_LAST_KNOWN;
}

int pk_find(MDB_txn *txn, const struct gen_env *e, struct pk_writer *pw, const MDB_val *k,
            MDB_val *v, enum pk_where *where)
{
    /* A key above both trees' last (a new row of a growing table, most
     * inserts) is in neither: no tree to walk down. */
    int rc = last_known(txn, e->pk, &pw->main);
    if (!rc && e->has_recent)
        rc = last_known(txn, e->pkrecent, &pw->recent);
    if (rc)
        return rc;
    if (above(txn, e, &pw->main, k) && (!e->has_recent || above(txn, e, &pw->recent, k))) {
        *where = PK_ABSENT;
        return MDB_NOTFOUND;
    }
    if (pw->filtered && !filter_may_have(e->filter, k)) {
        MDB_val key = *k;
        rc = mdb_get(txn, e->pk, &key, v);
        *where = rc == 0 ? PK_IN_MAIN : PK_ABSENT;
        return rc;
    }
    return pk_get(txn, e, k, v, where);
}

/* PK_RECENT_KEEP, or TISFS_PK_RECENT_KEEP (tests fold a few entries at a
 * time; 0: pk alone). */
static size_t recent_keep(void)
{
    const char *s = getenv("TISFS_PK_RECENT_KEEP");
    return s && *s ? strtoull(s, NULL, 10) : PK_RECENT_KEEP;
}

void pk_writer_begin(MDB_txn *txn, const struct gen_env *e, struct pk_writer *pw)
{
    MDB_stat st;
    pw->main.state = pw->recent.state = PK_LAST_UNKNOWN;
    pw->keep = recent_keep();
    pw->filtered = pw->claimed = false;
    if (e->has_recent) {
        if (!e->filter) /* (the writer's own: gen_env is const to everyone else) */
            ((struct gen_env *)e)->filter = filter_new();
        pw->filtered = filter_ready(txn, e, pw);
    }
    /* A large table gains little: a fold rewrites nearly as many of its
     * leaves as the changes would have (see PK_RECENT_MAX_LEAVES). */
    pw->route = e->has_recent && pw->keep && mdb_stat(txn, e->pk, &st) == 0 &&
                st.ms_leaf_pages <= PK_RECENT_MAX_LEAVES;
}

void pk_writer_free(struct pk_writer *pw)
{
    tbuf_free(&pw->main.key);
    tbuf_free(&pw->recent.key);
}

/* After a fold: pk's last key may have risen (a key of pkrecent's above
 * it, put there after a TRUNCATE took pk's last), and an append below it
 * fails (MDB_KEYEXIST). */
static void forget_lasts(struct pk_writer *pw)
{
    pw->main.state = pw->recent.state = PK_LAST_UNKNOWN;
}

int pk_fold_some(MDB_txn *txn, const struct gen_env *e, struct pk_writer *pw)
{
    forget_lasts(pw);
    return pk_fold(txn, e, pw->route ? pw->keep : 0, pw->keep / 2 + 1);
}

int pk_put(MDB_txn *txn, const struct gen_env *e, struct pk_writer *pw, const MDB_val *k,
           const MDB_val *v, enum pk_where where)
{
    MDB_val key = *k, val = *v;
    int rc = last_known(txn, e->pk, &pw->main);
    if (rc)
        return rc;
    bool append = where == PK_ABSENT && above(txn, e, &pw->main, k);
    if (append) {
        /* Above every key: an append, which also leaves pk's leaves full
         * (a plain put splits them in halves). */
        rc = mdb_put(txn, e->pk, &key, &val, MDB_APPEND);
        if (rc == 0)
            raise_last(txn, e, &pw->main, k);
        return rc;
    }
    /* A key pkrecent has, or one among pk's: a random leaf of pk. */
    if (where == PK_IN_RECENT || pw->route) {
        if ((rc = claim(txn, e, pw)) != 0)
            return rc;
        if (pw->filtered)
            filter_add(e->filter, k);
        if ((rc = mdb_put(txn, e->pkrecent, &key, &val, 0)) == 0 && pw->recent.state)
            raise_last(txn, e, &pw->recent, k);
        return rc;
    }
    return mdb_put(txn, e->pk, &key, &val, 0);
}

/* Moves the entry under cur from pkrecent into pk (through main, a cursor
 * of pk's: the keys of a fold ascend, and a put that lands on the leaf the
 * last one did searches that leaf alone, not the tree from its root), and
 * deletes it there. */
static int fold_one(MDB_cursor *main, MDB_cursor *cur, const MDB_val *k, const MDB_val *v)
{
    MDB_val key = *k, val = *v;
    int rc = mdb_cursor_put(main, &key, &val, 0);
    return rc ? rc : mdb_cursor_del(cur, 0);
}

int pk_fold(MDB_txn *txn, const struct gen_env *e, size_t keep, size_t max)
{
    MDB_stat st;
    MDB_cursor *cur;
    MDB_val k, v, sk = {8, "pk_sweep"}, at;
    if (!e->has_recent)
        return 0;
    int rc = mdb_stat(txn, e->pkrecent, &st);
    if (rc || st.ms_entries <= keep)
        return rc;
    size_t n = st.ms_entries - keep, done = 0;
    if (n > max)
        n = max;
    MDB_cursor *main;
    if ((rc = mdb_cursor_open(txn, e->pk, &main)) != 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, e->pkrecent, &cur)) != 0) {
        mdb_cursor_close(main);
        return rc;
    }
    /* A sweep over the key space, where the last fold stopped (meta
     * "pk_sweep", the key after its last): each fold takes the next range. */
    struct tbuf last = {0};
    bool from_start = mdb_get(txn, e->meta, &sk, &at) != 0;
    if (!from_start) {
        tbuf_add(&last, at.mv_data, at.mv_size); /* (the meta page may move) */
        k = (MDB_val){last.len, last.data};
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    } else
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    for (bool wrapped = from_start; done < n;) {
        if (rc == MDB_NOTFOUND && !wrapped) { /* the end: on from the start */
            wrapped = true;
            rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
            continue;
        }
        if (rc)
            break;
        tbuf_reset(&last);
        tbuf_add(&last, k.mv_data, k.mv_size);
        if ((rc = fold_one(main, cur, &k, &v)) != 0)
            break;
        done++;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    mdb_cursor_close(main);
    if (rc == MDB_NOTFOUND || rc == 0) {
        /* The next fold starts after the last key folded (SET_RANGE finds
         * the one after it, since it is gone). */
        MDB_val lv = {last.len, last.data};
        rc = done ? mdb_put(txn, e->meta, &sk, &lv, 0) : 0;
    }
    tbuf_free(&last);
    return rc;
}

int pk_fold_all(MDB_txn *txn, const struct gen_env *e, struct pk_writer *pw)
{
    forget_lasts(pw);
    return pk_fold(txn, e, 0, SIZE_MAX);
}

int pk_ids_in_range(MDB_txn *txn, const struct gen_env *e, const MDB_val *from,
                    const MDB_val *to, roaring_bitmap_t *ids)
{
    MDB_cursor *cm, *cr = NULL;
    MDB_val km = *from, vm, kr = *from, vr;
    int rc = mdb_cursor_open(txn, e->pk, &cm);
    if (rc)
        return rc;
    if (e->has_recent && (rc = mdb_cursor_open(txn, e->pkrecent, &cr)) != 0) {
        mdb_cursor_close(cm);
        return rc;
    }
    int rm = mdb_cursor_get(cm, &km, &vm, MDB_SET_RANGE);
    int rr = cr ? mdb_cursor_get(cr, &kr, &vr, MDB_SET_RANGE) : MDB_NOTFOUND;
    /* Both trees in key order; a key in both: pkrecent's entry is the one. */
    for (;;) {
        bool mok = rm == 0 && mdb_cmp(txn, e->pk, &km, to) <= 0,
             rok = rr == 0 && mdb_cmp(txn, e->pk, &kr, to) <= 0;
        if ((rm && rm != MDB_NOTFOUND) || (rr && rr != MDB_NOTFOUND)) {
            rc = rm && rm != MDB_NOTFOUND ? rm : rr;
            break;
        }
        if (!mok && !rok)
            break;
        int c = !mok ? 1 : !rok ? -1 : mdb_cmp(txn, e->pk, &km, &kr);
        const MDB_val *v = c < 0 ? &vm : &vr;
        uint32_t id;
        if (v->mv_size < 4) {
            rc = MDB_CORRUPTED;
            break;
        }
        memcpy(&id, v->mv_data, 4);
        if (id)
            roaring_bitmap_add(ids, id);
        if (c <= 0)
            rm = mdb_cursor_get(cm, &km, &vm, MDB_NEXT);
        if (c >= 0)
            rr = mdb_cursor_get(cr, &kr, &vr, MDB_NEXT);
    }
    mdb_cursor_close(cm);
    if (cr)
        mdb_cursor_close(cr);
    return rc;
}
