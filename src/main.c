/* main — command line and the daemon's lifecycle:
 *   check --data, bind --http (errors on the terminal) -> mount -> detach
 *   -> api_init -> start the HTTP listener -> wait (the FUSE loop, or a
 *   signal without a mount) -> stop the listener -> unmount -> api_shutdown. */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <errno.h>
#include <fuse.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tisfs/api.h"
#include "tisfs/fs.h"
#include "tisfs/http.h"
#include "tisfs/util.h"

#ifndef TISFS_VERSION
#define TISFS_VERSION "0.1.0"
#endif

static void usage(FILE *out)
{
    fputs("usage: tisfs [options] MOUNTPOINT\n"
          "       tisfs --no-mount --http [ADDR:]PORT [options]\n"
          "\n"
          "Mounts the tisfs control filesystem: write a JSON spec to\n"
          "MOUNTPOINT/collections/NAME/create and tisfs dumps the table into a\n"
          "collection; status and logs show the build, select/ answers queries.\n"
          "With --http the same handlers answer over HTTP: the REST API\n"
          "(POST /solr/config/config.ajax?action=collection_action&emethod=M),\n"
          "Solr's /solr/NAME/select and /solr/NAME/admin/ping,\n"
          "/solr/admin/cores?action=STATUS and /metrics (Prometheus).\n"
          "\n"
          "options:\n"
          "  --data DIR          state directory (default $XDG_STATE_HOME/tisfs,\n"
          "                      else ~/.local/state/tisfs)\n"
          "  --http [ADDR:]PORT  also serve HTTP on ADDR:PORT (ADDR defaults to\n"
          "                      127.0.0.1; [::1]:PORT for IPv6)\n"
          "  --token-file FILE   HTTP requests need 'Authorization: Bearer TOKEN',\n"
          "                      TOKEN being FILE's first line (401 otherwise)\n"
          "  --no-mount          no filesystem: serve HTTP only (needs --http)\n"
          "  -f                  stay in the foreground\n"
          "  -d                  debug: foreground, FUSE requests traced on stderr\n"
          "  -o OPTIONS          FUSE mount options (e.g. allow_other)\n"
          "  --help              this text\n"
          "  --version           print the version\n"
          "\n"
          "files (refusals say why in MOUNTPOINT/logs):\n"
          "  logs                         the mount-wide log: start, stop, every refusal\n"
          "  collections/                 mkdir NAME ([A-Za-z0-9_-]{1,64}; EINVAL,\n"
          "                               ENAMETOOLONG, EEXIST)\n"
          "  collections/N/create         write a spec: the first build (EEXIST once\n"
          "                               built, EBUSY while a task runs, EINVAL bad spec)\n"
          "  collections/N/build          write anything: rebuild; a spec: rebuild with it\n"
          "                               (EBUSY, EINVAL)\n"
          "  collections/N/incr           write a channel spec (EEXIST, EINVAL)\n"
          "  collections/N/status         the latest task (JSON)\n"
          "  collections/N/progress       one line for watch -n1 cat\n"
          "  collections/N/logs           every task's lines; tail -f follows rebuilds\n"
          "  collections/N/incr_status    the channel (JSON)\n"
          "  collections/N/schema         fields, types, tokens, documents (JSON)\n"
          "  collections/N/select/QUERY   Solr's answer to QUERY (q=...&rows=...)\n"
          "  tasks/ID/status, tasks/ID/logs   any task\n"
          "  rm -r collections/N          deletes the collection and its channel\n"
          "Read-only files refuse writes with EACCES.\n"
          "\n"
          "Stop with SIGTERM/SIGINT or `fusermount3 -u MOUNTPOINT`: running builds are\n"
          "recorded as interrupted and the collections keep serving their last complete\n"
          "generation. examples/tisfs.service runs tisfs under systemd.\n",
          out);
}

struct options {
    const char *data, *mountpoint, *http, *token_file;
    bool foreground, debug, no_mount;
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

/* "--name VALUE" or "--name=VALUE": stores VALUE and advances *i. */
static bool opt_value(int argc, char **argv, int *i, const char *name, const char **v)
{
    size_t n = strlen(name);
    if (strcmp(argv[*i], name) == 0 && *i + 1 < argc) {
        *v = argv[++*i];
        return true;
    }
    if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=') {
        *v = argv[*i] + n + 1;
        return true;
    }
    return false;
}

static int usage_error(const char *fmt, const char *a)
{
    fprintf(stderr, "tisfs: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, " (see --help)\n");
    return 2;
}

/* Returns 0 to go on, 1 to exit successfully, 2 on a usage error. */
static int parse_args(int argc, char **argv, struct options *o)
{
    fuse_opt_add_arg(&o->fuse, argv[0]);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
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
        else if (!strcmp(a, "--no-mount"))
            o->no_mount = true;
        else if (opt_value(argc, argv, &i, "--data", &v))
            o->data = v;
        else if (opt_value(argc, argv, &i, "--http", &v))
            o->http = v;
        else if (opt_value(argc, argv, &i, "--token-file", &v))
            o->token_file = v;
        else if (!strcmp(a, "-o") && i + 1 < argc) {
            fuse_opt_add_arg(&o->fuse, "-o");
            fuse_opt_add_arg(&o->fuse, argv[++i]);
        } else if (a[0] == '-' && a[1])
            return usage_error("unknown or incomplete option %s", a);
        else if (!o->mountpoint)
            o->mountpoint = a;
        else
            return usage_error("one MOUNTPOINT only, got a second: %s", a);
    }
    if (o->no_mount && !o->http)
        return usage_error("%s needs --http: without a mount nothing would be served",
                           "--no-mount");
    if (o->no_mount && o->mountpoint)
        return usage_error("--no-mount takes no MOUNTPOINT, got %s", o->mountpoint);
    if (o->token_file && !o->http)
        return usage_error("%s only applies to the HTTP listener (--http)", "--token-file");
    if (!o->no_mount && !o->mountpoint) {
        usage(stderr);
        return 2;
    }
    if (o->debug)
        fuse_opt_add_arg(&o->fuse, "-d");
    return 0;
}

/* Without a mount the main thread waits for a signal. SIGTERM and SIGINT
 * are blocked before any thread starts (threads inherit the mask), so
 * sigwait here is the only place they arrive. */
static void block_stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

struct daemon {
    struct options o;
    char *data, *token;
    int http_fd;
    struct fuse *fuse;
    struct http_server *http;
};

/* Everything that can fail on the user's terminal, before detaching. */
static int prepare(struct daemon *d)
{
    struct stat sb;
    errno = 0;
    /* A command that fails creates nothing: check the mountpoint first. */
    if (!d->o.no_mount && (stat(d->o.mountpoint, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        return fprintf(stderr, "tisfs: mountpoint %s: %s\n", d->o.mountpoint,
                       errno ? strerror(errno) : "not a directory"), 1;
    char err[512], *dir = d->o.data ? xstrdup(d->o.data) : default_data_dir();
    enum api_status st = api_check_data_dir(dir, &d->data, err, sizeof err);
    free(dir);
    if (st)
        return fprintf(stderr, "tisfs: %s\n", err), 1;
    if (d->o.token_file && !(d->token = http_read_token(d->o.token_file, err, sizeof err)))
        return fprintf(stderr, "tisfs: %s\n", err), 1;
    if (d->o.http && (d->http_fd = http_listen(d->o.http, err, sizeof err)) < 0)
        return fprintf(stderr, "tisfs: %s\n", err), 1;
    if (d->o.no_mount)
        return 0;
    d->fuse = fuse_new(&d->o.fuse, fs_operations(), sizeof(struct fuse_operations), NULL);
    if (!d->fuse || fuse_mount(d->fuse, d->o.mountpoint) != 0)
        return fprintf(stderr, "tisfs: cannot mount %s\n", d->o.mountpoint), 1;
    return 0;
}

/* Serves until a signal or an unmount. Returns the exit status. */
static int serve(struct daemon *d)
{
    sigset_t stop;
    if (d->o.no_mount)
        block_stop_signals(&stop);
    char err[512];
    if (api_init(d->data, err, sizeof err))
        return fprintf(stderr, "tisfs: %s\n", err), 1;
    int rc = 0;
    if (d->o.http && !(d->http = http_start(d->http_fd, d->token, err, sizeof err))) {
        fprintf(stderr, "tisfs: %s\n", err);
        rc = 1;
    } else if (d->fuse) {
        fuse_set_signal_handlers(fuse_get_session(d->fuse));
        /* libfuse reports the signal that ended the loop as a positive
         * value: a SIGTERM/SIGINT stop is a clean one. */
        rc = fuse_loop_mt(d->fuse, 0) < 0;
        fuse_remove_signal_handlers(fuse_get_session(d->fuse));
    } else {
        int sig;
        sigwait(&stop, &sig);
    }
    if (d->http) {
        http_stop(d->http); /* closes the socket it took over */
        d->http_fd = -1;
    }
    if (d->fuse)
        fuse_unmount(d->fuse);
    api_shutdown();
    return rc;
}

/* glibc maps each block of 128 KB or more on its own and gives the free top
 * of a heap back to the kernel beyond 128 KB: a channel's batch arrays
 * (tens of MB, freed and allocated again every batch) and librdkafka's
 * decompression buffers were returned and faulted in again page by page,
 * each fault a trip to the hypervisor on a VM: a fifth of a catch-up's CPU
 * time here. Kept in the heaps, they are reused; the channel gives free
 * memory back when its stream is not far behind (incr.c).
 *
 * Arenas: glibc makes up to 8 a core, and each keeps the free memory of the
 * threads that use it (librdkafka's fetch buffers, freed by the decoding
 * thread, sat in an arena of their own). A channel's resident-set budget
 * gives what the heaps hold less of to mapped pages: 1M canal-json events
 * caught up at 64.5k events/s with glibc's arenas, 67.5-71.0k with 4 on 2
 * cores, 79.9-84.1k with 2, 80.6-88.3k with 1; but with 1, 8-client queries
 * ran 25 % slower (722-868 queries/s against 1 088-1 290), with 2 ~10 %
 * (977-1 124), at the same single-client latency. One a core, at least 2. */
static void tune_malloc(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_ARENA_MAX, cores > 2 ? (int)cores : 2);
}

int main(int argc, char **argv)
{
    struct daemon d = {.o = {.fuse = FUSE_ARGS_INIT(0, NULL)}, .http_fd = -1};
    tune_malloc();
    int rc = parse_args(argc, argv, &d.o);
    if (rc) {
        fuse_opt_free_args(&d.o.fuse);
        return rc == 1 ? 0 : 2;
    }
    rc = prepare(&d);
    if (rc == 0) {
        /* Detach before opening LMDB or starting threads: neither survives
         * a fork. */
        fuse_daemonize(d.o.foreground);
        rc = serve(&d);
    }
    if (d.fuse)
        fuse_destroy(d.fuse);
    if (d.http_fd >= 0)
        close(d.http_fd);
    fuse_opt_free_args(&d.o.fuse);
    free(d.data);
    free(d.token);
    return rc;
}
