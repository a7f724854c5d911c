/* Unit tests for rjson (src/rjson.c): the seed request bodies, strict JSON,
 * every relaxed extension, and each error with its exact line and column.
 * Standalone: exits non-zero on any failure and ends with "N passed, M failed". */
#include "tisfs/rjson.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* ---- helpers ---------------------------------------------------------- */

/* Follows a '/'-separated path; numeric parts index arrays. */
static struct json_object *at(struct json_object *o, const char *path)
{
	char part[64];

	while (o && *path) {
		size_t n = strcspn(path, "/");
		struct json_object *next = NULL;

		snprintf(part, sizeof(part), "%.*s", (int)n, path);
		if (json_object_is_type(o, json_type_array))
			next = json_object_array_get_idx(o, (size_t)atoi(part));
		else if (!json_object_object_get_ex(o, part, &next))
			next = NULL;
		o = next;
		path += n + (path[n] == '/');
	}
	return o;
}

static const char *str_at(struct json_object *o, const char *path)
{
	struct json_object *v = at(o, path);

	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static int is_true_at(struct json_object *o, const char *path)
{
	struct json_object *v = at(o, path);

	return json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

static int is_int_at(struct json_object *o, const char *path, int64_t want)
{
	struct json_object *v = at(o, path);

	return json_object_is_type(v, json_type_int) && json_object_get_int64(v) == want;
}

static size_t count_at(struct json_object *o, const char *path)
{
	struct json_object *v = at(o, path);

	if (json_object_is_type(v, json_type_object))
		return (size_t)json_object_object_length(v);
	if (json_object_is_type(v, json_type_array))
		return json_object_array_length(v);
	return (size_t)-1;
}

/* True when no string anywhere in o contains needle (keys included). */
static int no_string_has(struct json_object *o, const char *needle)
{
	if (json_object_is_type(o, json_type_string))
		return strstr(json_object_get_string(o), needle) == NULL;
	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			if (!no_string_has(json_object_array_get_idx(o, i), needle))
				return 0;
	}
	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, v)
		{
			if (strstr(k, needle) || !no_string_has(v, needle))
				return 0;
		}
	}
	return 1;
}

static const char *plain(struct json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
}

static char errbuf[512];

/* Parses text that must succeed (and must not be a bare null). */
static struct json_object *parse_ok_len(const char *text, size_t len, const char *file, int line)
{
	struct json_object *o = rjson_parse(text, len, errbuf, sizeof(errbuf));

	check_(o != NULL, file, line, "parse succeeds");
	if (!o)
		printf("    error: %s\n    input: %.*s\n", errbuf, (int)len, text);
	return o;
}

#define PARSE_OK(text) parse_ok_len((text), strlen(text), __FILE__, __LINE__)

/* Parses text that must fail with exactly msg. */
static void parse_err_len(const char *text, size_t len, const char *msg, const char *file,
			  int line)
{
	struct json_object *o = rjson_parse(text, len, errbuf, sizeof(errbuf));

	check_(o == NULL, file, line, "parse fails");
	check_str_(errbuf, msg, file, line, "error message");
	json_object_put(o);
}

#define PARSE_ERR(text, msg) parse_err_len((text), strlen(text), (msg), __FILE__, __LINE__)
#define PARSE_ERR_LEN(text, len, msg) parse_err_len((text), (len), (msg), __FILE__, __LINE__)

/* ---- seed bodies ------------------------------------------------------ */

static const char seed_create[] =
	"{\n"
	" datasource: {\n"
	"    plugin: \"TiKV\",\n"
	"    pdAddrs: \"192.168.28.201:2379\",\n"
	"    dbName: \"employees\"\n"
	" },\n"
	" table: \"employess\",\n"
	" indexName: \"employess\",\n"
	" columns: [\n"
	"  {name:\"id\",token:\"ik\",search:true}\n"
	" ]\n"
	" ,\n"
	" incr: {\n"
	"   plugin: \"TiCDC-Kafka\"，\n"
	"   mqAddress: \"192.168.28.201:9092\" ,\n"
	"   topic: \"test_topic\"  ,\n"
	"   groupId: \"test_group\" ,\n"
	"   offsetResetStrategy: \"earliest\" #earliest or latest or none\n"
	" }\n"
	"}\n";

static const char seed_task[] =
	"{\n"
	" taskid: 123\n"
	" log: true # 是否显示日志\n"
	"}\n";

static const char seed_incr[] =
	"{\n"
	" indexName: \"employess\" ,\n"
	" incr: {\n"
	"   plugin: \"TiCDC-Kafka\"，\n"
	"   mqAddress: \"192.168.28.201:9092\" ,\n"
	"   topic: \"test_topic\"  ,\n"
	"   groupId: \"test_group\" ,\n"
	"   offsetResetStrategy: \"earliest\" #earliest or latest or none,可选\n"
	" }\n"
	"}\n";

/* The incr member, the same in the create and the incr seed bodies. */
static void check_seed_incr(struct json_object *o)
{
	CHECK(count_at(o, "incr") == 5);
	CHECK_STR(str_at(o, "incr/plugin"), "TiCDC-Kafka");
	CHECK_STR(str_at(o, "incr/mqAddress"), "192.168.28.201:9092");
	CHECK_STR(str_at(o, "incr/topic"), "test_topic");
	CHECK_STR(str_at(o, "incr/groupId"), "test_group");
	CHECK_STR(str_at(o, "incr/offsetResetStrategy"), "earliest");
}

static void test_seed_create(void)
{
	struct json_object *o = PARSE_OK(seed_create);

	CHECK(count_at(o, "") == 5);
	CHECK(count_at(o, "datasource") == 3);
	CHECK_STR(str_at(o, "datasource/plugin"), "TiKV");
	CHECK_STR(str_at(o, "datasource/pdAddrs"), "192.168.28.201:2379");
	CHECK_STR(str_at(o, "datasource/dbName"), "employees");
	CHECK_STR(str_at(o, "table"), "employess");
	CHECK_STR(str_at(o, "indexName"), "employess");
	CHECK(count_at(o, "columns") == 1);
	CHECK(count_at(o, "columns/0") == 3);
	CHECK_STR(str_at(o, "columns/0/name"), "id");
	CHECK_STR(str_at(o, "columns/0/token"), "ik");
	CHECK(is_true_at(o, "columns/0/search"));
	check_seed_incr(o);
	CHECK(no_string_has(o, "#"));
	CHECK(no_string_has(o, "latest"));
	CHECK(no_string_has(o, "，"));
	json_object_put(o);
}

static void test_seed_task(void)
{
	struct json_object *o = PARSE_OK(seed_task);

	CHECK(count_at(o, "") == 2);
	CHECK(is_int_at(o, "taskid", 123));
	CHECK(is_true_at(o, "log"));
	CHECK(no_string_has(o, "日志"));
	json_object_put(o);
}

static void test_seed_incr(void)
{
	struct json_object *o = PARSE_OK(seed_incr);

	CHECK(count_at(o, "") == 2);
	CHECK_STR(str_at(o, "indexName"), "employess");
	check_seed_incr(o);
	CHECK(no_string_has(o, "可选"));
	CHECK(no_string_has(o, "#"));
	json_object_put(o);
}

/* ---- strict JSON ------------------------------------------------------ */

static void test_strict(void)
{
	struct json_object *o = PARSE_OK(
		" {\"a\": [1, -2, 3.5, 1e3, true, false, null, \"x\"], \"b\": {}, \"c\": [], \"\": 0}\r\n");

	CHECK_STR(plain(o), "{\"a\":[1,-2,3.5,1e3,true,false,null,\"x\"],\"b\":{},\"c\":[],\"\":0}");
	CHECK(is_int_at(o, "a/0", 1));
	CHECK(is_int_at(o, "a/1", -2));
	CHECK(json_object_is_type(at(o, "a/2"), json_type_double));
	CHECK(json_object_get_double(at(o, "a/2")) == 3.5);
	CHECK(json_object_get_double(at(o, "a/3")) == 1000.0);
	CHECK(json_object_is_type(at(o, "a/5"), json_type_boolean));
	CHECK(!json_object_get_boolean(at(o, "a/5")));
	CHECK(count_at(o, "a") == 8 && at(o, "a/6") == NULL);
	CHECK(is_int_at(o, "", 0) == 0 && count_at(o, "b") == 0 && count_at(o, "c") == 0);
	json_object_put(o);

	o = PARSE_OK("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u4E2D\\ud83d\\ude00\"]");
	CHECK_STR(json_object_get_string(at(o, "0")), "\"\\/\b\f\n\r\té中\xF0\x9F\x98\x80");
	json_object_put(o);

	/* \u0000 is legal JSON; the string keeps its real length. */
	o = PARSE_OK("[\"a\\u0000b\"]");
	CHECK(json_object_get_string_len(at(o, "0")) == 3);
	CHECK(memcmp(json_object_get_string(at(o, "0")), "a\0b", 3) == 0);
	json_object_put(o);

	/* Raw UTF-8 and DEL pass through unchanged. */
	o = PARSE_OK("{\"名字\": \"中文\x7F\"}");
	CHECK_STR(str_at(o, "名字"), "中文\x7F");
	json_object_put(o);

	/* Scalars at top level. */
	o = PARSE_OK("  \"x\"  ");
	CHECK_STR(json_object_get_string(o), "x");
	json_object_put(o);
	o = PARSE_OK("42");
	CHECK(json_object_get_int64(o) == 42);
	json_object_put(o);
	o = PARSE_OK("true");
	CHECK(json_object_get_boolean(o));
	json_object_put(o);

	/* null is NULL in json-c; it is told apart from an error by err == "". */
	strcpy(errbuf, "junk");
	CHECK(rjson_parse(" null ", 6, errbuf, sizeof(errbuf)) == NULL);
	CHECK_STR(errbuf, "");
}

static void test_numbers(void)
{
	struct json_object *o = PARSE_OK(
		"[9223372036854775807, 9223372036854775808, -9223372036854775808,"
		" -9223372036854775809, 18446744073709551615, 18446744073709551616,"
		" 0, -0, 0.10, 1E+2, 2e-3, -0.5e1, 123456789012345678901234567890]");

	CHECK(json_object_get_int64(at(o, "0")) == INT64_MAX);
	CHECK(json_object_is_type(at(o, "1"), json_type_int));
	CHECK(json_object_get_uint64(at(o, "1")) == (uint64_t)INT64_MAX + 1);
	CHECK(json_object_get_int64(at(o, "2")) == INT64_MIN);
	CHECK(json_object_is_type(at(o, "3"), json_type_double));
	CHECK(json_object_get_double(at(o, "3")) == -9223372036854775809.0);
	CHECK(json_object_get_uint64(at(o, "4")) == UINT64_MAX);
	CHECK(json_object_is_type(at(o, "5"), json_type_double));
	CHECK(json_object_get_double(at(o, "5")) == 18446744073709551616.0);
	CHECK(is_int_at(o, "6", 0) && is_int_at(o, "7", 0));
	CHECK(json_object_get_double(at(o, "8")) == 0.10);
	CHECK(json_object_get_double(at(o, "9")) == 100.0);
	CHECK(json_object_get_double(at(o, "10")) == 0.002);
	CHECK(json_object_get_double(at(o, "11")) == -5.0);
	CHECK(json_object_is_type(at(o, "12"), json_type_double));
	/* Non-integers keep their source text when serialised again. */
	CHECK_STR(plain(at(o, "8")), "0.10");
	CHECK_STR(plain(at(o, "9")), "1E+2");
	CHECK_STR(plain(at(o, "12")), "123456789012345678901234567890");
	json_object_put(o);

	PARSE_ERR("01", "line 1, column 1: numbers must not have leading zeros");
	PARSE_ERR("[-01]", "line 1, column 3: numbers must not have leading zeros");
	PARSE_ERR("[-]", "line 1, column 3: expected a digit after '-', found ']'");
	PARSE_ERR("-", "line 1, column 2: expected a digit after '-', found end of input");
	PARSE_ERR("1.", "line 1, column 3: expected a digit after '.' in a number, found end of input");
	PARSE_ERR("[1.e5]", "line 1, column 4: expected a digit after '.' in a number, found 'e5'");
	PARSE_ERR("1e+", "line 1, column 4: expected a digit in the exponent of a number, found end of input");
	PARSE_ERR("[1ex]", "line 1, column 4: expected a digit in the exponent of a number, found 'x'");
	PARSE_ERR("+1", "line 1, column 1: expected a value, found '+'");
	PARSE_ERR(".5", "line 1, column 1: expected a value, found '.'");
	PARSE_ERR("[NaN]", "line 1, column 2: expected a value (strings need quotes), found 'NaN'");
	PARSE_ERR("-Infinity", "line 1, column 2: expected a digit after '-', found 'Infinity'");
	PARSE_ERR("[1e999]", "line 1, column 2: number 1e999 is out of range");
	PARSE_ERR("[0x10]", "line 1, column 3: expected ',' or ']' after an array element, found 'x10'");
	PARSE_ERR("123abc", "line 1, column 4: expected end of input after the value, found 'abc'");
}

/* ---- extensions ------------------------------------------------------- */

static void test_unquoted_keys(void)
{
	struct json_object *o = PARSE_OK("{a: 1, _b: 2, $c: 3, d.e-f: 4, g9: 5, true: 6, 'h': 7}");

	CHECK(count_at(o, "") == 7);
	CHECK(is_int_at(o, "a", 1) && is_int_at(o, "_b", 2) && is_int_at(o, "$c", 3));
	CHECK(is_int_at(o, "d.e-f", 4) && is_int_at(o, "g9", 5) && is_int_at(o, "true", 6));
	CHECK(is_int_at(o, "h", 7));
	json_object_put(o);

	PARSE_ERR("{9a: 1}", "line 1, column 2: expected a key or '}', found '9'");
	PARSE_ERR("{-a: 1}", "line 1, column 2: expected a key or '}', found '-'");
	PARSE_ERR("{名: 1}", "line 1, column 2: expected a key or '}', found '名' (U+540D)");
}

static void test_single_quotes(void)
{
	struct json_object *o = PARSE_OK("['it\\'s', 'say \"hi\"', '\\u0041\\n', \"\\'\"]");

	CHECK_STR(str_at(o, "0"), "it's");
	CHECK_STR(str_at(o, "1"), "say \"hi\"");
	CHECK_STR(str_at(o, "2"), "A\n");
	CHECK_STR(str_at(o, "3"), "'");
	json_object_put(o);
	PARSE_ERR("['abc\"]", "line 1, column 8: expected the closing quote of the string "
			      "started at line 1, column 2, found end of input");
}

static void test_comments(void)
{
	struct json_object *o = PARSE_OK("# leading\n"
					 "// also leading\n"
					 "/* block\n   over lines */ {\n"
					 "  a: /* inline */ \"x#y//z/*w*/\", # trailing\n"
					 "  b: 'http://host/p' // trailing\n"
					 "  /**/ c: [1, /* , */ 2] #\n"
					 "} # after\n"
					 "// end without newline");

	CHECK(count_at(o, "") == 3);
	CHECK_STR(str_at(o, "a"), "x#y//z/*w*/");
	CHECK_STR(str_at(o, "b"), "http://host/p");
	CHECK(count_at(o, "c") == 2 && is_int_at(o, "c/1", 2));
	json_object_put(o);

	o = PARSE_OK("[1/**/,2]/***/");
	CHECK(count_at(o, "") == 2);
	json_object_put(o);
}

static void test_fullwidth_comma(void)
{
	struct json_object *o = PARSE_OK("{a: 1， b: [1，2，3，]，}");

	CHECK(count_at(o, "") == 2 && is_int_at(o, "a", 1));
	CHECK(count_at(o, "b") == 3 && is_int_at(o, "b/2", 3));
	json_object_put(o);
	/* Only U+FF0C stands for ','; other full-width punctuation does not. */
	PARSE_ERR("[1；2]",
		  "line 1, column 3: expected ',' or ']' after an array element, found '；' (U+FF1B)");
	PARSE_ERR("{a：1}", "line 1, column 3: expected ':' after key \"a\", found '：' (U+FF1A)");
}

static void test_trailing_commas(void)
{
	struct json_object *o = PARSE_OK("{a: [1, 2,], b: {c: 3,},\n}");

	CHECK(count_at(o, "a") == 2 && count_at(o, "b") == 1 && count_at(o, "") == 2);
	json_object_put(o);

	PARSE_ERR("[1,,2]", "line 1, column 4: expected a value, found ','");
	PARSE_ERR("[,]", "line 1, column 2: expected a value, found ','");
	PARSE_ERR("{,}", "line 1, column 2: expected a key or '}', found ','");
	PARSE_ERR("{a: 1,,}", "line 1, column 7: expected a key or '}', found ','");
}

static void test_newline_separator(void)
{
	struct json_object *o = PARSE_OK("[\n 1\n 2 # two\n 'x'\n\n {}\n]");

	CHECK(count_at(o, "") == 4 && is_int_at(o, "1", 2) && count_at(o, "3") == 0);
	json_object_put(o);

	/* A line break inside a block comment also separates; CRLF works too. */
	o = PARSE_OK("{a: 1 /*\n*/ b: 2\r\n c: 3\r\n}");
	CHECK(count_at(o, "") == 3 && is_int_at(o, "c", 3));
	json_object_put(o);

	/* A comma on the next line is still just one separator. */
	o = PARSE_OK("[1\n,2\n,\n3]");
	CHECK(count_at(o, "") == 3);
	json_object_put(o);
}

/* ---- errors ----------------------------------------------------------- */

static void test_error_structure(void)
{
	PARSE_ERR("{\n  table = 1\n}",
		  "line 2, column 9: expected ':' after key \"table\", found '='");
	PARSE_ERR("{\n  table\n}", "line 3, column 1: expected ':' after key \"table\", found '}'");
	PARSE_ERR("{taskid: 123 log: true}",
		  "line 1, column 14: expected ',' or '}' after member \"taskid\", found 'log'");
	PARSE_ERR("{\n taskid: 123 /* c */ log: true\n}",
		  "line 2, column 22: expected ',' or '}' after member \"taskid\", found 'log'");
	PARSE_ERR("[1 2]", "line 1, column 4: expected ',' or ']' after an array element, found '2'");
	PARSE_ERR("[\"a\" \"b\"]",
		  "line 1, column 6: expected ',' or ']' after an array element, found '\"'");
	PARSE_ERR("{a: 1, \"a\": 2}", "line 1, column 8: duplicate key \"a\"");
	PARSE_ERR("{\n name: 1\n other: 2\n 'name': 3\n}", "line 4, column 2: duplicate key \"name\"");
	PARSE_ERR("{a: {b: 1, b: 2}}", "line 1, column 12: duplicate key \"b\"");
	PARSE_ERR("{\"a\\u0000b\": 1}", "line 1, column 2: key must not contain U+0000");
	PARSE_ERR("{plugin: TiKV}",
		  "line 1, column 10: expected a value (strings need quotes), found 'TiKV'");
	PARSE_ERR("[tru]", "line 1, column 2: expected a value (strings need quotes), found 'tru'");
	PARSE_ERR("[True]", "line 1, column 2: expected a value (strings need quotes), found 'True'");
	PARSE_ERR("[nullx]",
		  "line 1, column 2: expected a value (strings need quotes), found 'nullx'");
	PARSE_ERR("{a:}", "line 1, column 4: expected a value, found '}'");
	PARSE_ERR("[1]]", "line 1, column 4: expected end of input after the value, found ']'");
	PARSE_ERR("{} x", "line 1, column 4: expected end of input after the value, found 'x'");
	PARSE_ERR("{}\n{}", "line 2, column 1: expected end of input after the value, found '{'");
	PARSE_ERR("1 2", "line 1, column 3: expected end of input after the value, found '2'");
	PARSE_ERR("", "line 1, column 1: expected a value, found end of input");
	PARSE_ERR("  \n\t", "line 2, column 2: expected a value, found end of input");
	PARSE_ERR("# only a comment\n", "line 2, column 1: expected a value, found end of input");
	PARSE_ERR("{a: 1", "line 1, column 6: expected ',' or '}' after member \"a\", found end of input");
	PARSE_ERR("{a: 1\n", "line 2, column 1: expected ',' or '}' after member \"a\", found end of input");
	PARSE_ERR("{a: 1,", "line 1, column 7: expected a key or '}', found end of input");
	PARSE_ERR("[1,", "line 1, column 4: expected a value, found end of input");
	PARSE_ERR("[", "line 1, column 2: expected a value, found end of input");
	PARSE_ERR("{", "line 1, column 2: expected a key or '}', found end of input");
	PARSE_ERR("]", "line 1, column 1: expected a value, found ']'");
	PARSE_ERR("[1, /]", "line 1, column 5: expected a value, found '/'");
	PARSE_ERR("[1, @]", "line 1, column 5: expected a value, found '@'");
	PARSE_ERR("['a' 'b']",
		  "line 1, column 6: expected ',' or ']' after an array element, found \"'\"");
	PARSE_ERR("[\x01]", "line 1, column 2: expected a value, found control character U+0001");
}

static void test_error_strings(void)
{
	PARSE_ERR("{a: \"abc", "line 1, column 9: expected the closing quote of the string "
				    "started at line 1, column 5, found end of input");
	PARSE_ERR("{\n a: \"abc\n}", "line 2, column 9: expected the closing quote of the string "
					"started at line 2, column 5, found line break");
	PARSE_ERR("[\"ab\r\n\"]", "line 1, column 5: expected the closing quote of the string "
				     "started at line 1, column 2, found line break");
	PARSE_ERR("[\"a\\q\"]", "line 1, column 5: expected an escape character "
				  "(one of \" \\ / ' b f n r t u) after '\\', found 'q'");
	PARSE_ERR("[\"a\\xyz\"]", "line 1, column 5: expected an escape character "
				    "(one of \" \\ / ' b f n r t u) after '\\', found 'x'");
	PARSE_ERR("[\"\\", "line 1, column 4: expected an escape character after '\\', "
			    "found end of input");
	PARSE_ERR("[\"\\u12G4\"]", "line 1, column 7: expected 4 hex digits after \\u, found 'G'");
	PARSE_ERR("[\"\\u12\"]", "line 1, column 7: expected 4 hex digits after \\u, found '\"'");
	PARSE_ERR("[\"\\ud800\"]", "line 1, column 3: lone surrogate \\uD800: expected a low "
				     "surrogate \\uDC00-\\uDFFF after it");
	PARSE_ERR("[\"x\\uD83D\\u0041\"]", "line 1, column 4: lone surrogate \\uD83D: expected a "
					     "low surrogate \\uDC00-\\uDFFF after it");
	PARSE_ERR("[\"\\udc00\"]", "line 1, column 3: lone surrogate \\uDC00: a low surrogate must "
				     "follow a high surrogate");
	PARSE_ERR("[\"\\ud83d\\uZ\"]", "line 1, column 11: expected 4 hex digits after \\u, found 'Z'");
	PARSE_ERR("[\"a\tb\"]",
		  "line 1, column 4: control character U+0009 in string must be escaped (\\u0009)");
	PARSE_ERR("[\"\x1f\"]",
		  "line 1, column 3: control character U+001F in string must be escaped (\\u001F)");
}

static void test_error_comments(void)
{
	PARSE_ERR("{a: 1 /* x\n y", "line 2, column 3: expected '*/' to close the comment opened "
				      "at line 1, column 7, found end of input");
	PARSE_ERR("/*/", "line 1, column 4: expected '*/' to close the comment opened at line 1, "
			 "column 1, found end of input");
	PARSE_ERR("[1] /* x *", "line 1, column 11: expected '*/' to close the comment opened at "
				"line 1, column 5, found end of input");
}

/* Columns count characters, not bytes. */
static void test_error_columns_in_characters(void)
{
	PARSE_ERR("{\"名字\" 1}", "line 1, column 7: expected ':' after key \"名字\", found '1'");
	PARSE_ERR("{a: \"中文\" b: 1}",
		  "line 1, column 10: expected ',' or '}' after member \"a\", found 'b'");
	PARSE_ERR("{\n  # 注释：中文\n  名: 1\n}",
		  "line 3, column 3: expected a key or '}', found '名' (U+540D)");
	PARSE_ERR("['\xF0\x9F\x98\x80' x]",
		  "line 1, column 6: expected ',' or ']' after an array element, found 'x'");
}

static void test_error_encoding(void)
{
	static const char nul[] = "[1,\0 2]";

	PARSE_ERR_LEN(nul, sizeof(nul) - 1, "line 1, column 4: NUL byte in input");
	PARSE_ERR_LEN("\0", 1, "line 1, column 1: NUL byte in input");
	PARSE_ERR("[\"\xFF\"]", "line 1, column 3: invalid UTF-8 byte 0xFF");
	PARSE_ERR("{\n a: \"中\xC0\x80\"}", "line 2, column 7: invalid UTF-8 byte 0xC0");
	PARSE_ERR("[\"\xED\xA0\x80\"]", "line 1, column 3: invalid UTF-8 byte 0xED");
	PARSE_ERR("[\"\xF4\x90\x80\x80\"]", "line 1, column 3: invalid UTF-8 byte 0xF4");
	PARSE_ERR("[\"\x80\"]", "line 1, column 3: invalid UTF-8 byte 0x80");
	PARSE_ERR("[] \xE4\xB8", "line 1, column 4: invalid UTF-8 byte 0xE4");
	/* Even inside a comment, the input must be valid UTF-8. */
	PARSE_ERR("[] # \xFE", "line 1, column 6: invalid UTF-8 byte 0xFE");
}

/* The value of a secret field is never quoted back: a bare password would
 * otherwise land in status.errs, the logs and stderr. */
static void test_error_secret(void)
{
	PARSE_ERR("{ user: \"u\", password: hunter2secret }",
		  "line 1, column 24: expected a value (strings need quotes), found text that is not "
		  "shown (it follows a secret field)");
	PARSE_ERR("{ password: \"pw\" hunter2 }",
		  "line 1, column 18: expected ',' or '}' after member \"password\", found text that "
		  "is not shown (it follows a secret field)");
	/* Other keys still show what was found. */
	PARSE_ERR("{ user: hunter2 }",
		  "line 1, column 9: expected a value (strings need quotes), found 'hunter2'");
}

static void test_complete(void)
{
	static const struct {
		const char *text;
		bool complete;
	} cases[] = {
		{"", false},
		{"  \n# a comment\n", false},
		{"{", false},
		{"{ table: ", false},
		{"{ a: \"}\" ", false},           /* a brace inside a string */
		{"{ a: 1 # }\n", false},         /* inside a comment */
		{"{ a: 1 /* } */", false},
		{"{ a: [1, {b: 2}] ", false},
		{"{ a: 1 }", true},
		{"{ a: 1 }\n", true},
		{"{ a: '}' }", true},
		{"{ a: \"\\\"}\" }", true},        /* an escaped quote */
		{"hello\n", true},                /* not an object: judged at once */
		{"\"x\"", true},
		{"[1, 2]", true},
		{"}", true},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(rjson_complete(cases[i].text, strlen(cases[i].text)) == cases[i].complete);
}

static void test_error_depth(void)
{
	size_t n = 10000;
	char *deep = malloc(2 * n);
	struct json_object *o;
	char msg[128];

	memset(deep, '[', n);
	memset(deep + n, ']', n);
	snprintf(msg, sizeof(msg), "line 1, column %d: nesting deeper than %d levels",
		 RJSON_MAX_DEPTH + 1, RJSON_MAX_DEPTH);
	PARSE_ERR_LEN(deep, 2 * n, msg);
	PARSE_ERR_LEN(deep, n, msg);

	/* Exactly RJSON_MAX_DEPTH levels is fine. */
	memmove(deep + RJSON_MAX_DEPTH, deep + n, RJSON_MAX_DEPTH);
	o = parse_ok_len(deep, 2 * RJSON_MAX_DEPTH, __FILE__, __LINE__);
	CHECK(json_object_is_type(o, json_type_array));
	json_object_put(o);

	for (size_t i = 0; i < n / 4; i++) /* two levels per 4 characters */
		memcpy(deep + 4 * i, "{a:[", 4);
	PARSE_ERR_LEN(deep, n, "line 1, column 129: nesting deeper than 64 levels");
	free(deep);
}

/* ---- API contract ----------------------------------------------------- */

static void test_api(void)
{
	static const char text[] = "{a:1}trailing";
	struct json_object *o;
	char small[12];

	/* The input need not be NUL-terminated: only len bytes are read. */
	o = parse_ok_len(text, 5, __FILE__, __LINE__);
	CHECK(is_int_at(o, "a", 1));
	json_object_put(o);
	PARSE_ERR_LEN(text, 4, "line 1, column 5: expected ',' or '}' after member \"a\", found end of input");

	/* err may be NULL with errlen 0, and a short buffer is still terminated. */
	CHECK(rjson_parse("[", 1, NULL, 0) == NULL);
	memset(small, 'x', sizeof(small));
	CHECK(rjson_parse("[", 1, small, sizeof(small)) == NULL);
	CHECK_STR(small, "line 1, col");
	memset(small, 'x', sizeof(small));
	CHECK(rjson_parse("[", 1, small, 1) == NULL);
	CHECK(small[0] == '\0' && small[1] == 'x');

	/* NULL text with length 0 is empty input. */
	CHECK(rjson_parse(NULL, 0, errbuf, sizeof(errbuf)) == NULL);
	CHECK_STR(errbuf, "line 1, column 1: expected a value, found end of input");

	/* A long key is shortened in messages. */
	PARSE_ERR("{abcdefghijabcdefghijabcdefghijabcdefghijabcdefghij: 1 x: 2}",
		  "line 1, column 56: expected ',' or '}' after member "
		  "\"abcdefghijabcdefghijabcdefghijabcdefghij...\", found 'x'");
}

int main(void)
{
	test_error_secret();
	test_complete();
	test_seed_create();
	test_seed_task();
	test_seed_incr();
	test_strict();
	test_numbers();
	test_unquoted_keys();
	test_single_quotes();
	test_comments();
	test_fullwidth_comma();
	test_trailing_commas();
	test_newline_separator();
	test_error_structure();
	test_error_strings();
	test_error_comments();
	test_error_columns_in_characters();
	test_error_encoding();
	test_error_depth();
	test_api();
	return check_summary();
}
