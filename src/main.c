/* main — command line, start-up, shutdown. */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <errno.h>
#include <fuse.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tisfs/api.h"
#include "tisfs/catalog.h"
#include "tisfs/fs.h"
#include "tisfs/util.h"

#ifndef TISFS_VERSION
#define TISFS_VERSION "0.1.0"
#endif

static void usage(FILE *out)
{
    fputs("usage: tisfs [options] MOUNTPOINT\n"
          "\n"
          "Mounts the tisfs control filesystem: write a JSON spec to\n"
          "MOUNTPOINT/collections/NAME/create and tisfs dumps the table into a\n"
          "collection; status and logs show the build.\n"
          "\n"
          "options:\n"
          "  --data DIR        state directory (default $XDG_STATE_HOME/tisfs,\n"
          "                    else ~/.local/state/tisfs)\n"
          "  -f                stay in the foreground\n"
          "  -d                debug: foreground, FUSE requests traced on stderr\n"
          "  -o OPTIONS        FUSE mount options (e.g. allow_other)\n"
          "  --help            this text\n"
          "  --version         print the version\n"
          "\n"
          "Stop with SIGTERM/SIGINT or `fusermount3 -u MOUNTPOINT`: running builds are\n"
          "recorded as interrupted and the collections keep serving their last complete\n"
          "generation.\n",
          out);
}

struct options {
    const char *data;
    const char *mountpoint;
    bool foreground, debug;
    struct fuse_args fuse;
};

static char *default_data_dir(void)
{
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    char *d = NULL;
    if (xdg && *xdg)
        asprintf(&d, "%s/tisfs", xdg);
    else
        asprintf(&d, "%s/.local/state/tisfs", home && *home ? home : ".");
    return d;
}

/* Returns 0 to go on, 1 to exit successfully, 2 on a usage error. */
static int parse_args(int argc, char **argv, struct options *o)
{
    fuse_opt_add_arg(&o->fuse, argv[0]);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(a, "--version") || !strcmp(a, "-V")) {
            printf("tisfs %s\n", TISFS_VERSION);
            return 1;
        } else if (!strcmp(a, "-f"))
            o->foreground = true;
        else if (!strcmp(a, "-d"))
            o->foreground = o->debug = true;
        else if (!strcmp(a, "--data") && i + 1 < argc)
            o->data = argv[++i];
        else if (!strncmp(a, "--data=", 7))
            o->data = a + 7;
        else if (!strcmp(a, "-o") && i + 1 < argc) {
            fuse_opt_add_arg(&o->fuse, "-o");
            fuse_opt_add_arg(&o->fuse, argv[++i]);
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "tisfs: unknown or incomplete option %s (see --help)\n", a);
            return 2;
        } else if (!o->mountpoint)
            o->mountpoint = a;
        else {
            fprintf(stderr, "tisfs: one MOUNTPOINT only, got %s and %s\n", o->mountpoint, a);
            return 2;
        }
    }
    if (!o->mountpoint) {
        usage(stderr);
        return 2;
    }
    if (o->debug)
        fuse_opt_add_arg(&o->fuse, "-d");
    return 0;
}

/* Creates the data directory and opens its catalog once, so that a bad
 * --data is reported here, on the terminal, before the daemon detaches. */
static char *prepare_data_dir(const char *data)
{
    char *dir = data ? xstrdup(data) : default_data_dir(), err[512], *abs, cat[PATH_MAX + 16];
    int rc = mkdir_p(dir, 0700);
    if (rc || !(abs = realpath(dir, NULL))) {
        fprintf(stderr, "tisfs: --data %s: %s\n", dir, strerror(rc ? -rc : errno));
        free(dir);
        return NULL;
    }
    free(dir);
    snprintf(cat, sizeof cat, "%s/catalog", abs);
    struct catalog *c = cat_open(cat, err, sizeof err);
    if (!c) {
        fprintf(stderr, "tisfs: %s\n", err);
        free(abs);
        return NULL;
    }
    cat_close(c);
    return abs;
}

int main(int argc, char **argv)
{
    struct options o = {.fuse = FUSE_ARGS_INIT(0, NULL)};
    int rc = parse_args(argc, argv, &o);
    if (rc) {
        fuse_opt_free_args(&o.fuse);
        return rc == 1 ? 0 : 2;
    }
    char *data = prepare_data_dir(o.data), err[512];
    if (!data)
        return 1;
    struct fuse *f = fuse_new(&o.fuse, fs_operations(), sizeof(struct fuse_operations), NULL);
    if (!f || fuse_mount(f, o.mountpoint) != 0) {
        fprintf(stderr, "tisfs: cannot mount %s\n", o.mountpoint);
        return 1;
    }
    /* Detach before opening LMDB: an environment must not cross a fork. */
    fuse_daemonize(o.foreground);
    if (api_init(data, err, sizeof err)) {
        fprintf(stderr, "tisfs: %s\n", err);
        fuse_unmount(f);
        fuse_destroy(f);
        return 1;
    }
    fuse_set_signal_handlers(fuse_get_session(f));
    rc = fuse_loop_mt(f, 0);
    fuse_remove_signal_handlers(fuse_get_session(f));
    fuse_unmount(f);
    api_shutdown();
    fuse_destroy(f);
    fuse_opt_free_args(&o.fuse);
    free(data);
    /* libfuse reports the signal that ended the loop as a positive value: a
     * SIGTERM/SIGINT stop is a clean one. */
    return rc < 0 ? 1 : 0;
}
