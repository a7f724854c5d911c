/* rest — the seed's config.ajax methods over api.h. */
#define _GNU_SOURCE
#include "tisfs/rest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "tisfs/api.h"
#include "tisfs/rjson.h"

struct call {
    const char *body;
    size_t len;
    struct json_object *req;   /* the parsed body */
    struct json_object *biz;   /* bizresult */
    struct json_object *errs;  /* errormsg */
};

static bool fail(struct call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(struct call *c, const char *fmt, ...)
{
    struct tbuf b = {0};
    va_list ap;
    va_start(ap, fmt);
    tbuf_vprintf(&b, fmt, ap);
    va_end(ap);
    json_object_array_add(c->errs, json_object_new_string(b.data ? b.data : ""));
    tbuf_free(&b);
    return false;
}

static bool failed_with(struct call *c, enum api_status st, struct tbuf *msg)
{
    bool ok = st == API_OK;
    if (!ok)
        fail(c, "%s", msg->len ? msg->data : api_status_name(st));
    tbuf_free(msg);
    return ok;
}

/* The body's indexName: the collection a method is about. */
static const char *index_name(struct call *c)
{
    struct json_object *v;
    if (!json_object_object_get_ex(c->req, "indexName", &v) ||
        !json_object_is_type(v, json_type_string)) {
        fail(c, "indexName: required (a string naming the collection)");
        return NULL;
    }
    return json_object_get_string(v);
}

static bool want_log(struct call *c)
{
    struct json_object *v;
    return json_object_object_get_ex(c->req, "log", &v) && json_object_get_boolean(v);
}

/* A task's status, the api's JSON text, as an object. */
static struct json_object *as_object(struct tbuf *b)
{
    struct json_object *o = b->len ? json_tokener_parse(b->data) : NULL;
    tbuf_free(b);
    return o && json_object_is_type(o, json_type_object) ? o : (json_object_put(o), NULL);
}

/* A document becomes the bizresult (nothing changes without one). */
static void set_bizresult(struct call *c, struct json_object *o)
{
    if (o) {
        json_object_put(c->biz);
        c->biz = o;
    }
}

static void add_logs(struct json_object *biz, struct tbuf *logs, const char *only)
{
    struct tbuf kept = {0};
    for (const char *p = logs->data ? logs->data : ""; *p;) {
        size_t n = strcspn(p, "\n");
        if (!only || memmem(p, n, only, strlen(only)))
            tbuf_add(&kept, p, n), tbuf_add(&kept, "\n", 1);
        p += n + (p[n] == '\n');
    }
    json_object_object_add(biz, "logs", json_object_new_string(kept.data ? kept.data : ""));
    tbuf_free(&kept);
    tbuf_free(logs);
}

/* ---- the methods ---- */

static bool do_create(struct call *c)
{
    const char *name = index_name(c);
    if (!name)
        return false;
    struct tbuf msg = {0};
    /* Over REST there is no mkdir: create reserves the name, but only for
     * a valid spec, so a refusal leaves nothing behind (not even a task). */
    enum api_status st = API_OK;
    if (!api_collection_exists(name)) {
        if ((st = api_spec_valid(name, c->body, c->len, &msg)) != API_OK ||
            ((st = api_reserve(name, &msg)) != API_OK && st != API_EXISTS))
            return failed_with(c, st, &msg);
        tbuf_free(&msg);
    }
    uint64_t id = 0;
    st = api_create(name, c->body, c->len, &id, &msg);
    if (id)
        json_object_object_add(c->biz, "taskid", json_object_new_int64((int64_t)id));
    return failed_with(c, st, &msg);
}

static bool do_get_status(struct call *c)
{
    struct json_object *v;
    if (!json_object_object_get_ex(c->req, "taskid", &v) ||
        !json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0)
        return fail(c, "taskid: required (the positive number create or fullbuild answered)");
    uint64_t id = (uint64_t)json_object_get_int64(v);
    struct tbuf b = {0};
    if (api_task_read(id, DOC_STATUS, &b) != API_OK) {
        tbuf_free(&b);
        return fail(c, "no task %" PRIu64, id);
    }
    set_bizresult(c, as_object(&b));
    if (want_log(c)) {
        api_task_read(id, DOC_LOGS, &b);
        add_logs(c->biz, &b, NULL);
    }
    return true;
}

static bool do_get_incr_status(struct call *c)
{
    const char *name = index_name(c);
    if (!name)
        return false;
    struct json_object *st;
    if (api_read_object(name, DOC_INCR_STATUS, &st) != API_OK)
        return fail(c, "no collection %s", name);
    set_bizresult(c, st);
    if (want_log(c)) {
        struct tbuf b = {0};
        api_read(name, DOC_LOGS, &b);
        add_logs(c->biz, &b, " incr] ");
    }
    return true;
}

static bool do_create_incr(struct call *c)
{
    const char *name = index_name(c);
    if (!name)
        return false;
    struct tbuf msg = {0}, logs = {0};
    bool ok = failed_with(c, api_create_incr(name, c->body, c->len, &msg), &msg);
    api_read(name, DOC_LOGS, &logs);
    add_logs(c->biz, &logs, " incr] ");
    return ok;
}

static bool do_fullbuild(struct call *c)
{
    const char *name = index_name(c);
    if (!name)
        return false;
    struct tbuf msg = {0};
    uint64_t id = 0;
    enum api_status st = api_build(name, NULL, 0, &id, &msg);
    if (st == API_OK)
        json_object_object_add(c->biz, "taskid", json_object_new_int64((int64_t)id));
    return failed_with(c, st, &msg);
}

static bool do_delete_index(struct call *c)
{
    const char *name = index_name(c);
    if (!name)
        return false;
    struct tbuf msg = {0};
    return failed_with(c, api_delete(name, &msg), &msg);
}

static bool do_verify(struct call *c)
{
    const char *name = index_name(c);
    if (!name)
        return false;
    struct json_object *v;
    bool repair = json_object_object_get_ex(c->req, "repair", &v) && json_object_get_boolean(v);
    struct tbuf msg = {0};
    uint64_t id = 0;
    enum api_status st = api_verify(name, repair, &id, &msg);
    if (st == API_OK)
        json_object_object_add(c->biz, "taskid", json_object_new_int64((int64_t)id));
    return failed_with(c, st, &msg);
}

static const struct {
    const char *names[3];
    bool (*run)(struct call *c);
} methods[] = {
    {{"do_create", "create"}, do_create},
    {{"do_get_status", "get_task_status"}, do_get_status},
    {{"do_get_incr_status", "get_incr_status"}, do_get_incr_status},
    {{"do_create_incr", "create_incr"}, do_create_incr},
    {{"do_fullbuild", "fullbuild"}, do_fullbuild},
    {{"do_delete_index", "delete_index", "deleteIndex"}, do_delete_index},
    {{"do_verify", "verify"}, do_verify},
};

static bool (*lookup(const char *emethod))(struct call *)
{
    for (size_t i = 0; emethod && i < sizeof methods / sizeof *methods; i++)
        for (size_t k = 0; k < 3 && methods[i].names[k]; k++)
            if (strcmp(emethod, methods[i].names[k]) == 0)
                return methods[i].run;
    return NULL;
}

bool rest_call(const char *emethod, const char *body, size_t len, struct tbuf *out)
{
    struct call c = {body, len, NULL, json_object_new_object(), json_object_new_array()};
    bool (*run)(struct call *) = lookup(emethod);
    char perr[300];
    bool ok = false;
    if (!run) {
        fail(&c, "unknown emethod \"%s\": use one of do_create, do_get_status, "
                 "do_get_incr_status, do_create_incr, do_fullbuild, do_delete_index, do_verify",
             emethod ? emethod : "");
    } else if (!(c.req = rjson_parse(body ? body : "", len, perr, sizeof perr)) ||
               !json_object_is_type(c.req, json_type_object))
        fail(&c, "malformed request body: %s", !c.req && perr[0] ? perr : "must be an object");
    else
        ok = run(&c);
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "success", json_object_new_boolean(ok));
    json_object_object_add(o, "errormsg", c.errs);
    json_object_object_add(o, "bizresult", c.biz);
    tbuf_adds(out, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                        JSON_C_TO_STRING_NOSLASHESCAPE));
    tbuf_adds(out, "\n");
    json_object_put(o);
    json_object_put(c.req);
    return run != NULL;
}
