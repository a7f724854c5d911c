/* fs — the FUSE adapter: paths -> api calls. It holds no logic of its own:
 * it maps the mount layout onto api.h and error codes back to errno.
 *
 * Reads are snapshots: open renders the file once and reads serve that copy,
 * so a reader never sees half a JSON. `logs` is the exception that makes
 * `tail -f` work: a read past the end of the copy renders again (a log only
 * grows, so earlier offsets stay valid). A write to `create` or `build` is
 * collected and acted on at close (flush), so the error of a bad spec comes
 * back from close(2). */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include "tisfs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tisfs/api.h"
#include "tisfs/rjson.h"
#include "tisfs/util.h"

/* The api's statuses as errno, negated as FUSE wants them. */
static int to_errno(enum api_status st)
{
    switch (st) {
    case API_OK:
        return 0;
    case API_INVALID:
        return -EINVAL;
    case API_NAME_TOO_LONG:
        return -ENAMETOOLONG;
    case API_NOT_FOUND:
        return -ENOENT;
    case API_EXISTS:
        return -EEXIST;
    case API_BUSY:
        return -EBUSY;
    case API_NOT_READY:
        return -EAGAIN;
    case API_FAILED:
        break;
    }
    return -EIO;
}

/* Largest spec or build request accepted through a write. */
#define MAX_WRITE (1 << 20)

enum node {
    N_NONE, N_ROOT, N_ROOT_LOGS, N_COLLS, N_COLL, N_COLL_FILE, N_TASKS, N_TASK, N_TASK_FILE,
    N_SELECT,      /* collections/N/select/ */
    N_SELECT_FILE, /* collections/N/select/QUERY */
};

enum file { F_CREATE, F_STATUS, F_LOGS, F_SCHEMA, F_BUILD, F_INCR, F_INCR_STATUS, F_PROGRESS,
            F_VERIFY, F_COUNT };

static const struct {
    const char *name;
    enum api_doc doc;
    bool readable, writable, in_task_dir;
} files[F_COUNT] = {
    [F_CREATE] = {"create", DOC_CREATE, true, true, false},
    [F_STATUS] = {"status", DOC_STATUS, true, false, true},
    [F_LOGS] = {"logs", DOC_LOGS, true, false, true},
    [F_SCHEMA] = {"schema", DOC_SCHEMA, true, false, false},
    [F_BUILD] = {"build", DOC_STATUS, false, true, false},
    [F_INCR] = {"incr", DOC_INCR, true, true, false},
    [F_INCR_STATUS] = {"incr_status", DOC_INCR_STATUS, true, false, false},
    [F_PROGRESS] = {"progress", DOC_PROGRESS, true, false, false},
    [F_VERIFY] = {"verify", DOC_VERIFY, true, true, false},
};

struct node_path {
    enum node kind;
    char name[TIS_NAME_MAX + 1]; /* collection */
    uint64_t task;
    enum file file;
    char query[256]; /* N_SELECT_FILE */
};

static bool lookup_file(const char *s, bool task_dir, enum file *f)
{
    for (int i = 0; i < F_COUNT; i++)
        if (strcmp(s, files[i].name) == 0 && (!task_dir || files[i].in_task_dir)) {
            *f = (enum file)i;
            return true;
        }
    return false;
}

static bool parse_task_id(const char *s, uint64_t *id)
{
    char *end;
    if (*s < '1' || *s > '9')
        return false;
    *id = strtoull(s, &end, 10);
    return *end == 0;
}

/* Splits a path into at most three components and classifies it. Existence
 * of the collection or task is checked by the caller. */
static struct node_path parse(const char *path)
{
    struct node_path p = {N_NONE, "", 0, F_CREATE, ""};
    char part[4][256];
    int n = 0;
    for (const char *s = path; *s && n <= 4;) {
        while (*s == '/')
            s++;
        if (!*s)
            break;
        size_t len = strcspn(s, "/");
        if (n == 4 || len >= sizeof part[0])
            return p;
        memcpy(part[n], s, len);
        part[n++][len] = 0;
        s += len;
    }
    bool colls = n >= 1 && strcmp(part[0], "collections") == 0;
    bool tasks = n >= 1 && strcmp(part[0], "tasks") == 0;
    if (n >= 2 && colls && api_check_name(part[1], NULL) != API_OK)
        return p;
    if (n >= 2 && colls)
        snprintf(p.name, sizeof p.name, "%.*s", TIS_NAME_MAX, part[1]);
    if (n >= 2 && tasks && !parse_task_id(part[1], &p.task))
        return p;
    if (n >= 3 && colls && strcmp(part[2], "select") == 0) {
        p.kind = n == 3 ? N_SELECT : N_SELECT_FILE;
        if (n == 4)
            snprintf(p.query, sizeof p.query, "%s", part[3]);
        return p;
    }
    if (n == 4)
        return p;
    if (n == 0)
        p.kind = N_ROOT;
    else if (n == 1)
        p.kind = colls ? N_COLLS : tasks ? N_TASKS : !strcmp(part[0], "logs") ? N_ROOT_LOGS : N_NONE;
    else if (n == 2)
        p.kind = colls ? N_COLL : tasks ? N_TASK : N_NONE;
    else if ((colls || tasks) && lookup_file(part[2], tasks, &p.file))
        p.kind = colls ? N_COLL_FILE : N_TASK_FILE;
    return p;
}

static bool exists(const struct node_path *p)
{
    switch (p->kind) {
    case N_ROOT:
    case N_ROOT_LOGS:
    case N_COLLS:
    case N_TASKS:
        return true;
    case N_COLL:
    case N_COLL_FILE:
    case N_SELECT:
    case N_SELECT_FILE:
        return api_collection_exists(p->name);
    case N_TASK:
    case N_TASK_FILE:
        return api_task_exists(p->task);
    default:
        return false;
    }
}

/* Renders a readable file into out. A select file always reads: a bad
 * query or a collection not built yet is Solr's error document, the file's
 * content (HTTP sends the same document with its status code). */
static int render(const struct node_path *p, struct tbuf *out)
{
    if (p->kind == N_ROOT_LOGS) {
        api_daemon_log(out);
        return 0;
    }
    if (p->kind == N_SELECT_FILE) {
        enum api_status st = api_select(p->name, p->query, out);
        return st == API_NOT_FOUND ? -ENOENT : 0;
    }
    if (!files[p->file].readable)
        return 0;
    if (p->kind == N_TASK_FILE)
        return to_errno(api_task_read(p->task, files[p->file].doc, out));
    return to_errno(api_read(p->name, files[p->file].doc, out));
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    (void)fi;
    struct node_path p = parse(path);
    if (!exists(&p))
        return -ENOENT;
    memset(st, 0, sizeof *st);
    st->st_uid = getuid();
    st->st_gid = getgid();
    st->st_mtime = st->st_ctime = st->st_atime = time(NULL);
    if (p.kind == N_SELECT_FILE) {
        /* Answering a query to learn its size would run it twice: report 0
         * and let reads (direct I/O) go on to the end of the answer. */
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        return 0;
    }
    if (p.kind != N_COLL_FILE && p.kind != N_TASK_FILE && p.kind != N_ROOT_LOGS) {
        st->st_mode = S_IFDIR | 0755;
        st->st_nlink = 2;
        return 0;
    }
    st->st_mode = p.kind == N_ROOT_LOGS ? S_IFREG | 0444
                  : S_IFREG | (files[p.file].readable ? 0444 : 0) | (files[p.file].writable ? 0200 : 0);
    st->st_nlink = 1;
    /* The true size, so that tail -f and stat see the file grow. */
    struct tbuf b = {0};
    render(&p, &b);
    st->st_size = (off_t)b.len;
    tbuf_free(&b);
    return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    (void)off;
    (void)fi;
    (void)flags;
    struct node_path p = parse(path);
    if (!exists(&p))
        return -ENOENT;
    if (p.kind == N_COLL_FILE || p.kind == N_TASK_FILE || p.kind == N_SELECT_FILE ||
        p.kind == N_ROOT_LOGS)
        return -ENOTDIR;
    fill(buf, ".", NULL, 0, 0);
    fill(buf, "..", NULL, 0, 0);
    if (p.kind == N_ROOT) {
        fill(buf, "logs", NULL, 0, 0);
        fill(buf, "collections", NULL, 0, 0);
        fill(buf, "tasks", NULL, 0, 0);
    } else if (p.kind == N_COLLS) {
        struct tbuf names = {0};
        size_t n;
        api_collections(&names, &n);
        for (const char *s = names.data; n--; s += strlen(s) + 1)
            fill(buf, s, NULL, 0, 0);
        tbuf_free(&names);
    } else if (p.kind == N_TASKS) {
        uint64_t *ids;
        size_t n;
        char name[32];
        api_tasks(&ids, &n);
        for (size_t i = 0; i < n; i++) {
            snprintf(name, sizeof name, "%" PRIu64, ids[i]);
            fill(buf, name, NULL, 0, 0);
        }
        free(ids);
    } else if (p.kind != N_SELECT) { /* select/ lists nothing: any query is a file */
        for (int i = 0; i < F_COUNT; i++)
            if (p.kind == N_COLL || files[i].in_task_dir)
                fill(buf, files[i].name, NULL, 0, 0);
        if (p.kind == N_COLL)
            fill(buf, "select", NULL, 0, 0);
    }
    return 0;
}

/* ---- open files ---- */

struct handle {
    struct node_path p;
    bool writing;
    bool acted; /* the write has been handed to the api */
    int result;
    pthread_mutex_t mu;
    struct tbuf buf;
    struct handle *prev, *next;
};

/* Open handles, so that those the kernel has not released when the daemon
 * stops (release travels asynchronously after close) are freed in destroy. */
static struct {
    pthread_mutex_t mu;
    struct handle *list;
} open_handles = {PTHREAD_MUTEX_INITIALIZER, NULL};

static void handle_track(struct handle *h)
{
    pthread_mutex_lock(&open_handles.mu);
    h->next = open_handles.list;
    if (h->next)
        h->next->prev = h;
    open_handles.list = h;
    pthread_mutex_unlock(&open_handles.mu);
}

static void handle_free(struct handle *h)
{
    pthread_mutex_lock(&open_handles.mu);
    if (h->prev)
        h->prev->next = h->next;
    else
        open_handles.list = h->next;
    if (h->next)
        h->next->prev = h->prev;
    pthread_mutex_unlock(&open_handles.mu);
    tbuf_free(&h->buf);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* A refusal: its reason goes to the mount-wide log (a shell may show only
 * the errno), and the errno back to the caller. */
static int refuse(const char *path, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int refuse(const char *path, int err, const char *fmt, ...)
{
    struct tbuf why = {0};
    va_list ap;
    va_start(ap, fmt);
    tbuf_vprintf(&why, fmt, ap);
    va_end(ap);
    api_note("refused %s: %s (%s)", path, why.data ? why.data : "", strerror(-err));
    tbuf_free(&why);
    return err;
}

/* An api refusal: the api's message, or the bare status. */
static int refuse_st(const char *path, enum api_status st, struct tbuf *msg)
{
    int err = to_errno(st);
    if (err)
        refuse(path, err, "%s", msg->len ? msg->data : api_status_name(st));
    tbuf_free(msg);
    return err;
}

static bool is_log(const struct node_path *p)
{
    return p->kind == N_ROOT_LOGS ||
           ((p->kind == N_COLL_FILE || p->kind == N_TASK_FILE) && p->file == F_LOGS);
}

/* Refusals known before any byte come at open, where a shell's `>` sees
 * them: a second channel or one without a spec, a collection built already
 * or busy, a rebuild with nothing to build or while busy. */
static int check_open_write(const char *path, const struct node_path *p)
{
    struct tbuf msg = {0};
    if (p->kind == N_COLL_FILE && p->file == F_INCR)
        return refuse_st(path, api_create_incr_check(p->name, &msg), &msg);
    if (p->kind == N_COLL_FILE && p->file == F_CREATE)
        return refuse_st(path, api_create_check(p->name, &msg), &msg);
    if (p->kind == N_COLL_FILE && p->file == F_VERIFY)
        return refuse_st(path, api_verify_check(p->name, &msg), &msg);
    if (p->kind == N_COLL_FILE && p->file == F_BUILD)
        return refuse_st(path, api_build_check(p->name, &msg), &msg);
    return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
    struct node_path p = parse(path);
    bool file = p.kind == N_COLL_FILE || p.kind == N_TASK_FILE || p.kind == N_SELECT_FILE ||
                p.kind == N_ROOT_LOGS;
    if (!file || !exists(&p))
        return -ENOENT;
    int acc = fi->flags & O_ACCMODE;
    bool writing = acc != O_RDONLY;
    bool fixed = p.kind == N_SELECT_FILE || p.kind == N_ROOT_LOGS; /* read-only */
    if ((fixed || !files[p.file].writable) && writing)
        return refuse(path, -EACCES, "this file is read-only");
    if (!fixed && acc != O_WRONLY && !files[p.file].readable)
        return refuse(path, -EACCES, "this file is write-only: write to it, do not read it");
    int rc = writing ? check_open_write(path, &p) : 0;
    if (rc)
        return rc;
    struct handle *h = xcalloc(1, sizeof *h);
    h->p = p;
    h->writing = writing;
    pthread_mutex_init(&h->mu, NULL);
    if (!writing && (rc = render(&p, &h->buf)) != 0) {
        tbuf_free(&h->buf);
        free(h);
        return rc;
    }
    handle_track(h);
    fi->fh = (uintptr_t)h;
    fi->direct_io = 1;
    return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)path;
    struct handle *h = (struct handle *)(uintptr_t)fi->fh;
    pthread_mutex_lock(&h->mu);
    if (is_log(&h->p) && (size_t)off >= h->buf.len) {
        struct tbuf fresh = {0};
        if (render(&h->p, &fresh) == 0 && fresh.len > h->buf.len) {
            tbuf_free(&h->buf);
            h->buf = fresh;
        } else
            tbuf_free(&fresh);
    }
    size_t n = 0;
    if ((size_t)off < h->buf.len) {
        n = h->buf.len - (size_t)off;
        if (n > size)
            n = size;
        memcpy(buf, h->buf.data + off, n);
    }
    pthread_mutex_unlock(&h->mu);
    return (int)n;
}

/* A spec written to create, build or incr is judged as soon as it is complete,
 * so that its refusal fails this write(2): bash reports a failed write of
 * `echo ... > create` but never a failed close. Called with h->mu held. */
static int judge(const char *path, struct handle *h)
{
    enum api_spec_file which = h->p.file == F_CREATE ? SPEC_CREATE
                               : h->p.file == F_BUILD ? SPEC_BUILD : SPEC_INCR;
    if (h->p.kind != N_COLL_FILE || h->p.file == F_VERIFY || !files[h->p.file].writable ||
        h->acted || !rjson_complete(h->buf.data, h->buf.len))
        return 0;
    struct tbuf msg = {0};
    int rc = refuse_st(path, api_check_spec(h->p.name, which, h->buf.data, h->buf.len, &msg),
                       &msg);
    if (rc) { /* refused and recorded: close has nothing more to do */
        h->acted = true;
        h->result = rc;
    }
    return rc;
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    struct handle *h = (struct handle *)(uintptr_t)fi->fh;
    if (!h->writing)
        return -EBADF;
    if ((size_t)off + size > MAX_WRITE)
        return refuse(path, -EFBIG, "a spec is at most %d bytes", MAX_WRITE);
    pthread_mutex_lock(&h->mu);
    if (h->acted) { /* refused already: every later write is refused too */
        int rc = h->result ? h->result : -EINVAL;
        pthread_mutex_unlock(&h->mu);
        return rc;
    }
    if ((size_t)off > h->buf.len) { /* a hole: zero-fill, as a file would */
        size_t gap = (size_t)off - h->buf.len;
        tbuf_reserve(&h->buf, gap);
        memset(h->buf.data + h->buf.len, 0, gap);
        h->buf.len += gap;
    }
    size_t end = (size_t)off + size;
    if (end > h->buf.len)
        tbuf_reserve(&h->buf, end - h->buf.len);
    memcpy(h->buf.data + off, buf, size);
    if (end > h->buf.len) {
        h->buf.len = end;
        h->buf.data[end] = 0;
    }
    int rc = judge(path, h);
    pthread_mutex_unlock(&h->mu);
    return rc ? rc : (int)size;
}

/* Hands a finished write to the api. Shells call flush once with nothing
 * written (closing a dup'd descriptor) before the data comes, hence the
 * length check; acted makes sure one write starts one task. */
static int act(struct handle *h)
{
    if (!h->writing || h->acted || h->buf.len == 0)
        return h->result;
    h->acted = true;
    struct tbuf msg = {0};
    enum api_status st;
    if (h->p.file == F_CREATE)
        st = api_create(h->p.name, h->buf.data, h->buf.len, NULL, &msg);
    else if (h->p.file == F_INCR)
        st = api_create_incr(h->p.name, h->buf.data, h->buf.len, &msg);
    else if (h->p.file == F_VERIFY) /* "repair", or anything else: verify */
        st = api_verify(h->p.name, strncmp(h->buf.data + strspn(h->buf.data, " \t\n"), "repair",
                                           6) == 0, NULL, &msg);
    else
        st = api_build(h->p.name, h->buf.data, h->buf.len, NULL, &msg);
    char path[TIS_NAME_MAX + 64];
    snprintf(path, sizeof path, "/collections/%s/%s", h->p.name, files[h->p.file].name);
    h->result = refuse_st(path, st, &msg);
    return h->result;
}

static int fs_flush(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    struct handle *h = (struct handle *)(uintptr_t)fi->fh;
    pthread_mutex_lock(&h->mu);
    int rc = act(h);
    pthread_mutex_unlock(&h->mu);
    return rc;
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    struct handle *h = (struct handle *)(uintptr_t)fi->fh;
    act(h);
    handle_free(h);
    return 0;
}

/* `>` redirections truncate; control files accept that and ignore it. */
static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    (void)size;
    (void)fi;
    struct node_path p = parse(path);
    if (!exists(&p))
        return -ENOENT;
    if (p.kind == N_COLL_FILE && files[p.file].writable)
        return 0;
    return refuse(path, -EACCES, "this file is read-only");
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    (void)tv;
    (void)fi;
    struct node_path p = parse(path);
    return exists(&p) ? 0 : -ENOENT;
}

static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    (void)mode;
    struct node_path p = parse(path);
    if (exists(&p))
        return fs_open(path, fi);
    return refuse(path, -EACCES, "no new files here: the files of a collection are made with it");
}

/* The last collection a mkdir reserved, by which process and when: `mkdir
 * -p NAME/x` makes NAME the instant before its refusal, in one process. */
#define MKDIR_P_SEC 5.0
static struct {
    pthread_mutex_t mu;
    char name[TIS_NAME_MAX + 1];
    pid_t pid;
    double at;
} reserved = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* `mkdir -p NAME/x` made NAME before its refusal: a collection that holds
 * nothing yet goes again, so a refused command leaves nothing behind. One
 * reserved by an earlier command of its own stays (mkdir NAME; mkdir
 * NAME/x). */
static void undo_parent(const char *path)
{
    char name[TIS_NAME_MAX + 1];
    if (strncmp(path, "/collections/", 13))
        return;
    const char *n = path + 13, *slash = strchr(n, '/');
    if (!slash || (size_t)(slash - n) > TIS_NAME_MAX)
        return;
    snprintf(name, sizeof name, "%.*s", (int)(slash - n), n);
    pthread_mutex_lock(&reserved.mu);
    bool just_made = !strcmp(reserved.name, name) && reserved.pid == fuse_get_context()->pid &&
                     mono_now() - reserved.at < MKDIR_P_SEC;
    pthread_mutex_unlock(&reserved.mu);
    if (just_made && api_unreserve(name) == API_OK)
        api_note("removed the empty collection %s again: the mkdir under it was refused", name);
}

static int fs_mkdir(const char *path, mode_t mode)
{
    (void)mode;
    struct node_path p = parse(path);
    struct tbuf msg = {0};
    if (strncmp(path, "/collections/", 13) == 0 && !strchr(path + 13, '/') && p.kind == N_NONE)
        return refuse_st(path, api_check_name(path + 13, &msg), &msg);
    if (p.kind != N_COLL) {
        undo_parent(path);
        return refuse(path, -EPERM, "directories are made only in collections/ (one level: "
                                    "mkdir collections/NAME)");
    }
    enum api_status st = api_reserve(p.name, &msg);
    if (st == API_OK) {
        pthread_mutex_lock(&reserved.mu);
        snprintf(reserved.name, sizeof reserved.name, "%s", p.name);
        reserved.pid = fuse_get_context()->pid;
        reserved.at = mono_now();
        pthread_mutex_unlock(&reserved.mu);
    }
    return refuse_st(path, st, &msg);
}

/* Collections whose control files rm -r has just unlinked: a bare rmdir
 * never unlinks them first, and must not delete a collection that holds
 * data (rm -r may). */
#define UNLINK_MEMORY 16
#define UNLINK_VALID_SEC 60.0

static struct {
    pthread_mutex_t mu;
    char name[UNLINK_MEMORY][TIS_NAME_MAX + 1];
    double at[UNLINK_MEMORY];
    unsigned next;
} unlinked = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void remember_unlink(const char *name)
{
    pthread_mutex_lock(&unlinked.mu);
    unsigned i = unlinked.next++ % UNLINK_MEMORY;
    snprintf(unlinked.name[i], sizeof unlinked.name[i], "%s", name);
    unlinked.at[i] = mono_now();
    pthread_mutex_unlock(&unlinked.mu);
}

static bool recently_unlinked(const char *name)
{
    bool r = false;
    pthread_mutex_lock(&unlinked.mu);
    for (unsigned i = 0; i < UNLINK_MEMORY && !r; i++)
        r = !strcmp(unlinked.name[i], name) && mono_now() - unlinked.at[i] < UNLINK_VALID_SEC;
    pthread_mutex_unlock(&unlinked.mu);
    return r;
}

static int fs_rmdir(const char *path)
{
    struct node_path p = parse(path);
    if (p.kind == N_SELECT) /* rm -r descends into select/ first: let it */
        return exists(&p) ? 0 : -ENOENT;
    if (p.kind == N_NONE)
        return -ENOENT;
    if (p.kind != N_COLL)
        return refuse(path, -EPERM, "only collections/NAME can be removed");
    if (!recently_unlinked(p.name) && !api_collection_is_empty(p.name))
        return refuse(path, -ENOTEMPTY, "the collection holds a spec, tasks or an index: delete it "
                                         "with rm -r");
    struct tbuf msg = {0};
    return refuse_st(path, api_delete(p.name, &msg), &msg);
}

/* rm -r unlinks the control files before rmdir: let it, changing nothing. */
static int fs_unlink(const char *path)
{
    struct node_path p = parse(path);
    if (!exists(&p))
        return -ENOENT;
    if (p.kind != N_COLL_FILE)
        return refuse(path, -EPERM, "remove the collection with rm -r");
    remember_unlink(p.name);
    return 0;
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    /* Everything here changes under the kernel's feet: no caching. */
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    cfg->direct_io = 1;
    return NULL;
}

static void fs_destroy(void *private_data)
{
    (void)private_data;
    while (open_handles.list)
        handle_free(open_handles.list);
}

static const struct fuse_operations ops = {
    .init = fs_init,
    .destroy = fs_destroy,
    .getattr = fs_getattr,
    .readdir = fs_readdir,
    .open = fs_open,
    .create = fs_create,
    .read = fs_read,
    .write = fs_write,
    .flush = fs_flush,
    .release = fs_release,
    .truncate = fs_truncate,
    .utimens = fs_utimens,
    .mkdir = fs_mkdir,
    .rmdir = fs_rmdir,
    .unlink = fs_unlink,
};

const struct fuse_operations *fs_operations(void)
{
    return &ops;
}
