/* tisfs-dump — prints the documents of a collection's serving generation,
 * one JSON object per line, typed as the collection stores them. Reads the
 * state directory directly (LMDB allows readers beside the running daemon),
 * so it is a debugging and export tool as much as a test fixture. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    "usage: tisfs-dump --data DIR COLLECTION\n"
    "\n"
    "Prints every document of COLLECTION's serving generation, one JSON object\n"
    "per line, from the state directory DIR of a tisfs daemon (its --data).\n"
    "It reads only, and may run while the daemon runs.\n";

int main(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (argc != 4 || strcmp(argv[1], "--data") != 0) {
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
    struct gen *gen = gen_open(path, err, sizeof err);
    if (!gen) {
        fprintf(stderr, "tisfs-dump: %s\n", err);
        return 1;
    }
    gen_each_doc(gen, print_doc, NULL);
    gen_unref(gen);
    return 0;
}
