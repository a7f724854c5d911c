/* tisfs-dump — prints the documents of a collection's serving generation,
 * one JSON object per line, typed as the collection stores them. Reads the
 * state directory directly (LMDB allows readers beside the running daemon),
 * so it is a debugging and export tool as much as a test fixture. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lmdb.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "tisfs/catalog.h"
#include "tisfs/gen.h"

static int print_doc(struct json_object *doc, void *arg)
{
    (void)arg;
    puts(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
    return 0;
}

static const char USAGE[] =
    "usage: tisfs-dump --data DIR COLLECTION [--sizes]\n"
    "\n"
    "Prints every document of COLLECTION's serving generation, one JSON object\n"
    "per line, from the state directory DIR of a tisfs daemon (its --data).\n"
    "With --sizes, prints instead the bytes of pages each of the generation's\n"
    "databases takes (name, entries, bytes; one a line; `docs` and `pk` hold\n"
    "the stored documents, the rest is the index).\n"
    "It reads only, and may run while the daemon runs.\n";

/* Pages by database, as mdb_stat -a counts them. */
static int print_sizes(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi main_db, dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    MDB_stat st;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 64);
    mdb_env_set_mapsize(env, (size_t)1 << 40);
    if (mdb_env_open(env, dir, MDB_RDONLY, 0) || mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) ||
        mdb_dbi_open(txn, NULL, 0, &main_db) || mdb_cursor_open(txn, main_db, &cur)) {
        fprintf(stderr, "tisfs-dump: cannot read %s\n", dir);
        mdb_env_close(env);
        return 1;
    }
    mdb_env_stat(env, &st);
    size_t page = st.ms_psize;
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)k.mv_size, (const char *)k.mv_data);
        if (mdb_dbi_open(txn, name, 0, &dbi) || mdb_stat(txn, dbi, &st))
            continue;
        printf("%s %zu %zu\n", name, st.ms_entries,
               (st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) * page);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(USAGE, stdout);
        return 0;
    }
    bool sizes = argc == 5 && strcmp(argv[4], "--sizes") == 0;
    if ((argc != 4 && !sizes) || strcmp(argv[1], "--data") != 0) {
        fputs(USAGE, stderr);
        return 2;
    }
    char path[4096], err[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/catalog", argv[2]);
    if (stat(path, &sb) != 0) { /* a reader creates nothing */
        fprintf(stderr, "tisfs-dump: %s holds no tisfs state (no catalog)\n", argv[2]);
        return 1;
    }
    struct catalog *cat = cat_open(path, err, sizeof err);
    if (!cat) {
        fprintf(stderr, "tisfs-dump: %s\n", err);
        return 1;
    }
    char *rec = cat_coll_get(cat, argv[3]);
    cat_close(cat);
    struct json_object *o = rec ? json_tokener_parse(rec) : NULL, *g;
    free(rec);
    if (!o || !json_object_object_get_ex(o, "generation", &g) || !json_object_get_int64(g)) {
        fprintf(stderr, "tisfs-dump: collection %s %s\n", argv[3],
                o ? "has no generation yet" : "not found");
        json_object_put(o);
        return 1;
    }
    snprintf(path, sizeof path, "%s/collections/%s/gen-%lld", argv[2], argv[3],
             (long long)json_object_get_int64(g));
    json_object_put(o);
    if (sizes)
        return print_sizes(path);
    struct gen *gen = gen_open(path, err, sizeof err);
    if (!gen) {
        fprintf(stderr, "tisfs-dump: %s\n", err);
        return 1;
    }
    gen_each_doc(gen, print_doc, NULL);
    gen_unref(gen);
    return 0;
}
