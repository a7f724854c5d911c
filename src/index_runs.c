/* index_runs — reading the sorted run files of a bulk build back: a heap
 * over the runs by key, equal keys taken in run order (document order),
 * each term's posting encoded once and written with MDB_APPEND. The run
 * format is spill's in index_build.c: per term, varint key length, key,
 * varint n, n varint id gaps, n tf bytes, varint positions length, the
 * positions blobs. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index_internal.h"
#include "tisfs/lmdb_map.h"

/* A write transaction holds its dirty pages in memory until it commits:
 * commit after this many bytes so that a few huge postings (a word in every
 * document) cannot pile up hundreds of megabytes. */
#define COMMIT_BYTES ((size_t)16 << 20)

struct run {
    FILE *f;
    bool live;
    struct tbuf key;
    uint32_t n;
};

static uint64_t fget_varint(FILE *f, bool *ok)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        int c = getc_unlocked(f);
        if (c == EOF) {
            *ok = false;
            return 0;
        }
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    *ok = false;
    return 0;
}

static void run_next(struct run *r)
{
    bool ok = true;
    uint64_t klen = fget_varint(r->f, &ok);
    if (!ok || klen > 1024) {
        r->live = false;
        return;
    }
    tbuf_reset(&r->key);
    tbuf_reserve(&r->key, klen);
    r->key.len = fread_unlocked(r->key.data, 1, klen, r->f);
    r->n = (uint32_t)fget_varint(r->f, &ok);
    r->live = ok && r->key.len == klen;
}

struct merged {
    uint32_t *docs;
    uint8_t *tf;
    size_t n, cap;
    struct tbuf pos; /* the documents' positions blobs, end to end */
};

static void run_take(struct run *r, struct merged *m)
{
    bool ok = true;
    if (m->n + r->n > m->cap) {
        m->cap = (m->n + r->n) * 2;
        m->docs = xrealloc(m->docs, m->cap * sizeof *m->docs);
        m->tf = xrealloc(m->tf, m->cap);
    }
    uint32_t prev = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        prev += (uint32_t)fget_varint(r->f, &ok);
        m->docs[m->n + i] = prev;
    }
    if (fread_unlocked(m->tf + m->n, 1, r->n, r->f) != r->n)
        ok = false;
    uint64_t plen = fget_varint(r->f, &ok);
    if (ok && plen <= ((uint64_t)1 << 32)) {
        tbuf_reserve(&m->pos, plen);
        ok = fread_unlocked(m->pos.data + m->pos.len, 1, plen, r->f) == plen;
        m->pos.len += ok ? plen : 0;
    } else
        ok = false;
    m->n += r->n;
    if (ok)
        run_next(r);
    else
        r->live = false;
}

int index_txn_renew(MDB_env *env, MDB_txn **txn)
{
    int rc = mdb_txn_commit(*txn);
    *txn = NULL;
    if (!rc) /* a build's map grows between its transactions */
        rc = lmdb_map_room(env);
    return rc ? rc : mdb_txn_begin(env, NULL, 0, txn);
}

void index_run_path(const char *tmpdir, int i, char *buf, size_t len)
{
    snprintf(buf, len, "%s/run-%d.tmp", tmpdir, i);
}

/* Runs by (current key, run index) for their heap: equal keys come out in
 * run order, which is document order. */
static bool run_before(const void *ctx, size_t a, size_t b)
{
    const struct run *runs = ctx;
    int c = cmp_keys(runs[a].key.data, runs[a].key.len, runs[b].key.data, runs[b].key.len);
    return c < 0 || (c == 0 && a < b);
}

int index_runs_merge(const char *tmpdir, int nruns, const atomic_bool *cancel, MDB_env *env,
                     const struct index_dbs *d, MDB_txn **txn)
{
    struct run *runs = xcalloc((size_t)nruns + 1, sizeof *runs);
    struct merged m = {0};
    struct tbuf val = {0}, key = {0};
    int rc = 0;
    char path[4096];
    for (int i = 0; i < nruns; i++) {
        index_run_path(tmpdir, i, path, sizeof path);
        if ((runs[i].f = fopen(path, "rb"))) {
            setvbuf(runs[i].f, NULL, _IOFBF, 1 << 18);
            run_next(&runs[i]);
        }
    }
    struct input_heap q = {xcalloc((size_t)nruns + 1, sizeof *q.h), 0, run_before, runs};
    for (int i = 0; i < nruns; i++)
        if (runs[i].live)
            q.h[q.n++] = (size_t)i;
    input_heap_build(&q);
    for (size_t pending = 0; !rc && q.n;) {
        /* Runs hold increasing document ranges: taking equal keys in run
         * order concatenates postings in document order. */
        tbuf_reset(&key);
        tbuf_add(&key, runs[q.h[0]].key.data, runs[q.h[0]].key.len);
        m.n = 0;
        tbuf_reset(&m.pos);
        while (q.n && cmp_keys(runs[q.h[0]].key.data, runs[q.h[0]].key.len, key.data,
                               key.len) == 0) {
            struct run *r = &runs[q.h[0]];
            run_take(r, &m); /* and on to its next key */
            input_heap_top_moved(&q, r->live);
        }
        posting_encode(m.docs, m.tf, (uint32_t)m.n, (const unsigned char *)m.pos.data, m.pos.len,
                       &val);
        MDB_val k = {key.len, key.data}, v = {val.len, val.data};
        rc = mdb_put(*txn, d->terms, &k, &v, MDB_APPEND);
        if (!rc && cancel && atomic_load(cancel))
            rc = ECANCELED; /* a merge of millions of terms must not delay rm -r */
        pending += key.len + val.len + 16;
        if (!rc && pending >= COMMIT_BYTES) {
            rc = index_txn_renew(env, txn);
            pending = 0;
        }
    }
    free(q.h);
    for (int i = 0; i < nruns; i++) {
        if (runs[i].f)
            fclose(runs[i].f);
        tbuf_free(&runs[i].key);
        index_run_path(tmpdir, i, path, sizeof path);
        unlink(path);
    }
    free(runs);
    free(m.docs);
    free(m.tf);
    tbuf_free(&m.pos);
    tbuf_free(&val);
    tbuf_free(&key);
    return rc;
}
