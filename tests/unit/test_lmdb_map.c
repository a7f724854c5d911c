/* Unit tests for LMDB maps that grow (src/lmdb_map.c) and for a serving
 * generation that grows under live changes while readers read it
 * (src/gen_live.c): a write that finds the map full is retried after the
 * map doubles and nothing is lost; growth is refused, not deadlocked, on a
 * thread that holds a transaction, and gives up when a reader does not end;
 * readers on other threads keep reading through the remaps. */
#define _GNU_SOURCE
#include "tisfs/lmdb_map.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "check.h"
#include "tisfs/gen.h"
#include "tisfs/util.h"

static MDB_env *tiny_env(char *dir, struct lmdb_map *m, MDB_dbi *dbi)
{
    MDB_env *env;
    MDB_txn *txn;
    strcpy(dir, "/tmp/tisfs-test-map-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    CHECK(mdb_env_create(&env) == 0);
    lmdb_map_init(m, env, (size_t)64 << 10);
    CHECK(mdb_env_open(env, dir, MDB_NOTLS | MDB_NOSYNC, 0600) == 0);
    lmdb_map_opened(m);
    CHECK(lmdb_map_begin(m, 0, &txn, NULL) == 0);
    CHECK(mdb_dbi_open(txn, NULL, 0, dbi) == 0);
    CHECK(lmdb_map_commit(m, txn) == 0);
    return env;
}

/* One put, grown into: what a writer of the daemon does. */
static int put_growing(struct lmdb_map *m, MDB_dbi dbi, unsigned i, unsigned *grew)
{
    char key[16], val[1000];
    snprintf(key, sizeof key, "%08u", i);
    memset(val, 'a' + (int)(i % 26), sizeof val);
    MDB_val k = {strlen(key), key}, v = {sizeof val, val};
    for (;;) {
        MDB_txn *txn;
        size_t seen, now;
        int rc = lmdb_map_begin(m, 0, &txn, &seen);
        if (rc)
            return rc;
        rc = mdb_put(txn, dbi, &k, &v, 0);
        if (rc) {
            lmdb_map_end(m, txn);
        } else
            rc = lmdb_map_commit(m, txn);
        if (rc != MDB_MAP_FULL)
            return rc;
        if ((rc = lmdb_map_grow(m, seen, &now)) != 0)
            return rc;
        CHECK(now > seen);
        (*grew)++;
    }
}

static void test_grow_and_retry(void)
{
    char dir[64];
    struct lmdb_map m;
    MDB_dbi dbi;
    MDB_env *env = tiny_env(dir, &m, &dbi);
    size_t first = m.size;
    unsigned grew = 0;
    for (unsigned i = 0; i < 2000; i++)
        CHECK_INT(put_growing(&m, dbi, i, &grew), 0);
    CHECK(grew >= 4); /* 64 KiB to at least 2 MiB of values */
    CHECK(m.size >= first << grew);
    MDB_txn *txn;
    MDB_stat st;
    CHECK(lmdb_map_begin(&m, MDB_RDONLY, &txn, NULL) == 0);
    CHECK(mdb_stat(txn, dbi, &st) == 0);
    CHECK_INT(st.ms_entries, 2000);
    /* A thread holding a transaction would wait for itself: refused. */
    size_t now;
    CHECK_INT(lmdb_map_grow(&m, m.size, &now), EDEADLK);
    lmdb_map_end(&m, txn);
    mdb_env_close(env);
    lmdb_map_destroy(&m);
    /* The grown size outlives the process: the meta page records it. */
    CHECK(mdb_env_create(&env) == 0);
    CHECK(mdb_env_open(env, dir, MDB_NOTLS, 0600) == 0);
    MDB_envinfo info;
    mdb_env_info(env, &info);
    CHECK(info.me_mapsize >= first << grew);
    mdb_env_close(env);
    rm_rf(dir);
}

static long rss_file_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "RssFile:", 8) == 0)
            kb = atol(line + 8);
    if (f)
        fclose(f);
    return kb;
}

/* Reads far apart in a map (what a stream's pk lookups do) map the pages
 * read, not the page cache's pages around each one, also after the map
 * grew (it is mapped again, and registered again). Fails without the
 * registration: each read then maps ~64 KB. */
static void test_exact_faults(void)
{
    char dir[64];
    struct lmdb_map m;
    MDB_dbi dbi;
    MDB_env *env = tiny_env(dir, &m, &dbi);
    unsigned grew = 0;
    char key[16];
    for (unsigned i = 0; i < 20000; i++)
        CHECK_INT(put_growing(&m, dbi, i, &grew), 0);
    CHECK(grew > 0);
    if (!lmdb_map_faults_exact(&m)) {
        /* Required where the kernel has it (6.7) and allows userfaultfd. */
        struct utsname u;
        int major = 0, minor = 0, fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | 1);
        uname(&u);
        sscanf(u.release, "%d.%d", &major, &minor);
        CHECK(fd < 0 || major < 6 || (major == 6 && minor < 7) || getenv("TISFS_FAULT_AROUND"));
        if (fd >= 0)
            close(fd);
        printf("test_exact_faults: skipped (no asynchronous userfaultfd here)\n");
    } else {
        lmdb_map_release_pages(&m);
        MDB_txn *txn;
        CHECK(lmdb_map_begin(&m, MDB_RDONLY, &txn, NULL) == 0);
        long before = rss_file_kb();
        for (unsigned i = 0; i < 20000; i += 100) {
            snprintf(key, sizeof key, "%08u", i);
            MDB_val k = {strlen(key), key}, v;
            CHECK(mdb_get(txn, dbi, &k, &v) == 0);
        }
        long grown = rss_file_kb() - before;
        lmdb_map_end(&m, txn);
        /* 200 leaves and a few branch pages: ~800 KB; ~12 MB mapped around */
        if (grown >= 200 * 12)
            printf("test_exact_faults: 200 reads mapped %ld KB\n", grown);
        CHECK(grown < 200 * 12);
    }
    mdb_env_close(env);
    lmdb_map_destroy(&m);
    rm_rf(dir);
}

struct holder {
    struct lmdb_map *m;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool holding, release;
};

static void *hold_read(void *arg)
{
    struct holder *h = arg;
    MDB_txn *txn;
    CHECK(lmdb_map_begin(h->m, MDB_RDONLY, &txn, NULL) == 0);
    pthread_mutex_lock(&h->mu);
    h->holding = true;
    pthread_cond_broadcast(&h->cv);
    while (!h->release)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    lmdb_map_end(h->m, txn);
    return NULL;
}

/* A reader that does not end (a verify pass) makes the grower give up
 * after LMDB_GROW_WAIT_SEC, so that queries queued behind it go on. */
static void test_busy_reader(void)
{
    char dir[64];
    struct lmdb_map m;
    MDB_dbi dbi;
    MDB_env *env = tiny_env(dir, &m, &dbi);
    struct holder h = {&m, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false};
    pthread_t t;
    pthread_create(&t, NULL, hold_read, &h);
    pthread_mutex_lock(&h.mu);
    while (!h.holding)
        pthread_cond_wait(&h.cv, &h.mu);
    pthread_mutex_unlock(&h.mu);
    size_t now, was = m.size;
    double t0 = mono_now();
    CHECK_INT(lmdb_map_grow(&m, m.size, &now), EBUSY);
    CHECK(mono_now() - t0 < LMDB_GROW_WAIT_SEC + 1.0);
    CHECK(m.size == was);
    pthread_mutex_lock(&h.mu);
    h.release = true;
    pthread_cond_broadcast(&h.cv);
    pthread_mutex_unlock(&h.mu);
    pthread_join(t, NULL);
    CHECK_INT(lmdb_map_grow(&m, m.size, &now), 0);
    CHECK(now == 2 * was);
    /* Another writer grew it since this one's transaction began: no second
     * doubling. */
    CHECK_INT(lmdb_map_grow(&m, was, &now), 0);
    CHECK(now == 2 * was);
    mdb_env_close(env);
    lmdb_map_destroy(&m);
    rm_rf(dir);
}

/* ---- a serving generation ---- */

static struct tis_schema *schema(void)
{
    const char *js = "{\"fields\":["
                     "{\"name\":\"id\",\"type\":\"int\",\"token\":\"string\",\"search\":true,\"store\":true,\"pk\":true},"
                     "{\"name\":\"title\",\"type\":\"string\",\"token\":\"ik\",\"search\":true,\"store\":true}],"
                     "\"primaryKey\":[\"id\"]}";
    struct json_object *o = json_tokener_parse(js);
    struct tis_schema *s = schema_from_json(o);
    json_object_put(o);
    return s;
}

struct reading {
    struct gen *g;
    atomic_bool stop;
    unsigned long reads, bad;
};

/* Reads while the map grows under it: each read transaction sees a
 * consistent set of documents. */
static void *reader(void *arg)
{
    struct reading *r = arg;
    struct tis_value vals[2];
    while (!atomic_load(&r->stop)) {
        MDB_txn *txn;
        struct gen_stats st;
        if (gen_txn_begin(r->g, &txn)) {
            r->bad++;
            continue;
        }
        gen_stats_read(r->g, txn, &st);
        for (uint32_t id = st.last_id; id > 0 && id + 50 > st.last_id; id--)
            if (gen_doc_values(r->g, txn, id, vals) && (vals[1].len < 9 || vals[1].p[0] != 'w'))
                r->bad++;
        gen_stats_free(&st);
        gen_txn_end(r->g, txn);
        r->reads++;
    }
    return NULL;
}

static void test_generation_grows(void)
{
    char dir[64], path[128], err[256];
    setenv("TISFS_LMDB_MAP_MIN", "64k", 1);
    strcpy(dir, "/tmp/tisfs-test-map-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/gen", dir);
    struct tis_schema *sc = schema();
    struct analysis_opts o = {0, 0};
    struct gen_builder *b = gen_builder_open(path, sc, &o, err, sizeof err);
    struct tis_value v[2] = {{"0", 1, false}, {"word zero", 9, false}};
    CHECK(gen_builder_add(b, v, err, sizeof err) == 0);
    CHECK(gen_builder_finish(b, NULL, err, sizeof err) == 0);
    gen_builder_free(b);
    struct gen *g = gen_open(path, err, sizeof err);
    CHECK(g != NULL);
    size_t first = gen_map_size(g);
    CHECK(first < ((size_t)1 << 20));
    struct reading rd = {.g = g};
    atomic_init(&rd.stop, false);
    pthread_t t;
    pthread_create(&t, NULL, reader, &rd);
    struct analyzer *an = analyzer_new(err, sizeof err);
    unsigned grew = 0;
    char id[16], title[200];
    static const bool all[2] = {true, true};
    for (unsigned batch = 0; batch < 40; batch++) {
        int rc;
        do { /* incr_apply_batch's loop */
            struct gen_writer *w = gen_write_begin(g, an, err, sizeof err);
            CHECK(w != NULL);
            rc = 0;
            for (unsigned i = 0; i < 100 && !rc; i++) {
                unsigned n = batch * 100 + i + 1;
                enum gen_outcome out;
                snprintf(id, sizeof id, "%u", n);
                snprintf(title, sizeof title, "word%u alpha%u beta%u gamma%u delta %u epsilon",
                         n, n % 97, n % 13, n / 7, n);
                struct tis_value vals[2] = {{id, strlen(id), false}, {title, strlen(title), false}};
                rc = gen_write_upsert(w, vals, all, (struct version){VER_TSO, n}, &out, err,
                                      sizeof err);
            }
            rc = rc ? gen_write_abort(w) : gen_write_commit(w, NULL, err, sizeof err);
            grew += rc == GEN_GREW;
        } while (rc == GEN_GREW);
        CHECK_INT(rc, 0);
    }
    atomic_store(&rd.stop, true);
    pthread_join(t, NULL);
    CHECK(grew >= 3);
    CHECK(gen_map_size(g) >= first << 3);
    CHECK_INT(gen_doc_count(g), 4001);
    CHECK(rd.reads > 0);
    CHECK_INT(rd.bad, 0);
    /* Ahead of need: grown while more than half is used, then not again. */
    size_t before = gen_map_size(g), now = 0;
    int ahead;
    while ((ahead = gen_grow_ahead(g, &now)) == 1)
        CHECK(now == gen_map_size(g) && now > before);
    CHECK_INT(ahead, 0);
    analyzer_free(an);
    gen_unref(g);
    /* Open again: at least twice the file, no smaller than it grew to
     * minus what the file does not use. */
    g = gen_open(path, err, sizeof err);
    CHECK(g != NULL);
    CHECK(gen_map_size(g) >= 2 * lmdb_file_size(path) - 4096);
    CHECK_INT(gen_doc_count(g), 4001);
    gen_unref(g);
    schema_free(sc);
    rm_rf(dir);
    unsetenv("TISFS_LMDB_MAP_MIN");
}

int main(void)
{
    test_grow_and_retry();
    test_exact_faults();
    test_busy_reader();
    test_generation_grows();
    return check_summary();
}
