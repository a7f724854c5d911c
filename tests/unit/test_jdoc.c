/* Unit tests for jdoc: the flat, strict JSON parser of the change stream.
 * Every accepted text is also one json-c accepts with the same values, and
 * every refused one names the byte where it stops being JSON. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tisfs/jdoc.h"

static struct jdoc D;

static const struct jval *parse(const char *s)
{
    return jdoc_parse(&D, s, strlen(s), 64);
}

/* text must be refused, with what and at byte `at`. */
static void refused_(const char *text, const char *what, size_t at, int line)
{
    const struct jval *v = parse(text);
    check_(v == NULL, __FILE__, line, text);
    check_has_(D.err, what, __FILE__, line, text);
    check_int_((long long)D.err_at, (long long)at, __FILE__, line, text);
}
#define REFUSED(text, what, at) refused_((text), (what), (at), __LINE__)

static void scalars(void)
{
    const struct jval *v = parse(" \"a\\\"b\\\\c\\/\\n\\u00e9\\ud83d\\ude00\" ");
    CHECK(jv_is(v, JV_STR));
    CHECK_STR(v->s, "a\"b\\c/\n\xc3\xa9\xf0\x9f\x98\x80");
    CHECK_INT(v->len, 13);
    v = parse("\"x\\u0000y\"");
    CHECK_INT(v->len, 3);
    CHECK(memcmp(v->s, "x\0y", 3) == 0);
    v = parse("\"\\ud800x\""); /* a lone surrogate: U+FFFD, as json-c */
    CHECK_STR(v->s, "\xef\xbf\xbdx");
    v = parse("18446744073709551615");
    CHECK(jv_is(v, JV_NUM) && v->integer);
    CHECK_STR(v->s, "18446744073709551615");
    v = parse("-0");
    CHECK_STR(v->s, "0");
    v = parse("-5");
    CHECK_STR(v->s, "-5");
    v = parse("-1.5e+3");
    CHECK(jv_is(v, JV_NUM) && !v->integer);
    CHECK_STR(v->s, "-1.5e+3");
    CHECK(jv_is(parse("true"), JV_BOOL) && parse("true")->b);
    CHECK(jv_is(parse("false"), JV_BOOL) && !parse("false")->b);
    CHECK(jv_is(parse("null"), JV_NULL));
}

static void containers(void)
{
    const char *text = "{\"a\":[1,{\"b\":null},[]],\"c\":{},\"a\":\"last\",\"d\":2}";
    const struct jval *o = parse(text);
    CHECK(jv_is(o, JV_OBJ));
    CHECK_INT(o->len, 4);
    CHECK_INT(o->span, 9);
    CHECK_INT(o->end, strlen(text));
    CHECK_STR(jv_get(o, "a")->s, "last"); /* the last of a name, as json-c */
    CHECK(jv_get(o, "zz") == NULL);
    const struct jval *d = jv_get(o, "d");
    CHECK_STR(d->s, "2");
    CHECK(jv_get(jv_get(o, "c"), "x") == NULL);

    const struct jval *arr = o + 1;
    CHECK(jv_is(arr, JV_ARR) && arr->len == 3);
    CHECK_STR(jv_at(arr, 0)->s, "1");
    CHECK(jv_is(jv_get(jv_at(arr, 1), "b"), JV_NULL));
    CHECK(jv_is(jv_at(arr, 2), JV_ARR) && jv_at(arr, 2)->len == 0);
    CHECK(jv_at(arr, 3) == NULL);
    CHECK_INT(arr->start, 5);
    CHECK(memcmp(D.src + arr->start, "[1,{\"b\":null},[]]", arr->end - arr->start) == 0);

    int n = 0;
    const char *keys[4] = {0};
    jv_foreach(o, m) keys[n++] = m->key;
    CHECK_INT(n, 4);
    CHECK_STR(keys[0], "a");
    CHECK_STR(keys[1], "c");
    CHECK_STR(keys[3], "d");
    n = 0;
    jv_foreach(jv_get(o, "c"), m) n++;
    CHECK_INT(n, 0);

    /* In order, each member is found by its hint; out of order, by a walk. */
    const struct jval *hint = NULL;
    o = parse("{\"x\":1,\"y\":2,\"z\":3}");
    CHECK_STR(jv_get_hinted(o, "x", &hint)->s, "1");
    CHECK(hint == o + 2);
    CHECK_STR(jv_get_hinted(o, "y", &hint)->s, "2");
    CHECK_STR(jv_get_hinted(o, "x", &hint)->s, "1");
    CHECK(jv_get_hinted(o, "w", &hint) == NULL && hint == NULL);
}

static void refusals(void)
{
    REFUSED("", "end of input", 0);
    REFUSED("{\"type\":", "end of input", 8);
    REFUSED("{\"a\":1 \"b\":2}", "expected ',' or '}'", 7);
    REFUSED("{\"a\" 1}", "expected ':'", 5);
    REFUSED("{\"a\":1,}", "member name", 7);
    REFUSED("[1,]", "unexpected character", 3);
    REFUSED("[1 2]", "expected ',' or ']'", 3);
    REFUSED("{'a':1}", "member name", 1);
    REFUSED("01", "after the JSON value", 1);
    REFUSED("1.", "digits must follow", 2);
    REFUSED("1e", "exponent", 2);
    REFUSED("-", "invalid number", 1);
    REFUSED("nul", "unexpected character", 0);
    REFUSED("NaN", "unexpected character", 0);
    REFUSED("\"a\nb\"", "control character", 2);
    REFUSED("\"a\\qb\"", "invalid escape", 3);
    REFUSED("\"\\u12G4\"", "invalid \\u", 3);
    REFUSED("\"abc", "unterminated", 4);
    REFUSED("{} x", "after the JSON value", 3);
    REFUSED("/* c */ 1", "unexpected character", 0);
    char deep[200];
    memset(deep, '[', 100);
    deep[100] = 0;
    REFUSED(deep, "nested too deep", 64);
}

/* Values equal json-c's for texts both accept. */
static void same_as_json_c(void)
{
    static const char *const texts[] = {
        "{\"id\":\"7\",\"n\":12345678901234,\"f\":1.25,\"s\":\"caf\\u00e9 \\\"q\\\"\",\"b\":true}",
        "[\"\\t\\r\\b\\f\",-17,0,\"\"]",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct json_object *j = json_tokener_parse(texts[i]);
        const struct jval *v = parse(texts[i]);
        CHECK(j && v);
        size_t k = 0;
        jv_foreach(v, m) {
            struct json_object *jm = json_object_is_type(j, json_type_object)
                                         ? json_object_object_get(j, m->key)
                                         : json_object_array_get_idx(j, k);
            if (m->type == JV_STR || m->type == JV_NUM)
                CHECK_STR(m->s, json_object_get_string(jm));
            k++;
        }
        json_object_put(j);
    }
}

/* A string's end, escape or control character at every offset of the
 * 8-byte words a plain run is scanned in, after plain bytes both ASCII
 * and UTF-8: each is met where it is. Fails with a word-wise scan that
 * misses one of the three kinds in some lane. */
static void runs_end_anywhere(void)
{
    char text[64], want[64];
    const char *plain[2] = {"abcdefghijklmnopqrstuvwxyz0123456789", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                            "\xc3\xa9\xc3\xa9"};
    for (int kind = 0; kind < 2; kind++)
        for (int n = 0; n < 24; n++) {
            /* "<n plain>\n<plain>" then the end */
            snprintf(text, sizeof text, "\"%.*s\\nxy\"", n, plain[kind]);
            snprintf(want, sizeof want, "%.*s\nxy", n, plain[kind]);
            const struct jval *v = parse(text);
            CHECK(v && jv_is(v, JV_STR) && strcmp(v->s, want) == 0);
            /* an unescaped control character there is refused at it */
            snprintf(text, sizeof text, "\"%.*s\txy\"", n, plain[kind]);
            CHECK(parse(text) == NULL && D.err_at == (size_t)n + 1);
            /* and a quote ends the string there */
            snprintf(text, sizeof text, "[\"%.*s\",1]", n, plain[kind]);
            v = parse(text);
            CHECK(v && jv_is(v, JV_ARR) && v->len == 2 && jv_at(v, 0)->len == (uint32_t)n);
        }
}

int main(void)
{
    runs_end_anywhere();
    scalars();
    containers();
    refusals();
    same_as_json_c();
    jdoc_free(&D);
    return check_summary();
}
