/* test_api — the handlers through api.h and rest.h, with no adapter in
 * between: names, reserve, create (a bad spec, an unreachable source),
 * status, logs, build, delete, select's refusals, and the REST envelope.
 *
 * With TISFS_TEST_MYSQL_PORT set (tests/test_api_live.py does it, with a
 * real MariaDB holding tistest.api_items), also a real build, select over
 * it, a rebuild and the REST methods against it. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "check.h"
#include "tisfs/api.h"
#include "tisfs/catalog.h"
#include "tisfs/rest.h"
#include "tisfs/util.h"

static struct json_object *doc(const char *name, enum api_doc d)
{
    struct tbuf b = {0};
    CHECK(api_read(name, d, &b) == API_OK);
    struct json_object *o = b.len ? json_tokener_parse(b.data) : NULL;
    tbuf_free(&b);
    return o;
}

static bool field_true(struct json_object *o, const char *k)
{
    struct json_object *v;
    return o && json_object_object_get_ex(o, k, &v) && json_object_get_boolean(v);
}

static const char *field_str(struct json_object *o, const char *k)
{
    struct json_object *v;
    return o && json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

/* Polls the collection's status until its task has finished (deadline
 * 120 s); returns the final status (caller puts it). */
static struct json_object *wait_done(const char *name)
{
    double end = mono_now() + 120;
    for (;;) {
        struct json_object *st = doc(name, DOC_STATUS);
        if (field_true(st, "complete") || field_true(st, "failed") || mono_now() > end)
            return st;
        json_object_put(st);
        usleep(20000);
    }
}

static struct json_object *rest(const char *method, const char *body)
{
    struct tbuf out = {0};
    rest_call(method, body, strlen(body), &out);
    struct json_object *o = json_tokener_parse(out.data);
    CHECK(o != NULL);
    tbuf_free(&out);
    return o;
}

static bool rest_ok(struct json_object *o)
{
    return field_true(o, "success");
}

static const char *rest_err(struct json_object *o)
{
    struct json_object *e;
    if (!o || !json_object_object_get_ex(o, "errormsg", &e) || json_object_array_length(e) == 0)
        return "";
    return json_object_get_string(json_object_array_get_idx(e, 0));
}

static void test_names(void)
{
    struct tbuf msg = {0};
    CHECK(api_check_name("items_2-b", NULL) == API_OK);
    CHECK(api_check_name("my items", &msg) == API_INVALID);
    CHECK_HAS(msg.data, "A-Z a-z 0-9 _ -");
    CHECK(api_check_name("商品", NULL) == API_INVALID);
    CHECK(api_check_name("", NULL) == API_INVALID);
    char longname[80];
    memset(longname, 'a', 65);
    longname[65] = 0;
    CHECK(api_check_name(longname, NULL) == API_NAME_TOO_LONG);
    CHECK(api_reserve("items.v2", NULL) == API_INVALID);
    CHECK(!api_collection_exists("items.v2"));
    tbuf_free(&msg);
}

static void test_reserve_and_refusals(void)
{
    struct tbuf msg = {0};
    CHECK(api_reserve("a1", NULL) == API_OK);
    CHECK(api_collection_exists("a1"));
    CHECK(api_reserve("a1", &msg) == API_EXISTS);
    CHECK_HAS(msg.data, "a1");
    tbuf_reset(&msg);
    /* Before any spec: no build, no channel's spec, no index to query. */
    CHECK(api_build("a1", NULL, 0, NULL, &msg) == API_INVALID);
    CHECK_HAS(msg.data, "no spec yet");
    CHECK(api_build("nope", NULL, 0, NULL, NULL) == API_NOT_FOUND);
    CHECK(api_create("nope", "{}", 2, NULL, NULL) == API_NOT_FOUND);
    CHECK(api_delete("nope", NULL) == API_NOT_FOUND);
    struct tbuf out = {0};
    CHECK(api_select("a1", "q=*:*", &out) == API_NOT_READY);
    CHECK_HAS(out.data, "\"code\":503");
    tbuf_reset(&out);
    CHECK(api_select("nope", "q=*:*", &out) == API_NOT_FOUND);
    CHECK_HAS(out.data, "\"code\":404");
    tbuf_reset(&out);
    CHECK(api_select("a1", "q=x&wt=xml", &out) == API_INVALID);
    CHECK_HAS(out.data, "wt=xml");
    tbuf_reset(&out);
    CHECK(api_ping("a1", &out) == API_NOT_READY);
    tbuf_reset(&out);
    struct json_object *st = doc("a1", DOC_STATUS);
    CHECK_STR(field_str(st, "state"), "reserved");
    json_object_put(st);
    tbuf_free(&out);
    tbuf_free(&msg);
}

static void test_bad_spec(void)
{
    struct tbuf msg = {0};
    uint64_t id = 0;
    const char *bad = "{ table: \"t\",\n  columns: [ {name: \"a\" ] }";
    CHECK(api_create("a1", bad, strlen(bad), &id, &msg) == API_INVALID);
    CHECK_HAS(msg.data, "line 2");
    CHECK(id > 0);
    /* The refusal is a failed task: status and logs say why. */
    struct json_object *st = doc("a1", DOC_STATUS);
    CHECK(field_true(st, "failed"));
    CHECK_HAS(field_str(st, "errs"), "line 2");
    json_object_put(st);
    CHECK(api_task_exists(id));
    struct tbuf logs = {0};
    CHECK(api_task_read(id, DOC_LOGS, &logs) == API_OK);
    CHECK_HAS(logs.data, "line 2");
    tbuf_free(&logs);
    tbuf_free(&msg);
}

static void test_unreachable_source(void)
{
    /* A port nothing listens on: the task starts, then fails in dump. */
    const char *spec = "{ datasource: { plugin: \"MySQL\", host: \"127.0.0.1\", port: 1,\n"
                       "  user: \"u\", password: \"s3cret-pw\", dbName: \"d\" },\n"
                       "  table: \"t\", columns: [ {name: \"a\"} ] }";
    uint64_t id = 0;
    CHECK(api_create("a1", spec, strlen(spec), &id, NULL) == API_OK);
    struct json_object *st = wait_done("a1");
    CHECK(field_true(st, "failed"));
    CHECK_STR(field_str(st, "stage"), "dump");
    CHECK(json_object_get_int64(json_object_object_get(st, "taskid")) == (int64_t)id);
    json_object_put(st);
    /* The accepted spec is kept, masked, and a rebuild may be asked for. */
    struct tbuf b = {0};
    CHECK(api_read("a1", DOC_CREATE, &b) == API_OK);
    CHECK(b.data && !strstr(b.data, "s3cret-pw"));
    CHECK_HAS(b.data, "******");
    tbuf_free(&b);
    uint64_t id2 = 0;
    CHECK(api_build("a1", "1\n", 2, &id2, NULL) == API_OK);
    CHECK(id2 > id);
    st = wait_done("a1");
    CHECK(field_true(st, "failed"));
    json_object_put(st);
    uint64_t *ids;
    size_t n;
    api_tasks(&ids, &n);
    CHECK(n >= 3);
    free(ids);
}

static void test_rest_envelope(void)
{
    struct json_object *o = rest("no_such_method", "{}");
    CHECK(!rest_ok(o));
    CHECK_HAS(rest_err(o), "unknown emethod");
    CHECK(json_object_object_get(o, "bizresult") != NULL);
    json_object_put(o);
    o = rest("do_get_status", "{ taskid: ");
    CHECK(!rest_ok(o));
    CHECK_HAS(rest_err(o), "line 1, column");
    json_object_put(o);
    o = rest("get_task_status", "{ taskid: 1, log: true }");
    CHECK(rest_ok(o));
    struct json_object *biz = json_object_object_get(o, "bizresult");
    CHECK(json_object_object_get(biz, "faild") != NULL);
    CHECK(json_object_object_get(biz, "logs") != NULL);
    json_object_put(o);
    o = rest("do_get_incr_status", "{ indexName: \"a1\", log: true }");
    CHECK(rest_ok(o));
    biz = json_object_object_get(o, "bizresult");
    CHECK(json_object_object_get(biz, "current_cursor") != NULL);
    CHECK(json_object_object_get(biz, "last_60_sec") != NULL);
    json_object_put(o);
    o = rest("do_fullbuild", "{ indexName: \"ghost\" }");
    CHECK(!rest_ok(o));
    CHECK_HAS(rest_err(o), "no collection ghost");
    json_object_put(o);
    /* REST create reserves the name; a refused spec leaves nothing behind. */
    o = rest("do_create", "{ indexName: \"r1\", table: 5 }");
    CHECK(!rest_ok(o));
    CHECK(!api_collection_exists("r1"));
    json_object_put(o);
    o = rest("deleteIndex", "{ indexName: \"a1\" }");
    CHECK(rest_ok(o));
    CHECK(!api_collection_exists("a1"));
    json_object_put(o);
}

/* The mount-wide log: refusals of every adapter, bounded on disk. */
static void test_daemon_log(void)
{
    struct tbuf b = {0};
    api_daemon_log(&b);
    CHECK_HAS(b.data, "[tisfs] started: data ");
    tbuf_reset(&b);
    for (int i = 0; i < 22000; i++)
        api_note("note %d", i);
    api_daemon_log(&b);
    size_t lines = 0;
    for (size_t i = 0; i < b.len; i++)
        lines += b.data[i] == '\n';
    CHECK(lines <= 21000 && lines >= 20000);
    CHECK_HAS(b.data, "note 21999");
    CHECK(!strstr(b.data, "note 999\n"));
    tbuf_free(&b);
}

/* ---- with a real MariaDB ---- */

static void test_live(const char *port)
{
    char spec[1024];
    snprintf(spec, sizeof spec,
             "{ datasource: { plugin: \"MySQL\", host: \"127.0.0.1\", port: %s,\n"
             "  user: \"tis\", password: \"tispw\", dbName: \"tistest\" },\n"
             "  table: \"api_items\", indexName: \"live\",\n"
             "  columns: [ {name: \"id\", token: \"string\"}, {name: \"title\", token: \"ik\"} ] }",
             port);
    struct json_object *o = rest("do_create", spec);
    CHECK(rest_ok(o));
    json_object_put(o);
    struct json_object *st = wait_done("live");
    CHECK(field_true(st, "complete"));
    json_object_put(st);
    struct tbuf out = {0};
    CHECK(api_select("live", "q=title:apple&fl=id", &out) == API_OK);
    CHECK_HAS(out.data, "\"numFound\":2");
    tbuf_reset(&out);
    CHECK(api_select("live", "q=title:(", &out) == API_INVALID);
    CHECK_HAS(out.data, "\"code\":400");
    tbuf_reset(&out);
    CHECK(api_ping("live", &out) == API_OK);
    CHECK_HAS(out.data, "\"status\":\"OK\"");
    tbuf_reset(&out);
    api_cores_status(NULL, &out);
    CHECK_HAS(out.data, "\"numDocs\":3");
    tbuf_reset(&out);
    /* A second create is refused; a rebuild runs and keeps serving. */
    CHECK(api_create_check("live", NULL) == API_EXISTS);
    uint64_t id = 0;
    CHECK(api_build("live", NULL, 0, &id, NULL) == API_OK);
    st = wait_done("live");
    CHECK(field_true(st, "complete"));
    json_object_put(st);
    CHECK(api_select("live", "q=title:apple", &out) == API_OK);
    CHECK_HAS(out.data, "\"numFound\":2");
    tbuf_reset(&out);
    api_metrics(&out);
    CHECK_HAS(out.data, "tisfs_collection_docs{collection=\"live\"} 3");
    CHECK_HAS(out.data, "tisfs_queries_total{status=\"ok\"}");
    CHECK(!strstr(out.data, "tispw"));
    tbuf_free(&out);
    CHECK(api_delete("live", NULL) == API_OK);
}

/* A kill between recording a switch and the task's own status: after the
 * restart the task is complete (its generation serves), not "interrupted". */
static void test_recovery_after_a_recorded_switch(void)
{
    char dir[] = "/tmp/tisfs-test-api-rec-XXXXXX", path[128], err[512];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/catalog", dir);
    struct catalog *cat = cat_open(path, err, sizeof err);
    CHECK(cat != NULL);
    cat_coll_put(cat, "sw", "{\"name\":\"sw\",\"generation\":5,\"tasks\":[4,5]}");
    cat_task_put(cat, 4, "{\"taskid\":4,\"indexName\":\"sw\",\"complete\":false,"
                         "\"failed\":false,\"stage\":\"dump\",\"stages\":[]}");
    cat_task_put(cat, 5, "{\"taskid\":5,\"indexName\":\"sw\",\"complete\":false,"
                         "\"failed\":false,\"stage\":\"indexBackflow\",\"stages\":"
                         "[{\"name\":\"indexBackflow\",\"state\":\"running\"}]}");
    cat_close(cat);
    CHECK(api_init(dir, err, sizeof err) == API_OK);
    struct tbuf b = {0};
    CHECK(api_task_read(5, DOC_STATUS, &b) == API_OK);
    CHECK_HAS(b.data, "\"complete\":true");
    CHECK_HAS(b.data, "\"state\":\"done\"");
    tbuf_reset(&b);
    CHECK(api_task_read(4, DOC_STATUS, &b) == API_OK); /* not switched: interrupted */
    CHECK_HAS(b.data, "interrupted");
    tbuf_free(&b);
    api_shutdown();
    rm_rf(dir);
}

int main(void)
{
    test_recovery_after_a_recorded_switch();
    char dir[] = "/tmp/tisfs-test-api-XXXXXX", err[512], *abs = NULL;
    CHECK(mkdtemp(dir) != NULL);
    CHECK(api_check_data_dir("/proc/nope/x", &abs, err, sizeof err) != API_OK);
    CHECK(api_check_data_dir(dir, &abs, err, sizeof err) == API_OK);
    CHECK(api_init(abs, err, sizeof err) == API_OK);
    test_names();
    test_reserve_and_refusals();
    test_bad_spec();
    test_unreachable_source();
    test_rest_envelope();
    test_daemon_log();
    const char *port = getenv("TISFS_TEST_MYSQL_PORT");
    if (port && *port)
        test_live(port);
    api_shutdown();
    /* A restart finds what was left: nothing, after the deletes. */
    CHECK(api_init(abs, err, sizeof err) == API_OK);
    CHECK(!api_collection_exists("a1"));
    api_shutdown();
    rm_rf(dir);
    free(abs);
    return check_summary();
}
