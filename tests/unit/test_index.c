/* Unit tests for the index (src/index.c): typed term order, the bulk build
 * through runs (a tiny memory budget forces many spills), reading, and the
 * live-change functions and the merge, checked against a fresh build of the
 * changed rows through everything a reader sees. */
#define _GNU_SOURCE
#include "tisfs/index.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "tisfs/util.h"
#include "../../src/index_internal.h" /* (the gather's own test reads a sealed group) */

static struct tis_schema *schema(void)
{
    const char *js = "{\"fields\":["
                     "{\"name\":\"id\",\"type\":\"int\",\"token\":\"string\",\"search\":true,\"store\":true,\"pk\":true},"
                     "{\"name\":\"t\",\"type\":\"string\",\"token\":\"ik\",\"search\":true,\"store\":true},"
                     "{\"name\":\"n\",\"type\":\"int\",\"token\":null,\"search\":true,\"store\":true},"
                     "{\"name\":\"g\",\"type\":\"string\",\"token\":\"like\",\"search\":true,\"store\":true}],"
                     "\"primaryKey\":[\"id\"]}";
    struct json_object *o = json_tokener_parse(js);
    struct tis_schema *s = schema_from_json(o);
    json_object_put(o);
    return s;
}

struct row {
    const char *id, *t, *n, *g;
};

static void values(const struct row *r, struct tis_value *v)
{
    const char *f[4] = {r->id, r->t, r->n, r->g};
    for (int i = 0; i < 4; i++)
        v[i] = (struct tis_value){f[i], f[i] ? strlen(f[i]) : 0, f[i] == NULL};
}

struct env {
    char dir[64];
    MDB_env *env;
    struct index_dbs d;
};

static void env_open(struct env *e)
{
    strcpy(e->dir, "/tmp/tisfs-test-index-XXXXXX");
    CHECK(mkdtemp(e->dir) != NULL);
    MDB_txn *txn;
    mdb_env_create(&e->env);
    mdb_env_set_maxdbs(e->env, 16);
    mdb_env_set_mapsize(e->env, 1 << 26);
    CHECK(mdb_env_open(e->env, e->dir, MDB_NOSYNC, 0600) == 0);
    mdb_txn_begin(e->env, NULL, 0, &txn);
    CHECK(index_open_dbs(txn, true, &e->d) == 0);
    mdb_txn_commit(txn);
}

static void env_close(struct env *e)
{
    mdb_env_close(e->env);
    rm_rf(e->dir);
}

static void build(struct env *e, const struct row *rows, size_t n, size_t budget)
{
    char err[256];
    struct tis_schema *sc = schema();
    struct analysis_opts o = {0, 0};
    struct index_builder *b = index_builder_new(sc, &o, e->dir, budget, err, sizeof err);
    struct tis_value v[4];
    for (size_t i = 0; i < n; i++) {
        values(&rows[i], v);
        index_builder_add(b, (uint32_t)i + 1, v);
    }
    struct json_object *stats = NULL;
    CHECK(index_builder_finish(b, e->env, &e->d, &stats, err, sizeof err) == 0);
    json_object_put(stats);
    index_builder_free(b);
    schema_free(sc);
}

/* All key/value pairs of one database, concatenated. Bitmap values (the
 * exists database) are compared by content: CRoaring may pick another
 * container layout for the same set after in-place changes. */
static void dump_db(struct env *e, MDB_dbi dbi, bool bitmaps, struct tbuf *out)
{
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, v;
    mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn);
    mdb_cursor_open(txn, dbi, &c);
    for (int op = MDB_FIRST; mdb_cursor_get(c, &k, &v, op) == 0; op = MDB_NEXT) {
        tbuf_add_varint(out, k.mv_size);
        tbuf_add(out, k.mv_data, k.mv_size);
        if (bitmaps) {
            roaring_bitmap_t *r = roaring_bitmap_portable_deserialize_safe(v.mv_data, v.mv_size);
            uint64_t n = roaring_bitmap_get_cardinality(r);
            uint32_t *ids = calloc(n + 1, 4);
            roaring_bitmap_to_uint32_array(r, ids);
            tbuf_add(out, ids, n * 4);
            free(ids);
            roaring_bitmap_free(r);
            continue;
        }
        tbuf_add_varint(out, v.mv_size);
        tbuf_add(out, v.mv_data, v.mv_size);
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
}

static bool same_index(struct env *a, struct env *b)
{
    bool same = true;
    MDB_dbi dbs[3][2] = {{a->d.terms, b->d.terms}, {a->d.norms, b->d.norms},
                         {a->d.exists, b->d.exists}};
    for (int i = 0; i < 3; i++) {
        struct tbuf x = {0}, y = {0};
        dump_db(a, dbs[i][0], i == 2, &x);
        dump_db(b, dbs[i][1], i == 2, &y);
        if (x.len != y.len || memcmp(x.data, y.data, x.len) != 0) {
            printf("    database %d differs (%zu vs %zu bytes)\n", i, x.len, y.len);
            same = false;
        }
        tbuf_free(&x);
        tbuf_free(&y);
    }
    return same;
}

/* What a reader sees of an index, with document ids renamed by map (an
 * index's id -> the row number both sides agree on; 0 = not a live row):
 * every term with its live rows and tf, then each live row's norms and the
 * exists sets. Two indexes that give the same text answer every query the
 * same. */
struct view {
    struct tbuf *out;
    const uint32_t *map;
    size_t nmap;
    roaring_bitmap_t *deleted;
    MDB_txn *txn;
    const struct index_dbs *d;
    uint8_t field;
};

static int view_term(void *arg, const unsigned char *t, size_t len, const struct posting *p)
{
    struct view *v = arg;
    roaring_bitmap_t *live = posting_live(p, v->deleted);
    uint32_t rows[64] = {0}; /* tf by row number */
    struct tbuf pos[64] = {{0}};
    struct term_positions tp;
    uint32_t *buf = NULL;
    size_t cap = 0;
    CHECK(term_positions_init(&tp, v->field, t, len, p) == 0);
    roaring_uint32_iterator_t it;
    roaring_init_iterator(live, &it);
    for (; it.has_value; roaring_advance_uint32_iterator(&it))
        if (it.current_value < v->nmap && v->map[it.current_value]) {
            uint32_t r = v->map[it.current_value];
            rows[r] = posting_tf(p, it.current_value);
            size_t n = term_positions_of(v->txn, v->d, &tp, it.current_value, &buf, &cap);
            for (size_t i = 0; i < n; i++)
                tbuf_printf(&pos[r], "%s%u", i ? "," : "@", buf[i]);
        }
    free(buf);
    roaring_bitmap_free(live);
    struct tbuf line = {0};
    for (int r = 1; r < 64; r++) {
        if (rows[r])
            tbuf_printf(&line, " %d*%u%s", r, rows[r], pos[r].len ? pos[r].data : "@none");
        tbuf_free(&pos[r]);
    }
    if (line.len) /* a term of deleted documents only is no term to a reader */
        tbuf_printf(v->out, "%.*s:%s\n", (int)len, (const char *)t, line.data);
    tbuf_free(&line);
    return 0;
}

/* The deleted set, which must read. */
static roaring_bitmap_t *deleted_of(MDB_txn *txn, const struct index_dbs *d)
{
    roaring_bitmap_t *r = NULL;
    CHECK(index_deleted(txn, d, &r) == 0 && r);
    return r ? r : roaring_bitmap_create();
}

static void view(struct env *e, const uint32_t *map, size_t nmap, struct tbuf *out)
{
    MDB_txn *txn;
    mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn);
    struct view v = {out, map, nmap, deleted_of(txn, &e->d), txn, &e->d, 0};
    for (uint8_t f = 0; f < 4; f++) {
        v.field = f;
        tbuf_printf(out, "field %u\n", f);
        index_terms_between(txn, &e->d, f, NULL, 0, true, NULL, 0, true, view_term, &v);
        roaring_bitmap_t *ex = index_exists(txn, &e->d, f);
        roaring_bitmap_andnot_inplace(ex, v.deleted);
        tbuf_adds(out, "exists:");
        for (uint32_t r = 1; r < 64; r++)
            for (uint32_t id = 1; id < nmap; id++)
                if (map[id] == r && roaring_bitmap_contains(ex, id))
                    tbuf_printf(out, " %u", r);
        tbuf_adds(out, "\n");
        roaring_bitmap_free(ex);
    }
    for (uint32_t r = 1; r < 64; r++)
        for (uint32_t id = 1; id < nmap; id++)
            if (map[id] == r)
                for (uint8_t f = 0; f < 4; f++)
                    tbuf_printf(out, "len %u.%u=%u\n", r, f, index_field_len(txn, &e->d, id, f));
    roaring_bitmap_free(v.deleted);
    mdb_txn_abort(txn);
}

static bool same_view(struct env *a, const uint32_t *amap, size_t an, struct env *b,
                      const uint32_t *bmap, size_t bn)
{
    struct tbuf x = {0}, y = {0};
    view(a, amap, an, &x);
    view(b, bmap, bn, &y);
    bool same = x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
    if (!same)
        printf("    live view:\n%s    rebuild:\n%s", x.data, y.data);
    tbuf_free(&x);
    tbuf_free(&y);
    return same;
}

/* The positions of term in doc as "p1,p2,..." ("" when none). */
static const char *positions(MDB_txn *txn, struct env *e, uint8_t f, const char *term,
                             uint32_t doc)
{
    static char out[256];
    struct posting p;
    struct term_positions tp;
    uint32_t *buf = NULL;
    size_t cap = 0, n = 0;
    out[0] = 0;
    if (index_term(txn, &e->d, f, term, strlen(term), &p) != 0)
        return out;
    if (term_positions_init(&tp, f, term, strlen(term), &p) == 0)
        n = term_positions_of(txn, &e->d, &tp, doc, &buf, &cap);
    for (size_t i = 0, at = 0; i < n && at < sizeof out - 12; i++)
        at += (size_t)snprintf(out + at, sizeof out - at, "%s%u", i ? "," : "", buf[i]);
    free(buf);
    posting_free(&p);
    return out;
}

/* Runs the merge (everything into the base, or only the tiers of
 * segments), a term a transaction with by_term, until nothing is due; false
 * if it never ends. */
static bool merge_until_done(struct env *e, enum index_merge_mode mode, bool by_term)
{
    bool left = true, ran;
    MDB_txn *txn;
    for (int round = 0; left && round < 100000; round++) {
        mdb_txn_begin(e->env, NULL, 0, &txn);
        CHECK(index_fold(txn, &e->d, mode, by_term ? 0 : mono_now() + 60, &ran, &left) == 0);
        CHECK(mdb_txn_commit(txn) == 0);
    }
    return !left;
}

static bool fold_all(struct env *e, bool by_term)
{
    return merge_until_done(e, INDEX_MERGE_ALL, by_term);
}

static size_t segments(struct env *e)
{
    MDB_txn *txn;
    mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn);
    size_t n = index_segments(txn, &e->d);
    mdb_txn_abort(txn);
    return n;
}

static const struct row BASE[] = {
    {"1", "apple banana apple", "10", "Alpha"},
    {"2", "北京 天安门", "-5", "Beta"},
    {"3", "cherry", NULL, "Gamma"},
    {"4", NULL, "7", NULL},
};

/* Live changes never touch the bulk-built postings: an update is the old id
 * deleted and the row added under a new id. What a reader sees must equal a
 * fresh build of the changed rows, before and after the merge. */
static void test_incremental_equals_rebuild(void)
{
    char err[256];
    struct env inc, fresh;
    env_open(&inc);
    env_open(&fresh);
    build(&inc, BASE, 4, 0);
    /* Update row 2, delete row 3's text, insert row 5. */
    struct row changed[5] = {BASE[0], {"2", "apple 北京", "8", "Delta"}, {"3", NULL, NULL, "Gamma"},
                             BASE[3], {"5", "banana split", "10", "Epsilon"}};
    build(&fresh, changed, 5, 0);

    struct tis_schema *sc = schema();
    struct analyzer *an = analyzer_new(err, sizeof err);
    struct analysis_opts o = {0, 0};
    struct field_totals totals[4] = {{0, 0}};
    struct index_delta *batch = index_delta_new();
    struct tis_value old[4], new[4];
    MDB_txn *txn;
    mdb_txn_begin(inc.env, NULL, 0, &txn);
    for (int i = 1; i <= 2; i++) { /* rows 2 and 3 move to ids 5 and 6 */
        values(&BASE[i], old);
        values(&changed[i], new);
        CHECK(index_doc_remove(txn, &inc.d, sc, (uint32_t)i + 1, totals, batch) == 0);
        CHECK(index_doc_add(txn, &inc.d, sc, an, &o, (uint32_t)i + 4, new, totals, batch) == 0);
    }
    values(&changed[4], new);
    CHECK(index_doc_add(txn, &inc.d, sc, an, &o, 7, new, totals, batch) == 0);
    /* A document added and changed again in one batch: removed before the
     * batch is written, its entries never reach the segment. */
    CHECK(index_doc_remove(txn, &inc.d, sc, 7, totals, batch) == 0);
    CHECK(index_doc_add(txn, &inc.d, sc, an, &o, 8, new, totals, batch) == 0);
    CHECK(index_delta_flush(txn, &inc.d, batch) == 0); /* the batch's entries, by term */
    CHECK(mdb_txn_commit(txn) == 0);
    index_delta_free(batch);
    const uint32_t inc_map[9] = {0, 1, 0, 0, 4, 2, 3, 0, 5}, fresh_map[6] = {0, 1, 2, 3, 4, 5};
    CHECK(same_view(&inc, inc_map, 9, &fresh, fresh_map, 6));
    CHECK(totals[1].docs == 0 && totals[1].tokens == 1); /* t: -1 doc (row 3), +1 doc (row 5) */

    /* Reading: a term's posting and tf, base and delta parts. */
    mdb_txn_begin(inc.env, NULL, MDB_RDONLY, &txn);
    struct posting p;
    roaring_bitmap_t *del = deleted_of(txn, &inc.d);
    CHECK(roaring_bitmap_get_cardinality(del) == 3); /* ids 2, 3, 7 */
    CHECK(index_term(txn, &inc.d, 1, "apple", 5, &p) == 0);
    roaring_bitmap_t *live = posting_live(&p, del);
    CHECK(roaring_bitmap_get_cardinality(live) == 2 && posting_tf(&p, 1) == 2 &&
          posting_tf(&p, 5) == 1 && posting_tf(&p, 3) == 0);
    roaring_bitmap_free(live);
    posting_free(&p);
    CHECK(index_term(txn, &inc.d, 1, "cherry", 6, &p) == 0); /* still in the base ... */
    live = posting_live(&p, del);
    CHECK(roaring_bitmap_get_cardinality(live) == 0); /* ... but deleted */
    roaring_bitmap_free(live);
    posting_free(&p);
    CHECK(index_term(txn, &inc.d, 1, "split", 5, &p) == 0 && p.delta &&
          roaring_bitmap_get_cardinality(p.delta) == 1 && posting_tf(&p, 8) == 1 &&
          !roaring_bitmap_contains(p.delta, 7));
    live = posting_live(&p, del);
    CHECK(roaring_bitmap_get_cardinality(live) == 1 && roaring_bitmap_contains(live, 8));
    roaring_bitmap_free(live);
    posting_free(&p);
    CHECK(index_term(txn, &inc.d, 1, "durian", 6, &p) == MDB_NOTFOUND);
    CHECK(index_field_len(txn, &inc.d, 1, 1) == 3);
    CHECK(index_delta_entries(txn, &inc.d) > 0);
    /* Positions: a base document's (built), an added one's (delta). */
    CHECK(strcmp(positions(txn, &inc, 1, "apple", 1), "0,2") == 0);
    CHECK(strcmp(positions(txn, &inc, 1, "banana", 1), "1") == 0);
    CHECK(strcmp(positions(txn, &inc, 1, "split", 8), "1") == 0);
    CHECK(strcmp(positions(txn, &inc, 1, "apple", 5), "0") == 0);
    CHECK(strcmp(positions(txn, &inc, 1, "apple", 2), "") == 0); /* not in the posting */
    roaring_bitmap_free(del);
    mdb_txn_abort(txn);

    /* The merge folds everything into the base; readers see no change. */
    CHECK(segments(&inc) == 1); /* the batch's */
    CHECK(fold_all(&inc, true));
    mdb_txn_begin(inc.env, NULL, MDB_RDONLY, &txn);
    CHECK(index_delta_entries(txn, &inc.d) == 0);
    CHECK(strcmp(positions(txn, &inc, 1, "apple", 1), "0,2") == 0); /* folded into the base */
    CHECK(strcmp(positions(txn, &inc, 1, "split", 8), "1") == 0);
    MDB_stat st;
    CHECK(mdb_stat(txn, inc.d.segs, &st) == 0 && st.ms_entries == 0); /* none left behind */
    CHECK(mdb_stat(txn, inc.d.seglist, &st) == 0 && st.ms_entries == 0);
    mdb_txn_abort(txn);
    CHECK(same_view(&inc, inc_map, 9, &fresh, fresh_map, 6));

    analyzer_free(an);
    schema_free(sc);
    env_close(&inc);
    env_close(&fresh);
}

/* The rows not gone (gone[id], ids from 1) into kept, in order, with the
 * maps from each side's ids to their row numbers; returns how many. */
static size_t kept_rows(const struct row *rows, int all, const bool *gone, struct row *kept,
                        uint32_t *inc_map, uint32_t *fresh_map)
{
    size_t n = 0;
    for (int i = 0; i < all; i++)
        if (!gone[i + 1]) {
            kept[n++] = rows[i];
            inc_map[i + 1] = (uint32_t)n;
            fresh_map[n] = (uint32_t)n;
        }
    return n;
}

/* A stream of small batches, each its own segment: the tiers merge them
 * INDEX_MERGE_FANIN at a time (a term a transaction, resuming from the
 * stored record), the base fold takes the rest, and a reader sees what a
 * rebuild of the surviving rows holds at every stage. */
/* A batch analysed ahead (the channel's decoding thread groups it by term
 * under ordinals) and written with documents analysed at the write: the
 * view equals a fresh build and the totals those of the same changes all
 * analysed at the write, whatever ordinals were never added (a stale
 * event), added and removed again in the batch, or share a term with a
 * document of the writer's own. Fails with ids taken for ordinals, an
 * ordinal that was never added written anyway, or the two kinds of
 * entries of one term out of id order. */
static void apply_changes(struct env *e, bool grouped, struct field_totals *totals)
{
    char err[256];
    struct tis_schema *sc = schema();
    struct analyzer *an = analyzer_new(err, sizeof err);
    struct analysis_opts o = {0, 0};
    const struct row ahead[] = {
        {"2", "apple 北京", "8", "Delta"},          /* o0: id 5 */
        {"6", "zebra apple", "1", "Stale"},         /* o1: never added */
        {"5", "banana split", "10", "Epsilon"},     /* o2: id 7 */
        {"4", "apple apple", "3", NULL},            /* o3: id 8, removed again */
        {"4", "apple pie tart", "7", NULL},         /* o4: id 9 */
    };
    const struct row mine = {"3", "apple cherry pie", NULL, "Gamma"}; /* id 6 */
    struct index_group *g = index_group_new();
    struct index_doc *x = index_doc_new(sc);
    struct tbuf packed = {0};
    size_t at[5];
    struct tis_value v[4];
    for (size_t i = 0; i < 5; i++) {
        at[i] = packed.len;
        values(&ahead[i], v);
        index_group_add(g, x, an, &o, v, &packed);
    }
    index_group_seal(g);
    struct index_delta *batch = index_delta_new();
    index_delta_attach(batch, g);
    MDB_txn *txn;
    mdb_txn_begin(e->env, NULL, 0, &txn);
#define ADD(i, id)                                                                             \
    (values(&ahead[i], v),                                                                     \
     grouped ? index_doc_add_packed(txn, &e->d, sc, packed.data + at[i], id, v, totals, batch) \
             : index_doc_add(txn, &e->d, sc, an, &o, id, v, totals, batch))
    CHECK(index_doc_remove(txn, &e->d, sc, 2, totals, batch) == 0);
    CHECK(ADD(0, 5) == 0);
    CHECK(index_doc_remove(txn, &e->d, sc, 3, totals, batch) == 0);
    values(&mine, v);
    CHECK(index_doc_add(txn, &e->d, sc, an, &o, 6, v, totals, batch) == 0);
    CHECK(ADD(2, 7) == 0);
    CHECK(index_doc_remove(txn, &e->d, sc, 4, totals, batch) == 0);
    CHECK(ADD(3, 8) == 0);
    CHECK(index_doc_remove(txn, &e->d, sc, 8, totals, batch) == 0);
    CHECK(ADD(4, 9) == 0);
#undef ADD
    if (grouped) /* an ordinal goes in once */
        CHECK(index_doc_add_packed(txn, &e->d, sc, packed.data + at[4], 10, v, totals, batch) ==
              EINVAL);
    CHECK(index_delta_flush(txn, &e->d, batch) == 0);
    CHECK(mdb_txn_commit(txn) == 0);
    index_delta_free(batch);
    index_group_free(g);
    index_doc_free(x);
    tbuf_free(&packed);
    analyzer_free(an);
    schema_free(sc);
}

static void test_group_equals_rebuild(void)
{
    struct env grouped, own, fresh;
    env_open(&grouped);
    env_open(&own);
    env_open(&fresh);
    build(&grouped, BASE, 4, 0);
    build(&own, BASE, 4, 0);
    const struct row rows[5] = {BASE[0], {"2", "apple 北京", "8", "Delta"},
                                {"3", "apple cherry pie", NULL, "Gamma"},
                                {"4", "apple pie tart", "7", NULL},
                                {"5", "banana split", "10", "Epsilon"}};
    build(&fresh, rows, 5, 0);
    struct field_totals tg[4] = {{0, 0}}, to[4] = {{0, 0}};
    apply_changes(&grouped, true, tg);
    apply_changes(&own, false, to);
    const uint32_t inc_map[10] = {0, 1, 0, 0, 0, 2, 3, 5, 0, 4},
                   fresh_map[6] = {0, 1, 2, 3, 4, 5};
    CHECK(same_view(&grouped, inc_map, 10, &fresh, fresh_map, 6));
    CHECK(same_view(&own, inc_map, 10, &fresh, fresh_map, 6));
    CHECK(memcmp(tg, to, sizeof tg) == 0);
    /* Entries of an id added and removed again are not written, either
     * way (a reader hides them, the bytes would be wasted). */
    MDB_txn *txn, *txn2;
    mdb_txn_begin(grouped.env, NULL, MDB_RDONLY, &txn);
    mdb_txn_begin(own.env, NULL, MDB_RDONLY, &txn2);
    CHECK(index_delta_entries(txn, &grouped.d) == index_delta_entries(txn2, &own.d));
    mdb_txn_abort(txn2);
    CHECK(strcmp(positions(txn, &grouped, 1, "apple", 9), "0") == 0);
    CHECK(strcmp(positions(txn, &grouped, 1, "pie", 6), "2") == 0);
    CHECK(strcmp(positions(txn, &grouped, 1, "zebra", 1), "") == 0);
    /* A removal leaves its norms block as it was (rewriting it dirtied a
     * random page a removal; the totals lose the length all the same). */
    CHECK(index_field_len(txn, &grouped.d, 3, 1) == 1); /* "cherry", removed */
    mdb_txn_abort(txn);
    CHECK(fold_all(&grouped, false)); /* and once merged into the base */
    CHECK(same_view(&grouped, inc_map, 10, &fresh, fresh_map, 6));
    env_close(&grouped);
    env_close(&own);
    env_close(&fresh);
}

/* A group is reset and filled again batch after batch (each keeps its
 * gathering arrays), and sealed by whichever thread applies it, perhaps
 * more than once (a batch retried after the map grew): the refilled group
 * must hold its own entries only and seal as a new group does, and a
 * second seal must change nothing. Fails with the old batch's lengths or
 * marks carried over, or with entries laid out twice. */
static bool groups_equal(const struct index_group *a, const struct index_group *b)
{
    if (a->ndocs != b->ndocs || a->nt != b->nt || a->blobs.len != b->blobs.len ||
        memcmp(a->blobs.data, b->blobs.data, a->blobs.len) != 0)
        return false;
    uint32_t n = a->t[a->nt].start;
    if (n != b->t[b->nt].start || memcmp(a->ord, b->ord, n * sizeof *a->ord) != 0 ||
        memcmp(a->tf, b->tf, n) != 0)
        return false;
    for (size_t k = 0; k <= a->nt; k++) {
        const struct group_term *x = &a->t[k], *y = &b->t[k];
        if (x->klen != y->klen || x->start != y->start || x->bstart != y->bstart ||
            memcmp(a->in.keys.data + x->koff, b->in.keys.data + y->koff, x->klen) != 0)
            return false;
    }
    return true;
}

static void test_group_reset_and_sealed_again(void)
{
    char err[256];
    struct tis_schema *sc = schema();
    struct analyzer *an = analyzer_new(err, sizeof err);
    struct analysis_opts o = {0, 0};
    struct index_doc *x = index_doc_new(sc);
    struct tbuf packed = {0};
    struct tis_value v[4];
    const struct row big = {"1", "a long title of many words and pies", "5", "Body"},
                     small = {"2", "apple pie", "1", NULL};
    struct index_group *fresh = index_group_new(), *g = index_group_new();
    values(&small, v);
    index_group_add(fresh, x, an, &o, v, &packed);
    index_group_seal(fresh);
    values(&big, v);
    index_group_add(g, x, an, &o, v, &packed);
    index_group_add(g, x, an, &o, v, &packed);
    index_group_seal(g);
    index_group_reset(g);
    values(&small, v);
    index_group_add(g, x, an, &o, v, &packed);
    CHECK(index_group_bytes(g) == index_group_bytes(fresh));
    index_group_seal(g);
    CHECK(groups_equal(g, fresh));
    index_group_seal(g);
    CHECK(groups_equal(g, fresh));
    index_group_free(g);
    index_group_free(fresh);
    test_group_equals_rebuild(); /* and its grouped batch writes what a rebuild does */
    index_doc_free(x);
    tbuf_free(&packed);
    analyzer_free(an);
    schema_free(sc);
}

static void test_segments_merge_by_tiers(void)
{
    enum { BATCHES = 20, ALL = 4 + BATCHES };
    static char ids[ALL][8], texts[ALL][64];
    struct row rows[ALL], kept[ALL];
    uint32_t inc_map[ALL + 1] = {0}, fresh_map[ALL + 1] = {0};
    bool gone[ALL + 1] = {false};
    for (int i = 0; i < 4; i++)
        rows[i] = BASE[i];
    for (int i = 4; i < ALL; i++) {
        snprintf(ids[i], sizeof ids[i], "%d", i + 1);
        snprintf(texts[i], sizeof texts[i], "word%d common apple %s", i, i % 3 ? "split" : "");
        rows[i] = (struct row){ids[i], texts[i], i % 2 ? "7" : "10", "Zeta"};
    }
    struct env inc, fresh;
    env_open(&inc);
    env_open(&fresh);
    build(&inc, rows, 4, 0);
    char err[256];
    struct tis_schema *sc = schema();
    struct analyzer *an = analyzer_new(err, sizeof err);
    struct analysis_opts o = {0, 0};
    struct tis_value v[4];
    struct index_delta *batch = index_delta_new();
    for (int i = 4; i < ALL; i++) { /* a batch each; every 4th also removes a row */
        MDB_txn *txn;
        mdb_txn_begin(inc.env, NULL, 0, &txn);
        values(&rows[i], v);
        CHECK(index_doc_add(txn, &inc.d, sc, an, &o, (uint32_t)i + 1, v, NULL, batch) == 0);
        if (i % 4 == 0) {
            CHECK(index_doc_remove(txn, &inc.d, sc, (uint32_t)i - 1, NULL, batch) == 0);
            gone[i - 1] = true;
        }
        CHECK(index_delta_flush(txn, &inc.d, batch) == 0);
        CHECK(mdb_txn_commit(txn) == 0);
    }
    index_delta_free(batch);
    size_t nkept = kept_rows(rows, ALL, gone, kept, inc_map, fresh_map);
    build(&fresh, kept, nkept, 0);
    CHECK(segments(&inc) == BATCHES);
    CHECK(same_view(&inc, inc_map, ALL + 1, &fresh, fresh_map, nkept + 1));
    /* Two merges of 8: 2 segments of level 1 and the 4 newest left alone. */
    CHECK(merge_until_done(&inc, INDEX_MERGE_TIERS, true));
    CHECK(segments(&inc) == BATCHES - 2 * (INDEX_MERGE_FANIN - 1));
    CHECK(same_view(&inc, inc_map, ALL + 1, &fresh, fresh_map, nkept + 1));
    CHECK(fold_all(&inc, true) && segments(&inc) == 0);
    CHECK(same_view(&inc, inc_map, ALL + 1, &fresh, fresh_map, nkept + 1));
    analyzer_free(an);
    schema_free(sc);
    env_close(&inc);
    env_close(&fresh);
}

/* Letters only, so that the analyzer keeps it one word: "q" then n in
 * base 26. */
static void word(char *out, unsigned n)
{
    *out++ = 'q';
    do {
        *out++ = (char)('a' + n % 26);
        n /= 26;
    } while (n);
    *out++ = ' ';
    *out = 0;
}

/* Segments of many blocks (each batch ~600 terms): a term-at-a-time merge
 * ends every chunk inside blocks of each input, which are then cut and
 * rewritten around it. Readers see a rebuild's index at every stage. */
static void test_segments_of_many_blocks(void)
{
    enum { BATCHES = INDEX_MERGE_FANIN + 1, PER = 2, ALL = 4 + BATCHES * PER };
    static char ids[ALL][8], texts[ALL][4096];
    struct row rows[ALL], kept[ALL];
    uint32_t inc_map[ALL + 1] = {0}, fresh_map[ALL + 1] = {0};
    bool gone[ALL + 1] = {false};
    for (int i = 0; i < 4; i++)
        rows[i] = BASE[i];
    for (int i = 4; i < ALL; i++) {
        char w[16], *t = texts[i];
        snprintf(ids[i], sizeof ids[i], "%d", i + 1);
        for (unsigned k = 0; k < 300; k++) { /* shared words, then the row's own */
            word(w, k < 150 ? (k * 7 + (unsigned)i) % 150 : 1000 + (unsigned)i * 200 + k);
            t = stpcpy(t, w);
        }
        /* A word cut to the longest term: a chunk that ends on it resumes
         * from a key one byte longer than any stored one. */
        memset(t, 'z', 420);
        t[420] = 0;
        rows[i] = (struct row){ids[i], texts[i], "3", "Eta"};
    }
    struct env inc, fresh;
    env_open(&inc);
    env_open(&fresh);
    build(&inc, rows, 4, 0);
    char err[256];
    struct tis_schema *sc = schema();
    struct analyzer *an = analyzer_new(err, sizeof err);
    struct analysis_opts o = {0, 0};
    struct tis_value v[4];
    struct index_delta *batch = index_delta_new();
    for (int b = 0; b < BATCHES; b++) { /* every other batch also removes a row */
        MDB_txn *txn;
        mdb_txn_begin(inc.env, NULL, 0, &txn);
        for (int i = 4 + b * PER; i < 4 + (b + 1) * PER; i++) {
            values(&rows[i], v);
            CHECK(index_doc_add(txn, &inc.d, sc, an, &o, (uint32_t)i + 1, v, NULL, batch) == 0);
        }
        if (b % 2) {
            uint32_t old = (uint32_t)(b * PER + 1); /* an older batch's row, or the base's */
            CHECK(index_doc_remove(txn, &inc.d, sc, old, NULL, batch) == 0);
            gone[old] = true;
        }
        CHECK(index_delta_flush(txn, &inc.d, batch) == 0);
        CHECK(mdb_txn_commit(txn) == 0);
    }
    index_delta_free(batch);
    size_t nkept = kept_rows(rows, ALL, gone, kept, inc_map, fresh_map);
    build(&fresh, kept, nkept, 0);
    MDB_txn *txn;
    MDB_stat st;
    mdb_txn_begin(inc.env, NULL, MDB_RDONLY, &txn);
    CHECK(mdb_stat(txn, inc.d.segs, &st) == 0 && st.ms_entries >= 3 * BATCHES); /* blocks */
    mdb_txn_abort(txn);
    CHECK(segments(&inc) == BATCHES);
    CHECK(same_view(&inc, inc_map, ALL + 1, &fresh, fresh_map, nkept + 1));
    CHECK(merge_until_done(&inc, INDEX_MERGE_TIERS, true)); /* 8 into 1, a term at a time */
    CHECK(segments(&inc) == 2);
    CHECK(same_view(&inc, inc_map, ALL + 1, &fresh, fresh_map, nkept + 1));
    CHECK(fold_all(&inc, true) && segments(&inc) == 0);
    CHECK(same_view(&inc, inc_map, ALL + 1, &fresh, fresh_map, nkept + 1));
    mdb_txn_begin(inc.env, NULL, MDB_RDONLY, &txn);
    CHECK(mdb_stat(txn, inc.d.segs, &st) == 0 && st.ms_entries == 0); /* every block gone */
    mdb_txn_abort(txn);
    analyzer_free(an);
    schema_free(sc);
    env_close(&inc);
    env_close(&fresh);
}

static int count_term(void *arg, const unsigned char *t, size_t len, const struct posting *p)
{
    (void)t, (void)len, (void)p;
    ++*(int *)arg;
    return 0;
}

/* A malformed block is an error to a reader and to the merge, which then
 * keeps every segment (it used to take the walk's end for the merge's and
 * drop them). */
static void test_malformed_block_is_an_error(void)
{
    struct env e;
    env_open(&e);
    build(&e, BASE, 4, 0);
    char err[256];
    struct tis_schema *sc = schema();
    struct analyzer *an = analyzer_new(err, sizeof err);
    struct analysis_opts o = {0, 0};
    struct tis_value v[4];
    struct index_delta *batch = index_delta_new();
    MDB_txn *txn;
    for (uint32_t id = 5; id <= 6; id++) { /* two segments */
        const struct row r = {id == 5 ? "5" : "6", "apple cherry", "1", "Iota"};
        mdb_txn_begin(e.env, NULL, 0, &txn);
        values(&r, v);
        CHECK(index_doc_add(txn, &e.d, sc, an, &o, id, v, NULL, batch) == 0);
        CHECK(index_delta_flush(txn, &e.d, batch) == 0);
        CHECK(mdb_txn_commit(txn) == 0);
    }
    index_delta_free(batch);
    /* The first segment's first block: a count of 5 and nothing else. */
    MDB_cursor *cur;
    MDB_val k, val;
    mdb_txn_begin(e.env, NULL, 0, &txn);
    mdb_cursor_open(txn, e.d.segs, &cur);
    CHECK(mdb_cursor_get(cur, &k, &val, MDB_FIRST) == 0);
    val = (MDB_val){2, "\x05\x00"};
    CHECK(mdb_cursor_put(cur, &k, &val, MDB_CURRENT) == 0);
    mdb_cursor_close(cur);
    CHECK(mdb_txn_commit(txn) == 0);

    struct posting p;
    mdb_txn_begin(e.env, NULL, MDB_RDONLY, &txn);
    CHECK(index_term(txn, &e.d, 1, "apple", 5, &p) == MDB_CORRUPTED);
    /* A walk over the field's terms (prefixes, ranges) says so too, rather
     * than end early as if the terms ended there. */
    int terms = 0;
    CHECK(index_terms_between(txn, &e.d, 1, NULL, 0, true, NULL, 0, true, count_term, &terms) ==
          MDB_CORRUPTED);
    mdb_txn_abort(txn);
    bool ran, left;
    mdb_txn_begin(e.env, NULL, 0, &txn);
    CHECK(index_fold(txn, &e.d, INDEX_MERGE_ALL, mono_now() + 60, &ran, &left) == MDB_CORRUPTED);
    mdb_txn_abort(txn);
    CHECK(segments(&e) == 2);
    analyzer_free(an);
    schema_free(sc);
    env_close(&e);
}

/* A deleted-id set that does not read is reported, not replaced by an
 * empty one that would forget the ids it held. */
static void test_unreadable_idset_is_an_error(void)
{
    struct env e;
    env_open(&e);
    MDB_txn *txn;
    MDB_val k = {2, "\x00\x00"}, v = {8, "notaset!"};
    mdb_txn_begin(e.env, NULL, 0, &txn);
    CHECK(mdb_put(txn, e.d.deleted, &k, &v, 0) == 0);
    roaring_bitmap_t *add = roaring_bitmap_of(1, 7);
    CHECK(index_idset_add(txn, e.d.deleted, add) == MDB_CORRUPTED);
    CHECK(mdb_get(txn, e.d.deleted, &k, &v) == 0 && v.mv_size == 8 &&
          memcmp(v.mv_data, "notaset!", 8) == 0);
    /* Ids of another 64 Ki block, stored nowhere yet, still go in. */
    roaring_bitmap_t *other = roaring_bitmap_of(1, 70000);
    CHECK(index_idset_add(txn, e.d.deleted, other) == 0);
    /* Read back, the damaged part is reported, not skipped (the ids it
     * holds would come back to life), by the set and by the merge. */
    roaring_bitmap_t *all = (roaring_bitmap_t *)1;
    CHECK(index_deleted(txn, &e.d, &all) == MDB_CORRUPTED && all == NULL);
    bool ran = true, left = true;
    CHECK(index_fold(txn, &e.d, INDEX_MERGE_ALL, mono_now() + 60, &ran, &left) == MDB_CORRUPTED);
    CHECK(!ran && !left);
    mdb_txn_abort(txn);
    roaring_bitmap_free(add);
    roaring_bitmap_free(other);
    env_close(&e);
}

static void test_spills_give_the_same_index(void)
{
    /* 3000 rows; a 1-byte budget spills after every batch. */
    enum { N = 3000 };
    struct row *rows = calloc(N, sizeof *rows);
    char (*ids)[16] = calloc(N, 16), (*texts)[64] = calloc(N, 64), (*nums)[16] = calloc(N, 16);
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], 16, "%d", i + 1);
        snprintf(texts[i], 64, "word%d common 词%d", i % 97, i % 13);
        snprintf(nums[i], 16, "%d", (i * 7919) % 1000 - 500);
        rows[i] = (struct row){ids[i], texts[i], nums[i], texts[i]};
    }
    struct env a, b;
    env_open(&a);
    env_open(&b);
    build(&a, rows, N, 1);
    build(&b, rows, N, (size_t)1 << 30);
    CHECK(same_index(&a, &b));
    env_close(&a);
    env_close(&b);
    free(rows);
    free(ids);
    free(texts);
    free(nums);
}

static int count_terms(void *arg, const unsigned char *t, size_t len, const struct posting *v)
{
    (void)t;
    (void)len;
    (void)v;
    (*(int *)arg)++;
    return 0;
}

static void test_typed_terms_sort_as_values(void)
{
    const char *ints[] = {"-9223372036854775808", "-5", "0", "7", "10", "9223372036854775807"};
    const char *floats[] = {"-1e300", "-2.5", "-0", "0.001", "3", "1e300"};
    unsigned char prev[40], cur[40];
    size_t pn = 0, cn;
    for (int i = 0; i < 6; i++) {
        CHECK(index_typed_term(VT_INT, ints[i], strlen(ints[i]), cur, &cn));
        if (i)
            CHECK(memcmp(prev, cur, 8) < 0);
        memcpy(prev, cur, cn);
        pn = cn;
    }
    for (int i = 0; i < 6; i++) {
        CHECK(index_typed_term(VT_FLOAT, floats[i], strlen(floats[i]), cur, &cn));
        if (i)
            CHECK(memcmp(prev, cur, 8) < 0);
        memcpy(prev, cur, cn);
    }
    (void)pn;
    CHECK(!index_typed_term(VT_INT, "12abc", 5, cur, &cn));
    CHECK(!index_typed_term(VT_UINT, "-1", 2, cur, &cn));
    CHECK(index_typed_term(VT_DATETIME, "2020-01-02T03:04:05Z", 20, cur, &cn) && cn == 19 &&
          memcmp(cur, "2020-01-02 03:04:05", 19) == 0);

    /* A range over typed terms through the index. */
    struct env e;
    env_open(&e);
    build(&e, BASE, 4, 0);
    MDB_txn *txn;
    unsigned char lo[8], hi[8];
    size_t n;
    index_typed_term(VT_INT, "-5", 2, lo, &n);
    index_typed_term(VT_INT, "9", 1, hi, &n);
    int terms = 0;
    mdb_txn_begin(e.env, NULL, MDB_RDONLY, &txn);
    index_terms_between(txn, &e.d, 2, lo, 8, false, hi, 8, true, count_terms, &terms);
    CHECK(terms == 1); /* only 7: -5 excluded, 10 above */
    mdb_txn_abort(txn);
    env_close(&e);
}

/* Large postings (more than 16 documents): 4-bit tfs with exceptions for
 * tfs of 15 and more, positions found by block, and a merge of live rows
 * into them that reads the same as a fresh build. */
static void test_large_postings(void)
{
    enum { N = 40, MORE = 3 };
    static char ids[N + MORE][8], texts[N + MORE][1300];
    struct row rows[N + MORE];
    for (int i = 0; i < N + MORE; i++) {
        snprintf(ids[i], sizeof ids[i], "%d", i + 1);
        /* x repeated 1..20 times, then y; the last row 600 times: its
         * positions blob is long (a large segment posting) */
        int at = 0, reps = i == N + MORE - 1 ? 600 : i % 20 + 1;
        for (int k = 0; k < reps; k++)
            at += snprintf(texts[i] + at, sizeof texts[i] - (size_t)at, "x ");
        snprintf(texts[i] + at, sizeof texts[i] - (size_t)at, "y");
        rows[i] = (struct row){ids[i], texts[i], "1", "g"};
    }
    struct env inc, fresh;
    env_open(&inc);
    env_open(&fresh);
    build(&inc, rows, N, 0);
    build(&fresh, rows, N + MORE, 0);
    MDB_txn *txn;
    struct posting p;
    mdb_txn_begin(inc.env, NULL, MDB_RDONLY, &txn);
    CHECK(index_term(txn, &inc.d, 1, "x", 1, &p) == 0 && !p.small && p.n == N);
    CHECK(posting_tf(&p, 1) == 1 && posting_tf(&p, 14) == 14 && posting_tf(&p, 15) == 15 &&
          posting_tf(&p, 20) == 20 && posting_tf(&p, 21) == 1 && posting_tf(&p, 40) == 20);
    posting_free(&p);
    CHECK(strcmp(positions(txn, &inc, 1, "y", 37), "17") == 0); /* x * 17, then y */
    CHECK(strcmp(positions(txn, &inc, 1, "x", 3), "0,1,2") == 0);
    CHECK(strcmp(positions(txn, &inc, 1, "x", 34), "0,1,2,3,4,5,6,7,8,9,10,11,12,13") == 0);
    mdb_txn_abort(txn);

    char err[256];
    struct tis_schema *sc = schema();
    struct analyzer *an = analyzer_new(err, sizeof err);
    struct analysis_opts o = {0, 0};
    struct tis_value v[4];
    mdb_txn_begin(inc.env, NULL, 0, &txn);
    for (int i = N; i < N + MORE; i++) {
        values(&rows[i], v);
        CHECK(index_doc_add(txn, &inc.d, sc, an, &o, (uint32_t)i + 1, v, NULL, NULL) == 0);
    }
    CHECK(mdb_txn_commit(txn) == 0);
    uint32_t map[N + MORE + 1];
    for (uint32_t i = 0; i <= N + MORE; i++)
        map[i] = i < 64 ? i : 0;
    CHECK(same_view(&inc, map, N + MORE + 1, &fresh, map, N + MORE + 1));
    mdb_txn_begin(inc.env, NULL, MDB_RDONLY, &txn);
    MDB_stat st;
    CHECK(mdb_stat(txn, inc.d.segs, &st) == 0 && st.ms_entries > 0); /* live postings */
    CHECK(strcmp(positions(txn, &inc, 1, "y", N + MORE), "600") == 0);
    mdb_txn_abort(txn);
    CHECK(fold_all(&inc, false) && same_view(&inc, map, N + MORE + 1, &fresh, map, N + MORE + 1));
    mdb_txn_begin(inc.env, NULL, MDB_RDONLY, &txn);
    CHECK(mdb_stat(txn, inc.d.segs, &st) == 0 && st.ms_entries == 0); /* folded, dropped */
    mdb_txn_abort(txn);
    CHECK(same_index(&inc, &fresh)); /* byte for byte, once merged */
    analyzer_free(an);
    schema_free(sc);
    env_close(&inc);
    env_close(&fresh);
}

/* The gather's table matches a key by its first 16 bytes in the slot and
 * the rest in the keys: words of 3 to 35 letters, most sharing their first
 * 8 or 16 with others, 5 000 distinct in one document (the table grows
 * while it is gathered), each must come out as one term with its own
 * documents and counts, in key order. Fails with keys told apart by their
 * first 16 bytes alone, or a document's marks lost when the table grows. */
static void test_group_keys_of_any_length(void)
{
    enum { WORDS = 5000 };
    char err[256];
    struct tis_schema *sc = schema();
    struct analyzer *an = analyzer_new(err, sizeof err);
    struct analysis_opts o = {0, 0};
    struct index_doc *x = index_doc_new(sc);
    struct tbuf packed = {0}, all = {0}, even = {0};
    char (*w)[40] = calloc(WORDS, sizeof *w);
    for (int i = 0; i < WORDS; i++) {
        int q = i % 33;
        memset(w[i], 'q', (size_t)q);
        w[i][q] = (char)('a' + i / 676), w[i][q + 1] = (char)('a' + i / 26 % 26);
        w[i][q + 2] = (char)('a' + i % 26);
        for (int r = 0; r <= i % 3; r++)
            tbuf_printf(&all, "%s ", w[i]);
        if (i % 2 == 0)
            tbuf_printf(&even, "%s ", w[i]);
    }
    struct tis_value v[4];
    struct row d0 = {"1", all.data, NULL, NULL}, d1 = {"2", even.data, NULL, NULL};
    struct index_group *g = index_group_new();
    values(&d0, v);
    index_group_add(g, x, an, &o, v, &packed);
    values(&d1, v);
    index_group_add(g, x, an, &o, v, &packed);
    index_group_seal(g);
    size_t found = 0, words = 0;
    for (size_t k = 0; k < g->nt; k++) {
        const struct group_term *t = &g->t[k];
        const char *key = g->in.keys.data + t->koff;
        if (k > 0) {
            const struct group_term *p = &g->t[k - 1];
            CHECK(cmp_keys(g->in.keys.data + p->koff, p->klen, key, t->klen) < 0);
        }
        if (key[0] != 1) /* field t */
            continue;
        words++;
        for (int i = 0; i < WORDS; i++) {
            size_t n = strlen(w[i]);
            if (n + 1 != t->klen || memcmp(key + 1, w[i], n) != 0)
                continue;
            found++;
            uint32_t e = t->start, end = t[1].start;
            CHECK(end - e == (i % 2 == 0 ? 2u : 1u));
            CHECK(g->ord[e] == 0 && g->tf[e] == i % 3 + 1);
            if (i % 2 == 0)
                CHECK(g->ord[e + 1] == 1 && g->tf[e + 1] == 1);
        }
    }
    CHECK(found == WORDS);
    CHECK(words == WORDS);
    index_group_free(g);
    free(w);
    tbuf_free(&all);
    tbuf_free(&even);
    tbuf_free(&packed);
    index_doc_free(x);
    analyzer_free(an);
    schema_free(sc);
}

/* A batch's exists marks are appended after the stored ones (ids only
 * grow); ids that are not above them still go in, one by one, and none is
 * lost either way. */
static void test_exists_marks_appended_or_inserted(void)
{
    char err[256];
    struct env e;
    env_open(&e);
    build(&e, BASE, 4, 0);
    struct tis_schema *sc = schema();
    struct analyzer *an = analyzer_new(err, sizeof err);
    struct analysis_opts o = {0, 0};
    struct field_totals totals[4] = {{0, 0}};
    struct tis_value v[4];
    values(&BASE[0], v);
    /* Appended; the first not above 12; the second not above 13. */
    static const uint32_t batches[3][3] = {{10, 12, 0}, {5, 11, 13}, {14, 6, 15}};
    for (int b = 0; b < 3; b++) {
        struct index_delta *batch = index_delta_new();
        MDB_txn *txn;
        mdb_txn_begin(e.env, NULL, 0, &txn);
        for (int i = 0; i < 3 && batches[b][i]; i++)
            CHECK(index_doc_add(txn, &e.d, sc, an, &o, batches[b][i], v, totals, batch) == 0);
        CHECK(index_delta_flush(txn, &e.d, batch) == 0);
        CHECK(mdb_txn_commit(txn) == 0);
        index_delta_free(batch);
    }
    MDB_txn *txn;
    mdb_txn_begin(e.env, NULL, MDB_RDONLY, &txn);
    roaring_bitmap_t *ex = index_exists(txn, &e.d, 0);
    static const uint32_t want[] = {1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 14, 15};
    CHECK(roaring_bitmap_get_cardinality(ex) == sizeof want / sizeof *want);
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        CHECK(roaring_bitmap_contains(ex, want[i]));
    roaring_bitmap_free(ex);
    mdb_txn_abort(txn);
    analyzer_free(an);
    schema_free(sc);
    env_close(&e);
}

int main(void)
{
    test_incremental_equals_rebuild();
    test_group_equals_rebuild();
    test_group_reset_and_sealed_again();
    test_group_keys_of_any_length();
    test_segments_merge_by_tiers();
    test_segments_of_many_blocks();
    test_malformed_block_is_an_error();
    test_unreadable_idset_is_an_error();
    test_spills_give_the_same_index();
    test_typed_terms_sort_as_values();
    test_large_postings();
    test_exists_marks_appended_or_inserted();
    return check_summary();
}
