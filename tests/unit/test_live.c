/* Unit tests for live changes to a generation (src/gen_live.c): the
 * version rule (stale events, tombstones, TRUNCATE's floor, binlog
 * coordinates, domains that do not compare), partial images, batches that
 * commit or vanish whole with the channel state, and queries that see
 * exactly the live rows with the statistics of a fresh build. */
#define _GNU_SOURCE
#include "tisfs/gen.h"

#include <lmdb.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "tisfs/search.h"
#include "tisfs/solr.h"
#include "tisfs/util.h"
#include "../../src/gen_internal.h" /* (the pk filter's test swaps writers) */

#define TSO(n) ((struct version){VER_TSO, (n)})

static struct tis_schema *schema(void)
{
    const char *js = "{\"fields\":["
                     "{\"name\":\"id\",\"type\":\"int\",\"token\":\"string\",\"search\":true,\"store\":true,\"pk\":true},"
                     "{\"name\":\"title\",\"type\":\"string\",\"token\":\"ik\",\"search\":true,\"store\":true},"
                     "{\"name\":\"n\",\"type\":\"int\",\"token\":null,\"search\":true,\"store\":true}],"
                     "\"primaryKey\":[\"id\"]}";
    struct json_object *o = json_tokener_parse(js);
    struct tis_schema *s = schema_from_json(o);
    json_object_put(o);
    return s;
}

static void row(struct tis_value *v, const char *id, const char *title, const char *n)
{
    const char *f[3] = {id, title, n};
    for (int i = 0; i < 3; i++)
        v[i] = (struct tis_value){f[i] ? f[i] : "", f[i] ? strlen(f[i]) : 0, f[i] == NULL};
}

/* A finished generation of schema sc (taken) at the given snapshot, with
 * rows id 1..3 when the schema is schema()'s. */
static struct gen *make_gen_of(char *dir, struct tis_schema *sc, bool rows3,
                               const char *snapshot)
{
    char err[256], path[128];
    strcpy(dir, "/tmp/tisfs-test-live-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/gen", dir);
    struct analysis_opts o = {0, 0};
    struct gen_builder *b = gen_builder_open(path, sc, &o, err, sizeof err);
    const char *rows[3][3] = {{"1", "apple pie", "10"}, {"2", "banana split", "20"},
                              {"3", "cherry tart", "30"}};
    struct tis_value v[3];
    for (int i = 0; rows3 && i < 3; i++) {
        row(v, rows[i][0], rows[i][1], rows[i][2]);
        CHECK(gen_builder_add(b, v, err, sizeof err) == 0);
    }
    struct json_object *snap = json_tokener_parse(snapshot);
    CHECK(gen_builder_finish(b, snap, err, sizeof err) == 0);
    json_object_put(snap);
    gen_builder_free(b);
    schema_free(sc);
    struct gen *g = gen_open(path, err, sizeof err);
    CHECK(g != NULL);
    return g;
}

/* A finished generation of rows id 1..3 at the given snapshot. */
static struct gen *make_gen(char *dir, const char *snapshot)
{
    return make_gen_of(dir, schema(), true, snapshot);
}

static void drop_gen(struct gen *g, const char *dir)
{
    gen_unref(g);
    rm_rf(dir);
}

static int collect(struct json_object *doc, void *arg)
{
    tbuf_adds(arg, json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
    tbuf_adds(arg, "\n");
    return 0;
}

/* Every live document, one JSON per line, in id order. */
static char *docs(struct gen *g)
{
    struct tbuf b = {0};
    gen_each_doc(g, collect, &b);
    return tbuf_take(&b);
}

static char *query(struct gen *g, const char *qs)
{
    struct search_request r;
    char err[256];
    struct search_result res;
    struct tbuf out = {0};
    CHECK(solr_request_parse(qs, &r, err, sizeof err) == 0);
    CHECK(search_run(g, &r, &res, err, sizeof err) == 0);
    solr_answer(&r, &res, 0, &out);
    search_result_free(&res);
    solr_request_free(&r);
    return tbuf_take(&out);
}

static enum gen_outcome upsert(struct gen *g, const char *id, const char *title, const char *n,
                               const bool *present, struct version v)
{
    char err[256];
    struct analyzer *an = analyzer_new(err, sizeof err);
    struct gen_writer *w = gen_write_begin(g, an, err, sizeof err);
    struct tis_value vals[3];
    static const bool all[3] = {true, true, true};
    enum gen_outcome out = GEN_STALE;
    row(vals, id, title, n);
    CHECK(gen_write_upsert(w, vals, present ? present : all, v, &out, err, sizeof err) == 0);
    CHECK(gen_write_commit(w, NULL, err, sizeof err) == 0);
    analyzer_free(an);
    return out;
}

/* Upserts row (id, title, n) at version v in writer w's batch. */
static enum gen_outcome put_row(struct gen_writer *w, const char *id, const char *title,
                                const char *n, struct version v)
{
    char err[256];
    struct tis_value vals[3];
    enum gen_outcome out = GEN_STALE;
    row(vals, id, title, n);
    CHECK(gen_write_upsert(w, vals, NULL, v, &out, err, sizeof err) == 0);
    return out;
}

static enum gen_outcome delete(struct gen *g, const char *id, struct version v)
{
    char err[256];
    struct analyzer *an = analyzer_new(err, sizeof err);
    struct gen_writer *w = gen_write_begin(g, an, err, sizeof err);
    struct tis_value vals[3];
    enum gen_outcome out = GEN_STALE;
    row(vals, id, NULL, NULL);
    CHECK(gen_write_delete(w, vals, v, &out, err, sizeof err) == 0);
    CHECK(gen_write_commit(w, NULL, err, sizeof err) == 0);
    analyzer_free(an);
    return out;
}

static void test_version_rule(void)
{
    char dir[64];
    struct gen *g = make_gen(dir, "{\"tso\":100}");
    CHECK_INT(gen_snapshot_version(g).domain, VER_TSO);
    /* At or below the snapshot: the dump has it already. */
    CHECK_INT(upsert(g, "1", "old news", "1", NULL, TSO(100)), GEN_STALE);
    CHECK_INT(upsert(g, "1", "fresh mango", "11", NULL, TSO(150)), GEN_APPLIED);
    CHECK_INT(upsert(g, "1", "fresh mango", "11", NULL, TSO(150)), GEN_STALE); /* a duplicate */
    CHECK_INT(upsert(g, "1", "older", "11", NULL, TSO(140)), GEN_STALE);       /* a replay */
    /* A delete leaves a tombstone: a late insert of an older version stays out. */
    CHECK_INT(delete(g, "2", TSO(160)), GEN_APPLIED);
    CHECK_INT(upsert(g, "2", "banana again", "20", NULL, TSO(155)), GEN_STALE);
    CHECK_INT(delete(g, "2", TSO(161)), GEN_MISSING);
    /* Partial images: absent columns keep their values, or are NULL. */
    bool only_n[3] = {true, false, true};
    CHECK_INT(upsert(g, "1", NULL, "12", only_n, TSO(170)), GEN_APPLIED);
    CHECK_INT(upsert(g, "9", NULL, "90", only_n, TSO(171)), GEN_APPLIED);
    /* Newer but identical: only the version moves. */
    CHECK_INT(upsert(g, "3", "cherry tart", "30", NULL, TSO(172)), GEN_UNCHANGED);
    char *d = docs(g);
    /* In internal id order: a changed row moves to a new id. */
    CHECK_STR(d, "{\"id\":3,\"title\":\"cherry tart\",\"n\":30}\n"
                 "{\"id\":1,\"title\":\"fresh mango\",\"n\":12}\n"
                 "{\"id\":9,\"title\":null,\"n\":90}\n");
    free(d);
    CHECK_INT(gen_doc_count(g), 3);

    /* Queries see only live rows, with live statistics. */
    char *r = query(g, "q=title:mango");
    CHECK_HAS(r, "\"numFound\":1");
    free(r);
    r = query(g, "q=title:banana");
    CHECK_HAS(r, "\"numFound\":0");
    free(r);
    r = query(g, "q=*:*&rows=0");
    CHECK_HAS(r, "\"numFound\":3");
    free(r);
    r = query(g, "q=n:[11 TO 40]&fl=id");
    CHECK_HAS(r, "\"numFound\":2");
    free(r);
    r = query(g, "q=title:*&rows=0"); /* exists: row 9 has no title */
    CHECK_HAS(r, "\"numFound\":2");
    free(r);

    /* TRUNCATE empties the collection; older events stay out after it. */
    char err[256];
    struct analyzer *an = analyzer_new(err, sizeof err);
    struct gen_writer *w = gen_write_begin(g, an, err, sizeof err);
    CHECK(gen_write_truncate(w, TSO(200), err, sizeof err) == 0);
    CHECK(gen_write_commit(w, NULL, err, sizeof err) == 0);
    analyzer_free(an);
    CHECK_INT(gen_doc_count(g), 0);
    CHECK_INT(upsert(g, "4", "durian", "40", NULL, TSO(190)), GEN_STALE);
    CHECK_INT(upsert(g, "4", "durian", "40", NULL, TSO(210)), GEN_APPLIED);
    r = query(g, "q=*:*&rows=0");
    CHECK_HAS(r, "\"numFound\":1");
    free(r);
    drop_gen(g, dir);
}

/* A TRUNCATE without a version sets no floor: the versions rows had stay
 * (tombstones in pk), so replays of older events still stay out. */
static void test_truncate_without_version_keeps_versions(void)
{
    char dir[64], err[256];
    struct gen *g = make_gen(dir, "{\"tso\":100}");
    CHECK_INT(upsert(g, "1", "fresh mango", "11", NULL, TSO(150)), GEN_APPLIED);
    CHECK_INT(delete(g, "2", TSO(160)), GEN_APPLIED);
    struct analyzer *an = analyzer_new(err, sizeof err);
    struct gen_writer *w = gen_write_begin(g, an, err, sizeof err);
    CHECK(gen_write_truncate(w, (struct version){VER_NONE, 0}, err, sizeof err) == 0);
    CHECK(gen_write_commit(w, NULL, err, sizeof err) == 0);
    analyzer_free(an);
    CHECK_INT(gen_doc_count(g), 0);
    CHECK_INT(upsert(g, "1", "replayed", "11", NULL, TSO(140)), GEN_STALE);
    CHECK_INT(upsert(g, "2", "replayed", "20", NULL, TSO(155)), GEN_STALE);
    CHECK_INT(upsert(g, "3", "snapshot's", "30", NULL, TSO(90)), GEN_STALE);
    CHECK_INT(upsert(g, "1", "mango again", "12", NULL, TSO(151)), GEN_APPLIED);
    CHECK_INT(upsert(g, "3", "cherry", "31", NULL, TSO(101)), GEN_APPLIED);
    CHECK_INT(gen_doc_count(g), 2);
    char *r = query(g, "q=title:replayed&rows=0");
    CHECK_HAS(r, "\"numFound\":0");
    free(r);
    drop_gen(g, dir);
}

static void test_batch_commits_whole_with_the_channel_state(void)
{
    char dir[64], err[256];
    struct gen *g = make_gen(dir, "{\"tso\":null}");
    CHECK_INT(gen_snapshot_version(g).domain, VER_NONE);
    struct analyzer *an = analyzer_new(err, sizeof err);
    struct tis_value vals[3];
    static const bool all[3] = {true, true, true};
    enum gen_outcome out;
    /* An abandoned batch leaves nothing: not its rows, not its positions. */
    struct gen_writer *w = gen_write_begin(g, an, err, sizeof err);
    row(vals, "5", "elderberry", "50");
    CHECK(gen_write_upsert(w, vals, all, TSO(1), &out, err, sizeof err) == 0);
    gen_write_abort(w);
    CHECK_INT(gen_doc_count(g), 3);
    CHECK(gen_channel_state(g) == NULL);
    /* A committed one keeps both. Without a snapshot version, any event
     * applies (the handover), and later ones compare with what it left. */
    w = gen_write_begin(g, an, err, sizeof err);
    CHECK(gen_write_upsert(w, vals, all, TSO(1), &out, err, sizeof err) == 0);
    CHECK_INT(out, GEN_APPLIED);
    struct json_object *st = json_tokener_parse("{\"topic\":\"t\",\"positions\":{\"0\":7}}");
    CHECK(gen_write_commit(w, st, err, sizeof err) == 0);
    json_object_put(st);
    st = gen_channel_state(g);
    CHECK_STR(st ? json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN) : NULL,
              "{\"topic\":\"t\",\"positions\":{\"0\":7}}");
    json_object_put(st);
    CHECK_INT(gen_doc_count(g), 4);
    CHECK_INT(upsert(g, "5", "elderberry", "50", NULL, TSO(1)), GEN_STALE);
    analyzer_free(an);
    drop_gen(g, dir);
}

static void test_binlog_versions(void)
{
    char dir[64];
    struct gen *g = make_gen(dir, "{\"tso\":null,\"binlog\":{\"file\":\"mysql-bin.000002\","
                                  "\"pos\":1000}}");
    CHECK_INT(gen_snapshot_version(g).domain, VER_BINLOG);
    struct version before = cdc_binlog_version("mysql-bin.000002", 900, 0),
                   at = cdc_binlog_version("mysql-bin.000002", 1000, 0),
                   earlier_file = cdc_binlog_version("mysql-bin.000001", 5000, 0);
    CHECK_INT(upsert(g, "1", "x", "1", NULL, before), GEN_STALE);
    CHECK_INT(upsert(g, "1", "x", "1", NULL, earlier_file), GEN_STALE);
    CHECK_INT(upsert(g, "1", "first after the snapshot", "1", NULL, at), GEN_APPLIED);
    /* TSO events do not compare with binlog versions: applied (handover). */
    CHECK_INT(upsert(g, "2", "from tidb", "2", NULL, TSO(5)), GEN_APPLIED);
    drop_gen(g, dir);
    /* The very first coordinate: the version is 0, not 0 - 1 (which made
     * every event older than the snapshot). */
    struct json_object *zero = json_tokener_parse("{\"binlog\":{\"file\":\"b.000000\",\"pos\":0}}");
    struct version v = gen_version_of_snapshot(zero);
    CHECK_INT(v.domain, VER_BINLOG);
    CHECK(v.v == 0);
    json_object_put(zero);
}

/* Many changes, then the merge: answers and scores stay those of the rows. */
static void test_scores_survive_the_merge(void)
{
    char dir[64], err[256];
    struct gen *g = make_gen(dir, "{\"tso\":100}");
    for (int i = 0; i < 200; i++) {
        char id[16], title[64];
        snprintf(id, sizeof id, "%d", 10 + i);
        snprintf(title, sizeof title, "word%d common apple", i % 7);
        upsert(g, id, title, "1", NULL, TSO(200 + (uint64_t)i));
    }
    upsert(g, "1", "apple apple tart", "1", NULL, TSO(500));
    char *before = query(g, "q=title:apple&fl=id,score&rows=300");
    struct analyzer *an = analyzer_new(err, sizeof err);
    /* 201 batches, 201 segments: first the tiers, then into the base, a
     * term a transaction (until 0). */
    for (int all = 0; all < 2; all++) {
        bool left = true, ran;
        for (int round = 0; left && round < 100000; round++) {
            struct gen_writer *w = gen_write_begin(g, an, err, sizeof err);
            CHECK(gen_write_fold(w, all ? INDEX_MERGE_ALL : INDEX_MERGE_TIERS, 0, &ran, &left, err,
                                 sizeof err) == 0);
            CHECK(gen_write_commit(w, NULL, err, sizeof err) == 0);
        }
        CHECK(!left);
        char *after = query(g, "q=title:apple&fl=id,score&rows=300");
        /* QTime may differ; the response part must not. */
        CHECK_STR(strstr(after, "\"response\""), strstr(before, "\"response\""));
        CHECK_HAS(after, "\"numFound\":201");
        free(after);
    }
    analyzer_free(an);
    free(before);
    drop_gen(g, dir);
}

/* Entries in the documents' tree, removed ones not yet purged included. */
static size_t stored_docs(struct gen *g)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat st = {0};
    CHECK(gen_txn_begin(g, &txn) == 0);
    CHECK(mdb_dbi_open(txn, "docs", MDB_INTEGERKEY, &dbi) == 0);
    CHECK(mdb_stat(txn, dbi, &st) == 0);
    gen_txn_end(g, txn);
    return st.ms_entries;
}

/* A replaced or deleted row's document leaves the index at once and the
 * documents' tree at the merge, a chunk at a time: neither a dump nor a
 * query sees it in between, and the tree ends with the live rows only. */
static void test_removed_documents_are_purged(void)
{
    char dir[64], err[256];
    struct gen *g = make_gen(dir, "{\"tso\":100}");
    size_t before = stored_docs(g);
    enum { ROWS = 700, UPDATED = 600, DELETED = 50 };
    for (int i = 0; i < ROWS; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", 1000 + i);
        upsert(g, id, "plum", "1", NULL, TSO(200));
    }
    for (int i = 0; i < UPDATED; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", 1000 + i);
        CHECK_INT(upsert(g, id, "plum", "1", NULL, TSO(300)), GEN_UNCHANGED);
        CHECK_INT(upsert(g, id, "pear", "2", NULL, TSO(400)), GEN_APPLIED);
    }
    for (int i = ROWS - DELETED; i < ROWS; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", 1000 + i);
        CHECK_INT(delete(g, id, TSO(500)), GEN_APPLIED);
    }
    CHECK_INT(stored_docs(g), before + ROWS + UPDATED);
    char *listed = docs(g), *q = query(g, "q=title:plum&rows=0");
    size_t lines = 0;
    for (char *p = listed; (p = strchr(p, '\n')); p++)
        lines++;
    CHECK_INT(lines, before + ROWS - DELETED);
    CHECK_HAS(q, "\"numFound\":50");
    free(q);
    struct analyzer *an = analyzer_new(err, sizeof err);
    bool left = true, ran;
    int purges = 0;
    for (int steps = 0; left && steps < 100000; steps++) {
        size_t stored = stored_docs(g);
        struct gen_writer *w = gen_write_begin(g, an, err, sizeof err);
        CHECK(gen_write_fold(w, INDEX_MERGE_ALL, 0, &ran, &left, err, sizeof err) == 0);
        CHECK(gen_write_commit(w, NULL, err, sizeof err) == 0);
        purges += stored_docs(g) < stored;
    }
    CHECK(!left);
    CHECK_INT(purges, 2); /* 650 removed documents, 512 a step */
    CHECK_INT(stored_docs(g), before + ROWS - DELETED);
    char *after = docs(g);
    CHECK_STR(after, listed);
    free(after);
    free(listed);
    analyzer_free(an);
    drop_gen(g, dir);
}

/* A TRUNCATE keeps every streamed row's version under its own key: the
 * entries shrink to tombstones in place, and an older event of any row
 * stays out afterwards. */
static void test_truncate_keeps_every_key(void)
{
    char dir[64], err[256];
    struct gen *g = make_gen(dir, "{\"tso\":100}");
    struct analyzer *an = analyzer_new(err, sizeof err);
    struct gen_writer *w = gen_write_begin(g, an, err, sizeof err);
    enum gen_outcome out;
    for (int i = 0; i < 300; i++) { /* keys out of order: nodes out of order in pages */
        char id[16];
        struct tis_value vals[3];
        snprintf(id, sizeof id, "%d", i * 7919 % 300 - 150);
        row(vals, id, "plum", "1");
        CHECK(gen_write_upsert(w, vals, NULL, TSO(200), &out, err, sizeof err) == 0);
    }
    CHECK(gen_write_commit(w, NULL, err, sizeof err) == 0);
    w = gen_write_begin(g, an, err, sizeof err);
    CHECK(gen_write_truncate(w, (struct version){VER_NONE, 0}, err, sizeof err) == 0);
    CHECK(gen_write_commit(w, NULL, err, sizeof err) == 0);
    int stale = 0;
    for (int i = 0; i < 300; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", i - 150);
        stale += upsert(g, id, "pear", "2", NULL, TSO(150)) == GEN_STALE;
    }
    CHECK_INT(stale, 300);
    analyzer_free(an);
    drop_gen(g, dir);
}

/* Every live document's row hash into its chunk, its id into the chunk's
 * ids: what verify computes without kept sums. */
struct walked {
    struct rowsum_map *m;
    const struct tis_schema *sc;
    struct tbuf b;
};

static int walk_doc(void *arg, uint32_t id, const struct tis_value *vals)
{
    struct walked *w = arg;
    int64_t key;
    CHECK(rowsum_chunk_key(&w->sc->fields[0], &vals[0], &key));
    struct rowsum_chunk *c = rowsum_map_get(w->m, key);
    if (!c->ids)
        c->ids = roaring_bitmap_create();
    rowsum_add(&c->s, rowsum_hash(w->sc, vals, &w->b));

    roaring_bitmap_add(c->ids, id);
    return 0;
}

/* The entries of the generation's database name. */
static size_t db_entries(struct gen *g, const char *name)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat st = {0};
    CHECK(gen_txn_begin(g, &txn) == 0);
    CHECK(mdb_dbi_open(txn, name, 0, &dbi) == 0);
    CHECK(mdb_stat(txn, dbi, &st) == 0);
    gen_txn_end(g, txn);
    return st.ms_entries;
}

/* The kept sums equal the documents' (a chunk kept empty counts as
 * absent), and each chunk's ids from the keys equal its documents'. */
static void check_kept_sums(struct gen *g, const struct tis_schema *sc)
{
    MDB_txn *txn;
    struct rowsum_map kept = {0}, docs = {0};
    struct walked w = {&docs, sc, {0}};
    struct gen_stats st;
    struct tis_value vals[3];
    CHECK(gen_txn_begin(g, &txn) == 0);
    CHECK_INT(gen_rowsums_read(g, txn, &kept), 0);
    gen_stats_read(g, txn, &st);
    roaring_bitmap_t *deleted;
    CHECK(index_deleted(txn, gen_index(g), &deleted) == 0);
    roaring_bitmap_t *live = index_live(st.last_id, deleted);
    gen_walk_doc_values(g, txn, live, vals, walk_doc, &w);
    size_t differ = 0, ids_differ = 0;
    for (size_t i = 0; i < docs.cap; i++) {
        const struct rowsum_chunk *d = &docs.t[i], *k;
        if (!d->used)
            continue;
        k = rowsum_map_find(&kept, d->key);
        differ += !k || !rowsum_equal(&k->s, &d->s);
        roaring_bitmap_t *ids = roaring_bitmap_create();
        CHECK_INT(gen_chunk_ids(g, txn, d->key, ids), 0);
        ids_differ += !roaring_bitmap_equals(ids, d->ids);

        roaring_bitmap_free(ids);
    }
    for (size_t i = 0; i < kept.cap; i++)
        differ += kept.t[i].used && !rowsum_empty(&kept.t[i].s) &&
                  !rowsum_map_find(&docs, kept.t[i].key);
    CHECK_INT(differ, 0);
    CHECK_INT(ids_differ, 0);
    roaring_bitmap_free(live);
    roaring_bitmap_free(deleted);
    gen_stats_free(&st);
    gen_txn_end(g, txn);
    tbuf_free(&w.b);
    rowsum_map_free(&kept);
    rowsum_map_free(&docs);
}

/* The chunk sums a generation keeps for verify follow every kind of
 * change -- the build's rows, inserts, full and partial updates, unchanged
 * rows, deletes, re-inserts, negative keys around chunk 0, TRUNCATE --
 * batch after batch, logged and then folded into their tree by the merge;
 * a key that is not an integer stops them (verify then reads the
 * documents). */
static void test_kept_sums_follow_every_change(void)
{
    char dir[64], err[256];
    struct gen *g = make_gen(dir, "{\"tso\":100}");
    struct tis_schema *sc = schema();
    struct analyzer *an = analyzer_new(err, sizeof err);
    static const char *titles[] = {"plum", "pear", "fig", NULL, ""};
    uint64_t seed = 7, tso = 200;
    check_kept_sums(g, sc);
    for (int batch = 0; batch < 60; batch++) {
        struct gen_writer *w = gen_write_begin(g, an, err, sizeof err);
        for (int i = 0; i < 40; i++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            unsigned r = (unsigned)(seed >> 33);
            char id[16], n[16];
            snprintf(id, sizeof id, "%d", (int)(r % 500) - 250);
            snprintf(n, sizeof n, "%u", r % 3);
            struct tis_value vals[3];
            row(vals, id, titles[(r >> 9) % 5], (r >> 12) % 4 ? n : NULL);
            bool present[3] = {true, (r >> 14) % 3 != 0, (r >> 16) % 3 != 0};
            enum gen_outcome out;
            if ((r >> 18) % 4 == 0)
                CHECK(gen_write_delete(w, vals, TSO(++tso), &out, err, sizeof err) == 0);
            else
                CHECK(gen_write_upsert(w, vals, present, TSO(++tso), &out, err, sizeof err) == 0);
        }
        if (batch == 30)
            CHECK(gen_write_truncate(w, TSO(++tso), err, sizeof err) == 0);
        CHECK(gen_write_commit(w, NULL, err, sizeof err) == 0);
        check_kept_sums(g, sc);
        if (batch % 7 == 6) { /* the merge folds the logged changes into the tree */
            bool left = true, ran;
            for (int steps = 0; left && steps < 1000; steps++) {
                w = gen_write_begin(g, an, err, sizeof err);
                CHECK(gen_write_fold(w, INDEX_MERGE_ALL, 0, &ran, &left, err, sizeof err) == 0);
                CHECK(gen_write_commit(w, NULL, err, sizeof err) == 0);
            }
            CHECK(!left);
            CHECK_INT(db_entries(g, "sumlog"), 0);
            check_kept_sums(g, sc);
        }
    }
    CHECK(db_entries(g, "sumlog") > 0); /* the batches since the last fold */
    CHECK_INT(upsert(g, "12a", "plum", "1", NULL, TSO(++tso)), GEN_APPLIED);
    MDB_txn *txn;
    struct rowsum_map kept = {0};
    CHECK(gen_txn_begin(g, &txn) == 0);
    CHECK_INT(gen_rowsums_read(g, txn, &kept), 1);
    gen_txn_end(g, txn);
    rowsum_map_free(&kept);
    analyzer_free(an);
    schema_free(sc);
    drop_gen(g, dir);
}

/* Keys lo..hi whose entry is not as present[] and ver[] say (ver 0:
 * never written, any version). */
static int rows_unlike(struct gen *g, int lo, int hi, const bool *present, const uint64_t *ver)
{
    MDB_txn *txn;
    struct tbuf key = {0};
    int wrong = 0;
    CHECK(gen_txn_begin(g, &txn) == 0);
    for (int id = lo; id < hi; id++) {
        char ids[16];
        struct tis_value vals[3];
        struct gen_row r;
        snprintf(ids, sizeof ids, "%d", id);
        row(vals, ids, NULL, NULL);
        CHECK(gen_row_lookup(g, txn, vals, &key, &r) == 0);
        wrong += r.present != present[id - lo] || (ver[id - lo] && r.v.v != ver[id - lo]);
    }
    gen_txn_end(g, txn);
    tbuf_free(&key);
    return wrong;
}

static int doc_lines(struct gen *g)
{
    char *all = docs(g);
    int lines = 0;
    for (const char *p = all; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    free(all);
    return lines;
}

/* The primary key map in two trees (gen_pk.c): changes of keys already
 * there go to pkrecent, new keys above the rest to pk, and each commit
 * folds a range of pkrecent into pk (main() keeps 8 entries, folds 5 at
 * most). Through random upserts, deletes and stale replays on keys below,
 * among and above the build's, every key's entry -- present or not, its
 * version -- is the last applied one's, and the stale ones are refused. */
static void test_pk_changes_fold_into_one_map(void)
{
    char dir[64], err[256];
    struct gen *g = make_gen(dir, "{\"tso\":100}");
    struct analyzer *an = analyzer_new(err, sizeof err);
    enum { LO = -40, HI = 160, N = HI - LO };
    bool present[N] = {false};
    uint64_t ver[N] = {0}, seed = 11, tso = 1000;
    for (int id = 1; id <= 3; id++)
        present[id - LO] = true, ver[id - LO] = 100;
    size_t peak = 0;
    int stale = 0, applied = 0;
    for (int batch = 0; batch < 50; batch++) {
        struct gen_writer *w = gen_write_begin(g, an, err, sizeof err);
        for (int i = 0; i < 30; i++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            unsigned r = (unsigned)(seed >> 33);
            /* later batches reach higher keys: appends above pk's last */
            int id = LO + (int)(r % (unsigned)(N * (batch + 10) / 60));
            char ids[16];
            snprintf(ids, sizeof ids, "%d", id);
            bool old = ver[id - LO] && (r >> 20) % 8 == 0, del = (r >> 24) % 3 == 0;
            uint64_t v = old ? ver[id - LO] - (r >> 8) % 2 : ++tso; /* at or below its own */
            struct tis_value vals[3];
            enum gen_outcome out;
            row(vals, ids, "plum", "1");
            if (del)
                CHECK(gen_write_delete(w, vals, TSO(v), &out, err, sizeof err) == 0);
            else
                CHECK(gen_write_upsert(w, vals, NULL, TSO(v), &out, err, sizeof err) == 0);
            if (old) {
                stale += out == GEN_STALE;
                CHECK_INT(out, GEN_STALE);
                continue;
            }
            applied++;
            present[id - LO] = !del;
            ver[id - LO] = v;
        }
        CHECK(gen_write_commit(w, NULL, err, sizeof err) == 0);
        size_t n = db_entries(g, "pkrecent");
        peak = n > peak ? n : peak;
    }
    CHECK(peak > 8);  /* pkrecent was used ... */
    CHECK(stale > 10 && applied > 1000);
    for (int i = 0; i < 100 && db_entries(g, "pkrecent") > 8; i++) { /* ... and folds down */
        struct gen_writer *w = gen_write_begin(g, an, err, sizeof err);
        CHECK(gen_write_commit(w, NULL, err, sizeof err) == 0);
    }
    CHECK(db_entries(g, "pkrecent") <= 8);
    int live = 0;
    for (int id = LO; id < HI; id++)
        live += present[id - LO];
    CHECK_INT(rows_unlike(g, LO, HI, present, ver), 0);
    CHECK_INT(doc_lines(g), live);
    /* Not kept any more (0; a table past PK_RECENT_MAX_LEAVES likewise):
     * pkrecent drains into pk, an entry a commit here, and no row's entry
     * changes. */
    setenv("TISFS_PK_RECENT_KEEP", "0", 1);
    for (int i = 0; i < 50 && db_entries(g, "pkrecent") > 0; i++) {
        struct gen_writer *w = gen_write_begin(g, an, err, sizeof err);
        CHECK(gen_write_commit(w, NULL, err, sizeof err) == 0);
    }
    setenv("TISFS_PK_RECENT_KEEP", "8", 1);
    CHECK_INT(db_entries(g, "pkrecent"), 0);
    CHECK_INT(rows_unlike(g, LO, HI, present, ver), 0);
    CHECK_INT(doc_lines(g), live);
    analyzer_free(an);
    drop_gen(g, dir);
}

/* A writer skips pkrecent for keys its filter has never seen, and trusts
 * the filter only while no other writer has added keys since: here a
 * second writer (a filter of its own) puts key 7 in pkrecent; the first
 * must then find it there, so that an older event of key 7 is stale. Fails
 * with a filter trusted after another's commit (key 7 looked up in pk
 * alone: absent, and the older event inserted). */
static void test_pk_filter_yields_to_other_writers(void)
{
    char dir[64], err[256];
    struct gen *g = make_gen(dir, "{\"tso\":100}");
    struct analyzer *an = analyzer_new(err, sizeof err);
    struct tis_value vals[3];
    enum gen_outcome out;
    struct gen_writer *w = gen_write_begin(g, an, err, sizeof err);
    put_row(w, "3", "plum", "1", TSO(2000)); /* a key pk has: to pkrecent */
    put_row(w, "9", "plum", "1", TSO(2000)); /* above pk's last: appended */
    CHECK(gen_write_commit(w, NULL, err, sizeof err) == 0);
    struct pk_filter *first = g->e.filter;
    CHECK(first != NULL);
    g->e.filter = NULL; /* another writer, with a filter of its own */
    w = gen_write_begin(g, an, err, sizeof err);
    /* among pk's keys: to pkrecent */
    CHECK_INT(put_row(w, "7", "pear", "2", TSO(3000)), GEN_APPLIED);
    CHECK(gen_write_commit(w, NULL, err, sizeof err) == 0);
    CHECK(db_entries(g, "pkrecent") >= 1);
    pk_filter_free(g->e.filter);
    g->e.filter = first; /* the first writer again */
    w = gen_write_begin(g, an, err, sizeof err);
    CHECK_INT(put_row(w, "7", "plum", "1", TSO(2500)), GEN_STALE);
    row(vals, "7", "plum", "1");
    CHECK(gen_write_delete(w, vals, TSO(2999), &out, err, sizeof err) == 0);
    CHECK_INT(out, GEN_STALE);
    CHECK_INT(put_row(w, "3", "plum", "1", TSO(1999)), GEN_STALE);
    CHECK_INT(put_row(w, "7", "fig", "3", TSO(3001)), GEN_APPLIED);
    CHECK(gen_write_commit(w, NULL, err, sizeof err) == 0);
    CHECK_INT(doc_lines(g), 5); /* 1, 2, 3, 7, 9 */
    analyzer_free(an);
    drop_gen(g, dir);
}

/* canal-json without _tidb versions by commit milliseconds: two changes
 * of a row in one millisecond share a version, and the later (it comes
 * after on the row's partition) must apply. Fails with equal versions
 * stale in that domain: the update is dropped, the index keeps "first". */
static void test_changes_in_one_millisecond_all_apply(void)
{
    char dir[64];
    struct gen *g = make_gen(dir, "{\"tso\":100}");
    struct version ms = {VER_MS, 1700000000123ULL};
    CHECK_INT(upsert(g, "7", "first", "1", NULL, ms), GEN_APPLIED);
    CHECK_INT(upsert(g, "7", "second", "2", NULL, ms), GEN_APPLIED);
    char *d = docs(g);
    CHECK(strstr(d, "second") != NULL && strstr(d, "first") == NULL);
    free(d);
    ms.v--; /* an older millisecond still changes nothing */
    CHECK_INT(upsert(g, "7", "older", "3", NULL, ms), GEN_STALE);
    drop_gen(g, dir);
}

/* A TRUNCATE folds pkrecent into pk, whose last key may then rise above
 * the one the writer knew: here the first batch's TRUNCATE takes key 3 out
 * of pk (a build row without a version) and puts it back in pkrecent; the
 * second's fold moves it into pk, and key 2, below it, must not be
 * appended. Fails with the last key kept across the fold: the insert of 2
 * is refused (MDB_KEYEXIST), the batch with it, and a channel retrying the
 * batch stays stuck. */
static void test_insert_after_a_second_truncate(void)
{
    char dir[64], err[256];
    struct gen *g = make_gen(dir, "{\"tso\":100}");
    struct analyzer *an = analyzer_new(err, sizeof err);
    struct gen_writer *w = gen_write_begin(g, an, err, sizeof err);
    put_row(w, "1", "a", "1", TSO(200));
    CHECK(gen_write_truncate(w, TSO(201), err, sizeof err) == 0);
    put_row(w, "3", "c", "1", TSO(202));
    CHECK(gen_write_commit(w, NULL, err, sizeof err) == 0);
    w = gen_write_begin(g, an, err, sizeof err);
    put_row(w, "1", "a2", "1", TSO(203));
    CHECK(gen_write_truncate(w, TSO(204), err, sizeof err) == 0);
    CHECK_INT(put_row(w, "2", "b", "1", TSO(205)), GEN_APPLIED);
    CHECK(gen_write_commit(w, NULL, err, sizeof err) == 0);
    char *d = docs(g);
    CHECK(strstr(d, "\"b\"") != NULL);
    CHECK_INT(doc_lines(g), 1); /* 2 alone: the TRUNCATE took 1 and 3 */
    free(d);
    analyzer_free(an);
    drop_gen(g, dir);
}

/* A row whose primary key does not fit in an index key (a long string,
 * 600 bytes here) is refused on its own, the batch going on: failing the
 * batch, the channel retried it for ever. */
static void test_a_key_too_long_is_refused_alone(void)
{
    char dir[64], err[256];
    const char *js = "{\"fields\":["
                     "{\"name\":\"k\",\"type\":\"string\",\"token\":\"string\",\"search\":true,\"store\":true,\"pk\":true},"
                     "{\"name\":\"title\",\"type\":\"string\",\"token\":\"ik\",\"search\":true,\"store\":true}],"
                     "\"primaryKey\":[\"k\"]}";
    struct json_object *o = json_tokener_parse(js);
    struct gen *g = make_gen_of(dir, schema_from_json(o), false, "{\"tso\":100}");
    json_object_put(o);
    struct analyzer *an = analyzer_new(err, sizeof err);
    struct gen_writer *w = gen_write_begin(g, an, err, sizeof err);
    char longkey[601];
    memset(longkey, 'x', 600);
    longkey[600] = 0;
    struct tis_value vals[2] = {{longkey, 600, false}, {"long", 4, false}};
    enum gen_outcome out = GEN_APPLIED;
    err[0] = 0;
    CHECK(gen_write_upsert(w, vals, NULL, TSO(200), &out, err, sizeof err) == 0);
    CHECK_INT(out, GEN_REFUSED);
    CHECK(strstr(err, "primary key") != NULL);
    out = GEN_APPLIED;
    CHECK(gen_write_delete(w, vals, TSO(201), &out, err, sizeof err) == 0);
    CHECK_INT(out, GEN_REFUSED);
    vals[0] = (struct tis_value){"short", 5, false};
    vals[1] = (struct tis_value){"fits", 4, false};
    CHECK(gen_write_upsert(w, vals, NULL, TSO(202), &out, err, sizeof err) == 0);
    CHECK_INT(out, GEN_APPLIED);
    CHECK(gen_write_commit(w, NULL, err, sizeof err) == 0);
    CHECK_INT(doc_lines(g), 1);
    analyzer_free(an);
    drop_gen(g, dir);
}

/* A generation written with another index layout is refused with a hint to
 * rebuild: its postings would read as garbage. */
static void test_other_index_format_is_refused(void)
{
    char dir[64], path[128], err[512];
    struct gen *g = make_gen(dir, "{\"tso\":1}");
    gen_unref(g);
    snprintf(path, sizeof path, "%s/gen", dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 16);
    CHECK(mdb_env_open(env, path, 0, 0600) == 0);
    mdb_txn_begin(env, NULL, 0, &txn);
    CHECK(mdb_dbi_open(txn, "meta", 0, &meta) == 0);
    MDB_val k = {6, "format"}, v = {1, "1"};
    CHECK(mdb_put(txn, meta, &k, &v, 0) == 0);
    CHECK(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
    CHECK(gen_open(path, err, sizeof err) == NULL);
    CHECK(strstr(err, "index format 1") && strstr(err, "rebuild the collection"));
    rm_rf(dir);
}

/* A damaged segment fails the query, with what to do, instead of an
 * answer from what could be read (or a crash). */
static void test_damaged_segment_fails_the_query(void)
{
    char dir[64], path[128], err[512];
    struct gen *g = make_gen(dir, "{\"tso\":100}");
    CHECK(upsert(g, "4", "apple crumble", "40", NULL, TSO(200)) == GEN_APPLIED);
    char *before = query(g, "q=title:apple&fl=id");
    CHECK(strstr(before, "\"numFound\":2") != NULL);
    free(before);
    gen_unref(g);
    snprintf(path, sizeof path, "%s/gen", dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi segs;
    MDB_cursor *cur;
    MDB_val k, v;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 16);
    CHECK(mdb_env_open(env, path, 0, 0600) == 0);
    mdb_txn_begin(env, NULL, 0, &txn);
    CHECK(mdb_dbi_open(txn, "segs", 0, &segs) == 0);
    mdb_cursor_open(txn, segs, &cur);
    /* The segment's first block: a count of 5 terms and nothing else. */
    CHECK(mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0);
    v = (MDB_val){2, "\x05\x00"};
    CHECK(mdb_cursor_put(cur, &k, &v, MDB_CURRENT) == 0);
    mdb_cursor_close(cur);
    CHECK(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);

    g = gen_open(path, err, sizeof err);
    if (!CHECK(g != NULL))
        return;
    const char *qs[] = {"q=title:apple", "q=title:app*", "q=title:[a TO b]"};
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) {
        struct search_request r;
        struct search_result res;
        CHECK(solr_request_parse(qs[i], &r, err, sizeof err) == 0);
        err[0] = 0;
        int rc = search_run(g, &r, &res, err, sizeof err);
        if (!CHECK(rc != 0))
            search_result_free(&res);
        CHECK(strstr(err, "cannot be read") && strstr(err, "rebuild the collection"));
        solr_request_free(&r);
    }
    drop_gen(g, dir);
}

int main(void)
{
    /* Every test with a small pkrecent: its folds run in all of them. */
    setenv("TISFS_PK_RECENT_KEEP", "8", 1);
    test_version_rule();
    test_truncate_without_version_keeps_versions();
    test_batch_commits_whole_with_the_channel_state();
    test_binlog_versions();
    test_scores_survive_the_merge();
    test_removed_documents_are_purged();
    test_truncate_keeps_every_key();
    test_kept_sums_follow_every_change();
    test_pk_changes_fold_into_one_map();
    test_pk_filter_yields_to_other_writers();
    test_insert_after_a_second_truncate();
    test_changes_in_one_millisecond_all_apply();
    test_a_key_too_long_is_refused_alone();
    test_other_index_format_is_refused();
    test_damaged_segment_fails_the_query();
    return check_summary();
}
