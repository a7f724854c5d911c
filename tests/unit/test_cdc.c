/* Unit tests for the TiCDC message decoders (src/cdc*.c): every example of
 * shared/formats/ticdc.md and TiCDC's documentation, generated open-protocol
 * batches, each value conversion, detection, and garbage that must fail
 * cleanly. Standalone: exits non-zero on any failure and ends with
 * "N passed, M failed". */
#include "tisfs/cdc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check.h"

static struct cdc_events ev;
static char err[256];

/* ---- helpers ---------------------------------------------------------- */

/* Decodes into a freshly reset ev; on an unexpected failure the error is
 * printed under the caller's line. */
static int decode_(enum cdc_protocol p, const void *key, size_t klen, const void *val,
                   size_t vlen, const char *file, int line)
{
    int rc;

    cdc_events_reset(&ev);
    rc = cdc_decode(p, key, klen, val, vlen, &ev, err, sizeof err);
    if (!check_(rc == 0, file, line, "decode succeeds"))
        printf("    error: %s\n", err);
    return rc;
}
#define DECODE(p, val) decode_((p), NULL, 0, (val), strlen(val), __FILE__, __LINE__)
#define DECODE_KV(p, k, kl, v, vl) decode_((p), (k), (kl), (v), (vl), __FILE__, __LINE__)

/* Must fail with a message and leave no events behind. */
static void fails_(enum cdc_protocol p, const void *key, size_t klen, const void *val,
                   size_t vlen, const char *needle, const char *file, int line)
{
    int rc;

    cdc_events_reset(&ev);
    err[0] = 0;
    rc = cdc_decode(p, key, klen, val, vlen, &ev, err, sizeof err);
    check_(rc == -1, file, line, "decode fails");
    check_(ev.n == 0, file, line, "no events after a failure");
    check_(err[0] != 0, file, line, "an error message");
    if (needle)
        check_has_(err, needle, file, line, "error names the problem");
}
#define FAILS(p, val, needle) fails_((p), NULL, 0, (val), strlen(val), (needle), __FILE__, __LINE__)

static const struct tis_value *col(const struct cdc_row *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->cols[i].name, name) == 0)
            return &r->cols[i].v;
    return NULL;
}

/* The value of column name equals want[0..wlen) (text when wlen is -1). */
static void val_(const struct cdc_row *r, const char *name, const char *want, long wlen,
                 const char *file, int line)
{
    const struct tis_value *v = col(r, name);
    size_t n = wlen < 0 ? strlen(want) : (size_t)wlen;
    char what[128];

    snprintf(what, sizeof what, "column %s = \"%s\"", name, want);
    if (!check_(v && !v->null && v->len == n && memcmp(v->p, want, n) == 0, file, line, what)) {
        if (!v)
            printf("    no such column\n");
        else
            printf("    got: %s\"%.*s\" (%zu bytes)\n", v->null ? "NULL " : "", (int)v->len,
                   v->p, v->len);
    }
}
#define VAL(r, name, want) val_((r), (name), (want), -1, __FILE__, __LINE__)
#define VALB(r, name, want, n) val_((r), (name), (want), (n), __FILE__, __LINE__)
#define ISNULL(r, name) CHECK(col((r), (name)) && col((r), (name))->null)

/* open-protocol framing */
static void add_be64(struct tbuf *b, uint64_t v)
{
    unsigned char x[8];
    put_be64(x, v);
    tbuf_add(b, x, 8);
}

static void open_item(struct tbuf *b, const char *json)
{
    add_be64(b, strlen(json));
    tbuf_adds(b, json);
}

static struct tbuf K, V;

static void open_begin(void)
{
    tbuf_reset(&K);
    tbuf_reset(&V);
    add_be64(&K, 1);
}

static void open_event(const char *key, const char *val)
{
    open_item(&K, key);
    if (val)
        open_item(&V, val);
}

#define DECODE_OPEN() DECODE_KV(CDC_OPEN, K.data, K.len, V.data, V.len)

/* ---- shared ----------------------------------------------------------- */

/* Column names as rows match them: strcasecmp's answer in the C locale,
 * for every pair of bytes (the letters' case, and the bytes that differ
 * from a letter by 0x20 but are none: '@' and '`', '[' and '{'). */
static void test_name_eq(void)
{
    int wrong = 0;
    for (int x = 1; x < 256; x++)
        for (int y = 1; y < 256; y++) {
            char a[] = {'i', (char)x, 'd', 0}, b[] = {'I', (char)y, 'd', 0};
            wrong += name_eq(a, b) != (strcasecmp(a, b) == 0);
        }
    CHECK(wrong == 0);
    CHECK(name_eq("Title", "tITLE"));
    CHECK(!name_eq("title", "titles"));
    CHECK(!name_eq("titles", "title"));
    CHECK(name_eq("", ""));
}

static void test_names(void)
{
    CHECK_STR(cdc_protocol_name(CDC_OPEN), "open-protocol");
    CHECK_STR(cdc_protocol_name(CDC_CANAL), "canal-json");
    CHECK_STR(cdc_protocol_name(CDC_DEBEZIUM), "debezium");
    CHECK_STR(cdc_protocol_name(CDC_SIMPLE), "simple");
    CHECK_INT(cdc_protocol_from_name("open-protocol"), CDC_OPEN);
    CHECK_INT(cdc_protocol_from_name("canal-json"), CDC_CANAL);
    CHECK_INT(cdc_protocol_from_name("debezium"), CDC_DEBEZIUM);
    CHECK_INT(cdc_protocol_from_name("simple"), CDC_SIMPLE);
    CHECK_INT(cdc_protocol_from_name("avro"), CDC_UNKNOWN);
    CHECK_INT(cdc_protocol_from_name(""), CDC_UNKNOWN);
    CHECK_INT(cdc_protocol_from_name(NULL), CDC_UNKNOWN);
    CHECK_STR(ver_domain_name(VER_NONE), "none");
    CHECK_STR(ver_domain_name(VER_TSO), "tso");
    CHECK_STR(ver_domain_name(VER_BINLOG), "binlog");
    CHECK_STR(ver_domain_name(VER_MS), "ms");
}

static void test_binlog_version(void)
{
    struct version v = cdc_binlog_version("mysql-bin.000003", 4, 2);
    CHECK_INT(v.domain, VER_BINLOG);
    CHECK(v.v == ((UINT64_C(3) << 44) | (UINT64_C(4) << 12) | 2));
    v = cdc_binlog_version("mysql-bin.000003", 4, 100000);
    CHECK(v.v == ((UINT64_C(3) << 44) | (UINT64_C(4) << 12) | 4095));
    CHECK(cdc_binlog_version("a.000003", 0xFFFFFFFF, 0).v <
          cdc_binlog_version("a.000004", 4, 0).v);
    CHECK(cdc_binlog_version("a.000004", 4, 1).v < cdc_binlog_version("a.000004", 5, 0).v);
    CHECK_INT(cdc_binlog_version("mysql-bin", 4, 0).domain, VER_NONE);
    CHECK_INT(cdc_binlog_version("mysql-bin.", 4, 0).domain, VER_NONE);
    CHECK_INT(cdc_binlog_version("mysql-bin.00a1", 4, 0).domain, VER_NONE);
    CHECK_INT(cdc_binlog_version("mysql-bin.000001", UINT64_C(1) << 32, 0).domain, VER_NONE);
    CHECK_INT(cdc_binlog_version("mysql-bin.99999999", 4, 0).domain, VER_NONE);
    CHECK_INT(cdc_binlog_version(NULL, 4, 0).domain, VER_NONE);
    CHECK_INT(cdc_binlog_version("x.1.000007", 1, 0).domain, VER_BINLOG);
}

static void test_exchange_table(void)
{
    char db[64], t[64];
    CHECK(cdc_ddl_exchange_table("ALTER TABLE pt EXCHANGE PARTITION p0 WITH TABLE nt", db,
                                 sizeof db, t, sizeof t));
    CHECK_STR(db, "");
    CHECK_STR(t, "nt");
    CHECK(cdc_ddl_exchange_table("/* x */ alter table `d`.`pt` exchange partition `p0` with "
                                 "table `o d`.`n``t` without validation",
                                 db, sizeof db, t, sizeof t));
    CHECK_STR(db, "o d");
    CHECK_STR(t, "n`t");
    CHECK(!cdc_ddl_exchange_table("ALTER TABLE pt TRUNCATE PARTITION p0", db, sizeof db, t,
                                  sizeof t));
    CHECK(!cdc_ddl_exchange_table("ALTER TABLE pt EXCHANGE PARTITION p0", db, sizeof db, t,
                                  sizeof t));
    CHECK(!cdc_ddl_exchange_table(NULL, db, sizeof db, t, sizeof t));
}

static void test_ddl_classify(void)
{
    CHECK_INT(cdc_ddl_classify("TRUNCATE TABLE t"), DDL_TRUNCATE);
    CHECK_INT(cdc_ddl_classify("truncate `db`.`t`"), DDL_TRUNCATE);
    CHECK_INT(cdc_ddl_classify("  /* hint */ -- x\n # y\n Truncate table t"), DDL_TRUNCATE);
    CHECK_INT(cdc_ddl_classify("DROP TABLE IF EXISTS t"), DDL_DROP);
    CHECK_INT(cdc_ddl_classify("drop tables a, b"), DDL_DROP);
    CHECK_INT(cdc_ddl_classify("drop database if exists test"), DDL_DROP);
    CHECK_INT(cdc_ddl_classify("DROP SCHEMA s"), DDL_DROP);
    CHECK_INT(cdc_ddl_classify("DROP VIEW v"), DDL_OTHER);
    CHECK_INT(cdc_ddl_classify("DROP INDEX i ON t"), DDL_OTHER);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t ADD COLUMN c INT"), DDL_ADD_COLUMN);
    CHECK_INT(cdc_ddl_classify("alter table `d`.`t` add c int"), DDL_ADD_COLUMN);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t ADD (a INT, b INT)"), DDL_ADD_COLUMN);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE `we``ird` ADD `x` INT"), DDL_ADD_COLUMN);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t DROP COLUMN c"), DDL_DROP_COLUMN);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t DROP c"), DDL_DROP_COLUMN);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t ADD INDEX i (c)"), DDL_OTHER);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t ADD UNIQUE KEY u (c)"), DDL_OTHER);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t ADD PRIMARY KEY (c)"), DDL_OTHER);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES b(a)"),
              DDL_OTHER);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t DROP INDEX i"), DDL_OTHER);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t DROP KEY i"), DDL_OTHER);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t DROP PRIMARY KEY"), DDL_OTHER);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t DROP FOREIGN KEY f"), DDL_OTHER);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t DROP CONSTRAINT c"), DDL_OTHER);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t DROP PARTITION p0"), DDL_PARTITION_ROWS);
    CHECK_INT(cdc_ddl_classify("alter table `d`.`t` truncate partition p0, p1"),
              DDL_PARTITION_ROWS);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t EXCHANGE PARTITION p0 WITH TABLE t2"),
              DDL_PARTITION_ROWS);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t ADD PARTITION (PARTITION p9 VALUES LESS THAN (9))"),
              DDL_OTHER);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t REORGANIZE PARTITION p0 INTO (PARTITION a VALUES "
                               "LESS THAN (5), PARTITION b VALUES LESS THAN (10))"),
              DDL_OTHER);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t TRUNCATE"), DDL_OTHER);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t CONVERT PARTITION p0 TO TABLE x"),
              DDL_PARTITION_ROWS);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t CONVERT TABLE x TO PARTITION p9 VALUES LESS THAN "
                               "(900)"),
              DDL_PARTITION_ROWS);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t CONVERT TO CHARACTER SET utf8mb4"), DDL_OTHER);
    CHECK_INT(cdc_ddl_classify("ALTER ONLINE IGNORE TABLE t DROP PARTITION p0"),
              DDL_PARTITION_ROWS);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t WAIT 5 TRUNCATE PARTITION p0"), DDL_PARTITION_ROWS);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t NOWAIT DROP COLUMN c"), DDL_DROP_COLUMN);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t MODIFY COLUMN c BIGINT"), DDL_OTHER);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t ADD INDEX i (a), DROP COLUMN b"), DDL_DROP_COLUMN);
    CHECK_INT(cdc_ddl_classify("ALTER TABLE t ALTER COLUMN c SET DEFAULT 'x, DROP COLUMN y'"),
              DDL_OTHER);
    CHECK_INT(cdc_ddl_classify("CREATE TABLE t (a int)"), DDL_OTHER);
    CHECK_INT(cdc_ddl_classify("RENAME TABLE a TO b"), DDL_OTHER);
    CHECK_INT(cdc_ddl_classify("TRUNCATED"), DDL_OTHER);
    CHECK_INT(cdc_ddl_classify(""), DDL_OTHER);
    CHECK_INT(cdc_ddl_classify("/* unterminated"), DDL_OTHER);
    CHECK_INT(cdc_ddl_classify(NULL), DDL_OTHER);
}

/* ---- open-protocol ---------------------------------------------------- */

/* ticdc.md's example, byte for byte: one row, then a resolved event. */
static void test_open_doc_example(void)
{
    open_begin();
    open_event("{\"ts\":415508878783938562,\"scm\":\"test\",\"tbl\":\"t1\",\"t\":1}",
               "{\"u\":{\"id\":{\"t\":3,\"h\":true,\"v\":1},\"val\":{\"t\":15,\"v\":\"YWE=\"}}}");
    CHECK_INT(K.len, 8 + 8 + 0x37);
    CHECK_INT(V.len, 8 + 0x3d);
    if (DECODE_OPEN() == 0 && CHECK_INT(ev.n, 1)) {
        CHECK_INT(ev.ev[0].kind, CDC_ROW);
        CHECK_INT(ev.ev[0].op, CDC_INSERT);
        CHECK_STR(ev.ev[0].db, "test");
        CHECK_STR(ev.ev[0].table, "t1");
        CHECK_INT(ev.ev[0].ver.domain, VER_TSO);
        CHECK(ev.ev[0].ver.v == UINT64_C(415508878783938562));
        CHECK_INT(ev.ev[0].after.n, 2);
        CHECK_INT(ev.ev[0].before.n, 0);
        VAL(&ev.ev[0].after, "id", "1");
        /* an old release (no "f"): VARCHAR travelled base64 */
        VAL(&ev.ev[0].after, "val", "aa");
    }

    open_begin();
    open_item(&K, "{\"ts\":415508881038376963,\"t\":3}");
    add_be64(&V, 0);
    CHECK_INT(K.len, 8 + 8 + 0x1f);
    if (DECODE_OPEN() == 0 && CHECK_INT(ev.n, 1)) {
        CHECK_INT(ev.ev[0].kind, CDC_RESOLVED);
        CHECK_INT(ev.ev[0].ver.domain, VER_TSO);
        CHECK(ev.ev[0].ver.v == UINT64_C(415508881038376963));
        CHECK_STR(ev.ev[0].db, "");
        CHECK_STR(ev.ev[0].table, "");
    }
    /* a resolved event without any value is fine too */
    if (DECODE_KV(CDC_OPEN, K.data, K.len, NULL, 0) == 0)
        CHECK_INT(ev.n, 1);
}

static void test_open_batch(void)
{
    open_begin();
    open_event("{\"ts\":100,\"scm\":\"db\",\"tbl\":\"t\",\"t\":1,\"rid\":1}",
               "{\"u\":{\"id\":{\"t\":3,\"h\":true,\"f\":11,\"v\":1},"
               "\"name\":{\"t\":15,\"f\":64,\"v\":\"héllo\"},"
               "\"note\":{\"t\":15,\"f\":64,\"v\":null}}}");
    open_event("{\"ts\":101,\"scm\":\"db\",\"tbl\":\"t\",\"t\":1}",
               "{\"u\":{\"id\":{\"t\":3,\"h\":true,\"f\":11,\"v\":1},"
               "\"name\":{\"t\":15,\"f\":64,\"v\":\"new\"}},"
               "\"p\":{\"id\":{\"t\":3,\"h\":true,\"f\":11,\"v\":1},"
               "\"name\":{\"t\":15,\"f\":64,\"v\":\"old\"}}}");
    open_event("{\"ts\":102,\"scm\":\"db\",\"tbl\":\"u\",\"t\":1}",
               "{\"d\":{\"id\":{\"t\":8,\"h\":true,\"f\":139,\"v\":18446744073709551615}}}");
    if (DECODE_OPEN() != 0 || !CHECK_INT(ev.n, 3))
        return;
    CHECK_INT(ev.ev[0].op, CDC_INSERT);
    CHECK(ev.ev[0].ver.v == 100);
    VAL(&ev.ev[0].after, "id", "1");
    VAL(&ev.ev[0].after, "name", "héllo");
    ISNULL(&ev.ev[0].after, "note");
    CHECK_INT(ev.ev[1].op, CDC_UPDATE);
    CHECK(ev.ev[1].ver.v == 101);
    VAL(&ev.ev[1].after, "name", "new");
    VAL(&ev.ev[1].before, "name", "old");
    CHECK_INT(ev.ev[2].op, CDC_DELETE);
    CHECK_STR(ev.ev[2].table, "u");
    CHECK_INT(ev.ev[2].after.n, 0);
    VAL(&ev.ev[2].before, "id", "18446744073709551615");
}

static void test_open_values(void)
{
    open_begin();
    open_event("{\"ts\":1,\"scm\":\"db\",\"tbl\":\"t\",\"t\":1}",
               "{\"u\":{"
               "\"bin\":{\"t\":253,\"f\":1,\"v\":"
               "\"\\\\x00\\\\xff\\\\n\\\\t\\\\\\\\\\\\\\\"\\\\a\\\\b"
               "\\\\f\\\\r\\\\v\\\\101\\\\u00e9\\\\U0001F600z\"},"
               "\"blob\":{\"t\":252,\"f\":1,\"v\":\"AAH/\"},"
               "\"text\":{\"t\":252,\"f\":0,\"v\":\"aMOpbGxv\"},"
               "\"ch\":{\"t\":254,\"f\":0,\"v\":\"plain\"},"
               "\"ubig\":{\"t\":8,\"f\":128,\"v\":18446744073709551615},"
               "\"big\":{\"t\":8,\"f\":0,\"v\":-9223372036854775808},"
               "\"f\":{\"t\":4,\"f\":0,\"v\":12345.123},"
               "\"d\":{\"t\":5,\"f\":0,\"v\":1e+21},"
               "\"dec\":{\"t\":246,\"f\":0,\"v\":\"-12.3400\"},"
               "\"dt\":{\"t\":12,\"f\":0,\"v\":\"2020-01-02 03:04:05.678\"},"
               "\"bit\":{\"t\":16,\"f\":0,\"v\":1023},"
               "\"en\":{\"t\":247,\"f\":0,\"v\":2},"
               "\"js\":{\"t\":245,\"f\":0,\"v\":\"{\\\"a\\\": 1}\"}"
               "}}");
    if (DECODE_OPEN() != 0 || !CHECK_INT(ev.n, 1))
        return;
    VALB(&ev.ev[0].after, "bin",
         "\x00\xff\n\t\\\"\a\b\f\r\vA\xc3\xa9\xf0\x9f\x98\x80z", 19);
    VALB(&ev.ev[0].after, "blob", "\x00\x01\xff", 3);
    VAL(&ev.ev[0].after, "text", "héllo");
    VAL(&ev.ev[0].after, "ch", "plain");
    VAL(&ev.ev[0].after, "ubig", "18446744073709551615");
    VAL(&ev.ev[0].after, "big", "-9223372036854775808");
    VAL(&ev.ev[0].after, "f", "12345.123");
    VAL(&ev.ev[0].after, "d", "1e+21");
    VAL(&ev.ev[0].after, "dec", "-12.3400");
    VAL(&ev.ev[0].after, "dt", "2020-01-02 03:04:05.678");
    VAL(&ev.ev[0].after, "bit", "1023");
    VAL(&ev.ev[0].after, "en", "2");
    VAL(&ev.ev[0].after, "js", "{\"a\": 1}");

    /* a Go escape strconv.Unquote would reject fails the message */
    open_begin();
    open_event("{\"ts\":1,\"scm\":\"db\",\"tbl\":\"t\",\"t\":1}",
               "{\"u\":{\"bin\":{\"t\":15,\"f\":1,\"v\":\"\\\\q\"}}}");
    fails_(CDC_OPEN, K.data, K.len, V.data, V.len, "bin", __FILE__, __LINE__);
    open_begin();
    open_event("{\"ts\":1,\"scm\":\"db\",\"tbl\":\"t\",\"t\":1}",
               "{\"u\":{\"b\":{\"t\":252,\"f\":1,\"v\":\"not base64!\"}}}");
    fails_(CDC_OPEN, K.data, K.len, V.data, V.len, "base64", __FILE__, __LINE__);
}

static void test_open_ddl(void)
{
    static const struct {
        const char *sql;
        int action;
        enum cdc_ddl want;
    } cases[] = {
        {"TRUNCATE TABLE `db`.`t`", 11, DDL_TRUNCATE},
        {"DROP TABLE `db`.`t`", 4, DDL_DROP},
        {"ALTER TABLE t ADD COLUMN c int", 5, DDL_ADD_COLUMN},
        {"CREATE TABLE t (a int)", 3, DDL_OTHER},
        /* unreadable text: the action type decides */
        {"/*!40000 truncate t */", 11, DDL_TRUNCATE},
        {"/*!40000 alter table t drop partition p0 */", 20, DDL_PARTITION_ROWS},
        {"/*!40000 alter table t truncate partition p0 */", 23, DDL_PARTITION_ROWS},
        {"/*!40000 alter table t exchange partition p0 with table u */", 42, DDL_PARTITION_ROWS},
    };
    char val[256];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        open_begin();
        snprintf(val, sizeof val, "{\"q\":\"%s\",\"t\":%d}", cases[i].sql, cases[i].action);
        open_event("{\"ts\":555,\"scm\":\"db\",\"tbl\":\"t\",\"t\":2}", val);
        if (DECODE_OPEN() != 0 || !CHECK_INT(ev.n, 1))
            continue;
        CHECK_INT(ev.ev[0].kind, CDC_DDL);
        CHECK_INT(ev.ev[0].ddl, cases[i].want);
        CHECK_STR(ev.ev[0].sql, cases[i].sql);
        CHECK_STR(ev.ev[0].db, "db");
        CHECK_STR(ev.ev[0].table, "t");
        CHECK(ev.ev[0].ver.v == 555);
    }
}

static void test_open_garbage(void)
{
    static const unsigned char v1[8] = {0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char v2[8] = {0, 0, 0, 0, 0, 0, 0, 2};
    unsigned char huge[24] = {0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff,
                              0xff, 0xff, 0xff, 0xf0};

    fails_(CDC_OPEN, NULL, 0, "x", 1, "key", __FILE__, __LINE__);
    fails_(CDC_OPEN, v1, 5, NULL, 0, "too short", __FILE__, __LINE__);
    fails_(CDC_OPEN, v2, 8, NULL, 0, "version", __FILE__, __LINE__);
    fails_(CDC_OPEN, v1, 8, NULL, 0, "no event", __FILE__, __LINE__);
    fails_(CDC_OPEN, huge, 16, NULL, 0, "past the end", __FILE__, __LINE__);
    fails_(CDC_OPEN, huge, 12, NULL, 0, "truncated", __FILE__, __LINE__);

    /* a key with no value */
    open_begin();
    open_event("{\"ts\":1,\"scm\":\"db\",\"tbl\":\"t\",\"t\":1}", NULL);
    fails_(CDC_OPEN, K.data, K.len, V.data, V.len, "missing", __FILE__, __LINE__);
    /* a value length past the end */
    add_be64(&V, 1000);
    tbuf_adds(&V, "{}");
    fails_(CDC_OPEN, K.data, K.len, V.data, V.len, "past the end", __FILE__, __LINE__);
    /* more values than keys */
    open_begin();
    open_event("{\"ts\":1,\"scm\":\"db\",\"tbl\":\"t\",\"t\":1}", "{\"u\":{}}");
    open_item(&V, "{\"u\":{}}");
    fails_(CDC_OPEN, K.data, K.len, V.data, V.len, "after the last", __FILE__, __LINE__);
    /* a good event then a bad one: nothing comes out */
    open_begin();
    open_event("{\"ts\":1,\"scm\":\"db\",\"tbl\":\"t\",\"t\":1}",
               "{\"u\":{\"a\":{\"t\":3,\"f\":0,\"v\":1}}}");
    open_event("{\"ts\":2,\"scm\":\"db\",\"tbl\":\"t\",\"t\":1}", "{\"u\":{\"a\":{\"v\":1}}}");
    fails_(CDC_OPEN, K.data, K.len, V.data, V.len, "value 1", __FILE__, __LINE__);

    static const struct {
        const char *key, *val, *needle;
    } bad[] = {
        {"not json", "{}", "key 0"},
        {"[1,2]", "{}", "not a JSON object"},
        {"null", "{}", "not a JSON object"},
        {"{\"ts\":1}", "{}", "\"t\""},
        {"{\"t\":1}", "{}", "\"ts\""},
        {"{\"ts\":-1,\"t\":1}", "{}", "\"ts\""},
        {"{\"ts\":1,\"t\":9}", "{}", "unknown event type"},
        {"{\"ts\":1,\"t\":1,\"ccl\":\"s3://x\"}", "{}", "claim-check"},
        {"{\"ts\":1,\"t\":1,\"ohk\":true}", "{\"u\":{\"a\":{\"t\":3,\"h\":true,\"v\":1}}}",
         "handle-key-only"},
        {"{\"ts\":1,\"t\":1}", "{\"u\":{\"a\":", "value 0"},
        {"{\"ts\":1,\"t\":1}", "null", "not a JSON object"},
        {"{\"ts\":1,\"t\":1}", "{}", "neither"},
        {"{\"ts\":1,\"t\":1}", "{\"u\":null,\"d\":null}", "neither"},
        {"{\"ts\":1,\"t\":1}", "{\"u\":[1]}", "objects"},
        {"{\"ts\":1,\"t\":1}", "{\"u\":{\"a\":null}}", "not a column"},
        {"{\"ts\":1,\"t\":1}", "{\"u\":{\"a\":{\"t\":3,\"v\":{}}}}", "expected"},
        {"{\"ts\":1,\"t\":1}", "{\"u\":{\"a\":{\"t\":3,\"f\":\"x\",\"v\":1}}}", "flags"},
        {"{\"ts\":1,\"t\":2}", "{\"t\":3}", "query"},
        {"{\"ts\":1,\"t\":1}", "{\"u\":{}} trailing", "after the JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        open_begin();
        open_event(bad[i].key, bad[i].val);
        fails_(CDC_OPEN, K.data, K.len, V.data, V.len, bad[i].needle, __FILE__, __LINE__);
    }
}

/* ---- canal-json ------------------------------------------------------- */

/* ticdc.md's examples, from TiCDC's own tests and docs. */
static void test_canal_doc_examples(void)
{
    if (DECODE(CDC_CANAL,
               "{\"id\":0,\"database\":\"test\",\"table\":\"employee\",\"pkNames\":[\"id\"],"
               "\"isDdl\":false,\"type\":\"INSERT\",\"es\":1668067205238,\"ts\":1668067206650,"
               "\"sql\":\"\",\"sqlType\":{\"FirstName\":12,\"HireDate\":91,\"LastName\":12,"
               "\"OfficeLocation\":12,\"id\":4},\"mysqlType\":{\"FirstName\":\"varchar\","
               "\"HireDate\":\"date\",\"LastName\":\"varchar\",\"OfficeLocation\":\"varchar\","
               "\"id\":\"int\"},\"data\":[{\"FirstName\":\"Bob\",\"HireDate\":\"2014-06-04\","
               "\"LastName\":\"Smith\",\"OfficeLocation\":\"New York\",\"id\":\"101\"}],"
               "\"old\":null}") == 0 &&
        CHECK_INT(ev.n, 1)) {
        CHECK_INT(ev.ev[0].kind, CDC_ROW);
        CHECK_INT(ev.ev[0].op, CDC_INSERT);
        CHECK_STR(ev.ev[0].db, "test");
        CHECK_STR(ev.ev[0].table, "employee");
        CHECK_INT(ev.ev[0].ver.domain, VER_MS);
        CHECK(ev.ev[0].ver.v == UINT64_C(1668067205238));
        CHECK_INT(ev.ev[0].after.n, 5);
        VAL(&ev.ev[0].after, "FirstName", "Bob");
        VAL(&ev.ev[0].after, "HireDate", "2014-06-04");
        VAL(&ev.ev[0].after, "OfficeLocation", "New York");
        VAL(&ev.ev[0].after, "id", "101");
    }
    if (DECODE(CDC_CANAL,
               "{\"id\":0,\"database\":\"test\",\"table\":\"employee\",\"pkNames\":[\"id\"],"
               "\"isDdl\":false,\"type\":\"UPDATE\",\"es\":1668067229137,\"ts\":1668067230720,"
               "\"sql\":\"\",\"sqlType\":{\"FirstName\":12,\"HireDate\":91,\"LastName\":12,"
               "\"OfficeLocation\":12,\"id\":4},\"mysqlType\":{\"FirstName\":\"varchar\","
               "\"HireDate\":\"date\",\"LastName\":\"varchar\",\"OfficeLocation\":\"varchar\","
               "\"id\":\"int\"},\"data\":[{\"FirstName\":\"Bob\",\"HireDate\":\"2015-10-08\","
               "\"LastName\":\"Smith\",\"OfficeLocation\":\"Los Angeles\",\"id\":\"101\"}],"
               "\"old\":[{\"FirstName\":\"Bob\",\"HireDate\":\"2014-06-04\",\"LastName\":"
               "\"Smith\",\"OfficeLocation\":\"New York\",\"id\":\"101\"}]}") == 0 &&
        CHECK_INT(ev.n, 1)) {
        CHECK_INT(ev.ev[0].op, CDC_UPDATE);
        CHECK(ev.ev[0].ver.v == UINT64_C(1668067229137));
        VAL(&ev.ev[0].after, "HireDate", "2015-10-08");
        VAL(&ev.ev[0].after, "OfficeLocation", "Los Angeles");
        CHECK_INT(ev.ev[0].before.n, 5);
        VAL(&ev.ev[0].before, "HireDate", "2014-06-04");
        VAL(&ev.ev[0].before, "OfficeLocation", "New York");
        VAL(&ev.ev[0].before, "id", "101");
    }
    if (DECODE(CDC_CANAL,
               "{\"id\":0,\"database\":\"test\",\"table\":\"employee\",\"pkNames\":[\"id\"],"
               "\"isDdl\":false,\"type\":\"DELETE\",\"es\":1668067230388,\"ts\":1668067231725,"
               "\"sql\":\"\",\"sqlType\":{\"FirstName\":12,\"HireDate\":91,\"LastName\":12,"
               "\"OfficeLocation\":12,\"id\":4},\"mysqlType\":{\"FirstName\":\"varchar\","
               "\"HireDate\":\"date\",\"LastName\":\"varchar\",\"OfficeLocation\":\"varchar\","
               "\"id\":\"int\"},\"data\":[{\"FirstName\":\"Bob\",\"HireDate\":\"2015-10-08\","
               "\"LastName\":\"Smith\",\"OfficeLocation\":\"Los Angeles\",\"id\":\"101\"}],"
               "\"old\":null}") == 0 &&
        CHECK_INT(ev.n, 1)) {
        CHECK_INT(ev.ev[0].op, CDC_DELETE);
        CHECK_INT(ev.ev[0].after.n, 0);
        VAL(&ev.ev[0].before, "OfficeLocation", "Los Angeles");
        VAL(&ev.ev[0].before, "id", "101");
    }
    if (DECODE(CDC_CANAL,
               "{\"id\":0,\"database\":\"test\",\"table\":\"\",\"pkNames\":null,\"isDdl\":true,"
               "\"type\":\"QUERY\",\"es\":1639633094670,\"ts\":1639633095489,\"sql\":\"drop "
               "database if exists test\",\"sqlType\":null,\"mysqlType\":null,\"data\":null,"
               "\"old\":null,\"_tidb\":{\"commitTs\":429918007904436226}}") == 0 &&
        CHECK_INT(ev.n, 1)) {
        CHECK_INT(ev.ev[0].kind, CDC_DDL);
        CHECK_INT(ev.ev[0].ddl, DDL_DROP);
        CHECK_STR(ev.ev[0].sql, "drop database if exists test");
        CHECK_STR(ev.ev[0].db, "test");
        CHECK_STR(ev.ev[0].table, "");
        CHECK_INT(ev.ev[0].ver.domain, VER_TSO);
        CHECK(ev.ev[0].ver.v == UINT64_C(429918007904436226));
    }
    if (DECODE(CDC_CANAL,
               "{\"id\":0,\"database\":\"\",\"table\":\"\",\"pkNames\":null,\"isDdl\":false,"
               "\"type\":\"TIDB_WATERMARK\",\"es\":1640007049196,\"ts\":1640007050284,\"sql\":"
               "\"\",\"sqlType\":null,\"mysqlType\":null,\"data\":null,\"old\":null,\"_tidb\":"
               "{\"watermarkTs\":429918007904436226}}") == 0 &&
        CHECK_INT(ev.n, 1)) {
        CHECK_INT(ev.ev[0].kind, CDC_RESOLVED);
        CHECK_INT(ev.ev[0].ver.domain, VER_TSO);
        CHECK(ev.ev[0].ver.v == UINT64_C(429918007904436226));
        CHECK((ev.ev[0].ver.v >> 18) == UINT64_C(1640007049196));
    }
}

static void test_canal_more(void)
{
    /* several rows, the TiDB commit ts, ISO-8859-1 binary, a partial old */
    if (DECODE(CDC_CANAL,
               "{\"id\":0,\"database\":\"d\",\"table\":\"t\",\"pkNames\":[\"id\"],\"isDdl\":false,"
               "\"type\":\"UPDATE\",\"es\":1,\"ts\":2,\"sql\":\"\",\"sqlType\":{},"
               "\"mysqlType\":{\"id\":\"int\",\"b\":\"varbinary(16)\",\"bl\":\"mediumblob\","
               "\"e\":\"enum('binary','x')\",\"n\":\"varchar\"},"
               "\"data\":[{\"id\":\"1\",\"b\":\"\\u0000\\u00ff\\u0080abc\",\"bl\":\"\\u00e9\","
               "\"e\":\"\\u00e9\",\"n\":null},{\"id\":\"2\",\"b\":null,\"bl\":\"\",\"e\":\"x\","
               "\"n\":\"v\"}],"
               "\"old\":[{\"n\":\"was\"},{\"b\":\"\\u0001\",\"gone\":\"g\"}],"
               "\"_tidb\":{\"commitTs\":431}}") == 0 &&
        CHECK_INT(ev.n, 2)) {
        CHECK_INT(ev.ev[0].ver.domain, VER_TSO);
        CHECK(ev.ev[0].ver.v == 431);
        VALB(&ev.ev[0].after, "b", "\x00\xff\x80" "abc", 6);
        VALB(&ev.ev[0].after, "bl", "\xe9", 1);
        VAL(&ev.ev[0].after, "e", "\xc3\xa9");
        ISNULL(&ev.ev[0].after, "n");
        CHECK_INT(ev.ev[0].before.n, 5);
        VAL(&ev.ev[0].before, "n", "was");
        VAL(&ev.ev[0].before, "id", "1");
        VALB(&ev.ev[0].before, "b", "\x00\xff\x80" "abc", 6);
        CHECK_STR(ev.ev[1].db, "d");
        VAL(&ev.ev[1].after, "id", "2");
        ISNULL(&ev.ev[1].after, "b");
        VALB(&ev.ev[1].before, "b", "\x01", 1);
        VAL(&ev.ev[1].before, "gone", "g");
        CHECK_INT(ev.ev[1].before.n, 6);
    }
    /* DDL whose text classify cannot read: Canal's type decides */
    if (DECODE(CDC_CANAL, "{\"database\":\"d\",\"table\":\"t\",\"isDdl\":true,\"type\":\"ERASE\","
                          "\"es\":5,\"sql\":\"/*!99999 drop table t*/\"}") == 0 &&
        CHECK_INT(ev.n, 1)) {
        CHECK_INT(ev.ev[0].ddl, DDL_DROP);
        CHECK_STR(ev.ev[0].table, "t");
        CHECK_INT(ev.ev[0].ver.domain, VER_MS);
    }
    if (DECODE(CDC_CANAL, "{\"database\":\"d\",\"table\":\"t\",\"isDdl\":true,\"type\":"
                          "\"TRUNCATE\",\"sql\":\"TRUNCATE TABLE t\"}") == 0 &&
        CHECK_INT(ev.n, 1)) {
        CHECK_INT(ev.ev[0].ddl, DDL_TRUNCATE);
        CHECK_INT(ev.ev[0].ver.domain, VER_NONE);
    }
    FAILS(CDC_CANAL, "{\"type\":\"INSERT\",\"isDdl\":false,\"mysqlType\":{\"b\":\"blob\"},"
                     "\"data\":[{\"b\":\"\\u0100\"}]}",
          "U+00FF");
    FAILS(CDC_CANAL, "{\"type\":\"INSERT\",\"isDdl\":false,\"data\":null}", "\"data\"");
    FAILS(CDC_CANAL, "{\"type\":\"INSERT\",\"isDdl\":false,\"data\":[1]}", "data[0]");
    FAILS(CDC_CANAL, "{\"type\":\"INSERT\",\"isDdl\":false,\"data\":[{\"a\":[]}]}", "data[0].a");
    FAILS(CDC_CANAL, "{\"type\":\"UPDATE\",\"data\":[{\"a\":\"1\"}],\"old\":{}}", "\"old\"");
    FAILS(CDC_CANAL, "{\"type\":\"UPDATE\",\"data\":[{\"a\":\"1\"}],\"old\":[7]}", "old[0]");
    FAILS(CDC_CANAL, "{\"type\":\"UPSERT\",\"data\":[]}", "unknown event type");
    FAILS(CDC_CANAL, "{\"isDdl\":false}", "type");
    FAILS(CDC_CANAL, "{\"type\":\"TIDB_WATERMARK\"}", "watermarkTs");
    FAILS(CDC_CANAL, "{\"type\":\"INSERT\",\"data\":[{}],\"_tidb\":{\"claimCheckLocation\":\"x\"}}",
          "claim-check");
    FAILS(CDC_CANAL, "{\"type\":\"UPDATE\",\"data\":[{\"id\":\"1\"}],\"old\":[{}],"
                     "\"_tidb\":{\"commitTs\":5,\"onlyHandleKey\":true}}",
          "handle-key-only");
    /* a delete needs only the key */
    CHECK(DECODE(CDC_CANAL, "{\"type\":\"DELETE\",\"database\":\"d\",\"table\":\"t\","
                            "\"data\":[{\"id\":\"1\"}],\"_tidb\":{\"commitTs\":5,"
                            "\"onlyHandleKey\":true}}") == 0);
    FAILS(CDC_CANAL, "[]", "not a JSON object");
    FAILS(CDC_CANAL, "null", "not a JSON object");
    FAILS(CDC_CANAL, "", "invalid JSON");
    FAILS(CDC_CANAL, "{\"type\":", "invalid JSON");
}

/* ---- debezium --------------------------------------------------------- */

/* As TiCDC's debezium encoder writes an insert (with its tidb_type
 * extension), abridged to the fields that matter. */
static const char dbz_tidb[] =
    "{\"payload\":{\"source\":{\"version\":\"2.4.0.Final\",\"connector\":\"TiCDC\","
    "\"name\":\"c\",\"ts_ms\":1701326309000,\"snapshot\":\"false\",\"db\":\"test\","
    "\"table\":\"foo\",\"server_id\":0,\"gtid\":null,\"file\":\"\",\"pos\":0,\"row\":0,"
    "\"thread\":0,\"query\":null,\"commit_ts\":446266400629063682,\"cluster_id\":\"c\"},"
    "\"ts_ms\":1701326309500,\"transaction\":null,\"op\":\"c\",\"before\":null,"
    "\"after\":{\"pk\":1,\"d\":19691,\"d1000\":-354285,\"dt\":1701347696000,"
    "\"dt3\":1701347696123,\"dt6\":1701347696123456,\"t\":45296000000,\"tneg\":-45296123456,"
    "\"ts\":\"2023-11-30T12:34:56Z\",\"ts5\":\"2023-11-30T12:34:56.12346Z\",\"y\":2023,"
    "\"b1\":true,\"b5\":\"EA==\",\"b60\":\"EAAAAAAAAAA=\",\"vc\":\"foo\",\"vb\":\"Zm9vAP8=\","
    "\"dec\":12345.12345,\"fl\":12345.123,\"ubig\":-1,\"ubig2\":-2,\"big\":-5,"
    "\"en\":\"a\",\"set\":\"a,b\",\"js\":\"[\\\"foo\\\"]\",\"nul\":null}},"
    "\"schema\":{\"type\":\"struct\",\"optional\":false,\"name\":\"c.test.foo.Envelope\","
    "\"version\":1,\"fields\":[{\"type\":\"struct\",\"optional\":true,"
    "\"name\":\"c.test.foo.Value\",\"field\":\"before\",\"fields\":[]},"
    "{\"type\":\"struct\",\"optional\":true,\"name\":\"c.test.foo.Value\",\"field\":\"after\","
    "\"fields\":["
    "{\"tidb_type\":\"int\",\"type\":\"int32\",\"optional\":false,\"field\":\"pk\"},"
    "{\"tidb_type\":\"date\",\"type\":\"int32\",\"name\":\"io.debezium.time.Date\","
    "\"field\":\"d\"},"
    "{\"type\":\"int32\",\"name\":\"io.debezium.time.Date\",\"field\":\"d1000\"},"
    "{\"type\":\"int64\",\"name\":\"io.debezium.time.Timestamp\",\"field\":\"dt\"},"
    "{\"type\":\"int64\",\"name\":\"io.debezium.time.Timestamp\",\"field\":\"dt3\"},"
    "{\"type\":\"int64\",\"name\":\"io.debezium.time.MicroTimestamp\",\"field\":\"dt6\"},"
    "{\"type\":\"int64\",\"name\":\"io.debezium.time.MicroTime\",\"field\":\"t\"},"
    "{\"type\":\"int64\",\"name\":\"io.debezium.time.MicroTime\",\"field\":\"tneg\"},"
    "{\"type\":\"string\",\"name\":\"io.debezium.time.ZonedTimestamp\",\"field\":\"ts\"},"
    "{\"type\":\"string\",\"name\":\"io.debezium.time.ZonedTimestamp\",\"field\":\"ts5\"},"
    "{\"type\":\"int32\",\"name\":\"io.debezium.time.Year\",\"field\":\"y\"},"
    "{\"tidb_type\":\"bit\",\"type\":\"boolean\",\"field\":\"b1\"},"
    "{\"type\":\"bytes\",\"name\":\"io.debezium.data.Bits\",\"parameters\":{\"length\":\"5\"},"
    "\"field\":\"b5\"},"
    "{\"type\":\"bytes\",\"name\":\"io.debezium.data.Bits\",\"parameters\":{\"length\":\"60\"},"
    "\"field\":\"b60\"},"
    "{\"tidb_type\":\"varchar\",\"type\":\"string\",\"field\":\"vc\"},"
    "{\"tidb_type\":\"varbinary\",\"type\":\"string\",\"field\":\"vb\"},"
    "{\"tidb_type\":\"decimal\",\"type\":\"double\",\"field\":\"dec\"},"
    "{\"tidb_type\":\"float\",\"type\":\"float\",\"field\":\"fl\"},"
    "{\"tidb_type\":\"bigint unsigned\",\"type\":\"int64\",\"field\":\"ubig\"},"
    "{\"tidb_type\":\"bigint unsigned\",\"type\":\"int64\",\"field\":\"ubig2\"},"
    "{\"tidb_type\":\"bigint\",\"type\":\"int64\",\"field\":\"big\"},"
    "{\"type\":\"string\",\"name\":\"io.debezium.data.Enum\",\"field\":\"en\"},"
    "{\"type\":\"string\",\"name\":\"io.debezium.data.EnumSet\",\"field\":\"set\"},"
    "{\"type\":\"string\",\"name\":\"io.debezium.data.Json\",\"field\":\"js\"},"
    "{\"type\":\"string\",\"field\":\"nul\"}]},"
    "{\"type\":\"struct\",\"fields\":[],\"optional\":false,"
    "\"name\":\"io.debezium.connector.mysql.Source\",\"field\":\"source\"},"
    "{\"type\":\"string\",\"optional\":false,\"field\":\"op\"}]}}";

static void test_debezium_tidb(void)
{
    const struct cdc_row *a;

    if (DECODE(CDC_DEBEZIUM, dbz_tidb) != 0 || !CHECK_INT(ev.n, 1))
        return;
    a = &ev.ev[0].after;
    CHECK_INT(ev.ev[0].kind, CDC_ROW);
    CHECK_INT(ev.ev[0].op, CDC_INSERT);
    CHECK_STR(ev.ev[0].db, "test");
    CHECK_STR(ev.ev[0].table, "foo");
    CHECK_INT(ev.ev[0].ver.domain, VER_TSO);
    CHECK(ev.ev[0].ver.v == UINT64_C(446266400629063682));
    CHECK_INT(ev.ev[0].before.n, 0);
    VAL(a, "pk", "1");
    VAL(a, "d", "2023-11-30");
    VAL(a, "d1000", "1000-01-01");
    VAL(a, "dt", "2023-11-30 12:34:56");
    VAL(a, "dt3", "2023-11-30 12:34:56.123");
    VAL(a, "dt6", "2023-11-30 12:34:56.123456");
    VAL(a, "t", "12:34:56");
    VAL(a, "tneg", "-12:34:56.123456");
    VAL(a, "ts", "2023-11-30 12:34:56");
    VAL(a, "ts5", "2023-11-30 12:34:56.12346");
    VAL(a, "y", "2023");
    VAL(a, "b1", "1");
    VAL(a, "b5", "16");
    VAL(a, "b60", "16");
    VAL(a, "vc", "foo");
    VALB(a, "vb", "foo\x00\xff", 5);
    VAL(a, "dec", "12345.12345");
    VAL(a, "fl", "12345.123");
    VAL(a, "ubig", "18446744073709551615");
    VAL(a, "ubig2", "18446744073709551614");
    VAL(a, "big", "-5");
    VAL(a, "en", "a");
    VAL(a, "set", "a,b");
    VAL(a, "js", "[\"foo\"]");
    ISNULL(a, "nul");
}

/* As Debezium's MySQL connector writes an update: binlog coordinates,
 * Kafka Connect's Decimal, bytes, and its other temporal types. */
static void test_debezium_mysql(void)
{
    const char *msg =
        "{\"schema\":{\"type\":\"struct\",\"fields\":["
        "{\"type\":\"struct\",\"field\":\"before\",\"fields\":["
        "{\"type\":\"int32\",\"field\":\"id\"},"
        "{\"type\":\"bytes\",\"name\":\"org.apache.kafka.connect.data.Decimal\","
        "\"parameters\":{\"scale\":\"2\",\"connect.decimal.precision\":\"10\"},"
        "\"field\":\"price\"}]},"
        "{\"type\":\"struct\",\"field\":\"after\",\"fields\":["
        "{\"type\":\"int32\",\"field\":\"id\"},"
        "{\"type\":\"bytes\",\"name\":\"org.apache.kafka.connect.data.Decimal\","
        "\"parameters\":{\"scale\":\"2\",\"connect.decimal.precision\":\"10\"},"
        "\"field\":\"price\"},"
        "{\"type\":\"bytes\",\"name\":\"org.apache.kafka.connect.data.Decimal\","
        "\"parameters\":{\"scale\":\"0\"},\"field\":\"big\"},"
        "{\"type\":\"bytes\",\"name\":\"org.apache.kafka.connect.data.Decimal\","
        "\"parameters\":{\"scale\":4},\"field\":\"neg\"},"
        "{\"type\":\"bytes\",\"name\":\"org.apache.kafka.connect.data.Decimal\","
        "\"parameters\":{\"scale\":\"3\"},\"field\":\"small\"},"
        "{\"type\":\"bytes\",\"field\":\"raw\"},"
        "{\"type\":\"int64\",\"name\":\"io.debezium.time.NanoTimestamp\",\"field\":\"nts\"},"
        "{\"type\":\"int64\",\"name\":\"io.debezium.time.Timestamp\",\"field\":\"old\"},"
        "{\"type\":\"int32\",\"name\":\"io.debezium.time.Time\",\"field\":\"tm\"},"
        "{\"type\":\"int32\",\"name\":\"org.apache.kafka.connect.data.Date\",\"field\":\"kd\"},"
        "{\"type\":\"string\",\"name\":\"io.debezium.time.ZonedTimestamp\",\"field\":\"zts\"},"
        "{\"type\":\"struct\",\"name\":\"io.debezium.data.VariableScaleDecimal\","
        "\"field\":\"vsd\"},"
        "{\"type\":\"boolean\",\"field\":\"flag\"}]}]},"
        "\"payload\":{\"before\":{\"id\":7,\"price\":\"AYY=\"},"
        "\"after\":{\"id\":7,\"price\":\"/pg=\",\"big\":\"AP////////////8=\","
        "\"neg\":\"//Ng02MvuYsSFb////k=\",\"small\":\"BQ==\","
        "\"raw\":\"AAEC\",\"nts\":1701347696123456000,\"old\":-1000,\"tm\":45296789,"
        "\"kd\":0,\"zts\":\"2023-11-30T14:34:56.5+02:00\",\"vsd\":{\"scale\":1,\"value\":\"ew==\"},"
        "\"flag\":false},"
        "\"source\":{\"version\":\"2.4.0.Final\",\"connector\":\"mysql\",\"name\":\"dbserver1\","
        "\"ts_ms\":1701673705000,\"snapshot\":\"false\",\"db\":\"shop\",\"table\":\"items\","
        "\"server_id\":223344,\"file\":\"mysql-bin.000005\",\"pos\":10394,\"row\":1},"
        "\"op\":\"u\",\"ts_ms\":1701673705263}}";
    const struct cdc_row *a;

    if (DECODE(CDC_DEBEZIUM, msg) != 0 || !CHECK_INT(ev.n, 1))
        return;
    a = &ev.ev[0].after;
    CHECK_INT(ev.ev[0].op, CDC_UPDATE);
    CHECK_STR(ev.ev[0].db, "shop");
    CHECK_STR(ev.ev[0].table, "items");
    CHECK_INT(ev.ev[0].ver.domain, VER_BINLOG);
    CHECK(ev.ev[0].ver.v == cdc_binlog_version("mysql-bin.000005", 10394, 1).v);
    VAL(&ev.ev[0].before, "price", "3.90");
    VAL(a, "id", "7");
    VAL(a, "price", "-3.60");
    VAL(a, "big", "1208925819614629174706175");
    VAL(a, "neg", "-100000000000000000000000000.0007");
    VAL(a, "small", "0.005");
    VALB(a, "raw", "\x00\x01\x02", 3);
    VAL(a, "nts", "2023-11-30 12:34:56.123456");
    VAL(a, "old", "1969-12-31 23:59:59");
    VAL(a, "tm", "12:34:56.789");
    VAL(a, "kd", "1970-01-01");
    VAL(a, "zts", "2023-11-30 12:34:56.5");
    VAL(a, "vsd", "12.3");
    VAL(a, "flag", "0");
}

/* A message that repeats the last one's schema reuses its parse, and only
 * then: values are typed by the schema each message carries, whatever came
 * before; an error in the rest is placed in the message as it came. */
static void test_debezium_schema_kept(void)
{
    const char *head = "{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":\"struct\","
                       "\"field\":\"after\",\"fields\":[{\"type\":\"int32\",\"field\":\"id\"},";
    const char *dec = "{\"type\":\"bytes\",\"name\":\"org.apache.kafka.connect.data.Decimal\","
                      "\"parameters\":{\"scale\":\"2\"},\"field\":\"v\"}]}]}";
    const char *dec3 = "{\"type\":\"bytes\",\"name\":\"org.apache.kafka.connect.data.Decimal\","
                       "\"parameters\":{\"scale\":\"3\"},\"field\":\"v\"}]}]}"; /* as long */
    /* dec's members in another order, as long: what was read of dec's
     * fields must not serve it */
    const char *decr = "{\"name\":\"org.apache.kafka.connect.data.Decimal\",\"type\":\"bytes\","
                       "\"parameters\":{\"scale\":\"2\"},\"field\":\"v\"}]}]}";
    const char *raw = "{\"type\":\"bytes\",\"field\":\"v\"}]}]}";
    const char *src = "\"source\":{\"connector\":\"mysql\",\"db\":\"shop\",\"table\":\"items\","
                      "\"file\":\"mysql-bin.000005\",\"pos\":10394,\"row\":1},\"op\":\"c\"";
    const char *order[] = {dec, dec, raw, raw, dec, dec3, decr, decr};
    const char *obj = head + strlen("{\"schema\":"); /* the schema object's start */
    char msg[2048];
    /* MySQL connector's order (schema first), then TiCDC's (last), then
     * each after the other. */
    for (int i = 0; i < 24; i++) {
        bool last = i / 8 == 1 || (i / 8 == 2 && i % 2);
        if (!last)
            snprintf(msg, sizeof msg,
                     "%s%s,\"payload\":{\"after\":{\"id\":%d,\"v\":\"AYY=\"},%s}}", head,
                     order[i % 8], i + 1, src);
        else
            snprintf(msg, sizeof msg,
                     "{\"payload\":{\"after\":{\"id\":%d,\"v\":\"AYY=\"},%s},\"schema\":%s%s}",
                     i + 1, src, obj, order[i % 8]);
        if (DECODE(CDC_DEBEZIUM, msg) != 0 || !CHECK_INT(ev.n, 1))
            return;
        /* A batch counts a message without the schema it repeats:
         * "schema":<schema> and its comma, as long as head and the rest. */
        bool again = i && order[i % 8] == order[(i - 1) % 8];
        CHECK_INT(ev.repeated, again ? strlen(head) + strlen(order[i % 8]) : 0);
        char id[8];
        snprintf(id, sizeof id, "%d", i + 1);
        VAL(&ev.ev[0].after, "id", id);
        if (order[i % 8] == dec || order[i % 8] == decr)
            VAL(&ev.ev[0].after, "v", "3.90");
        else if (order[i % 8] == dec3)
            VAL(&ev.ev[0].after, "v", "0.390");
        else
            VALB(&ev.ev[0].after, "v", "\x01\x86", 2);
    }
    /* The schema is the last one's, the rest is not JSON: the byte is the
     * message's. */
    snprintf(msg, sizeof msg, "%s%s,\"payload\":{\"after\":{\"id\":8,},%s}}", head, dec, src);
    char where[64];
    snprintf(where, sizeof where, "invalid JSON at byte %zu", (size_t)(strstr(msg, ",}") - msg + 1));
    FAILS(CDC_DEBEZIUM, msg, where);
    snprintf(msg, sizeof msg, "{\"payload\":{\"after\":{\"id\":8,},%s},\"schema\":%s%s}", src,
             obj, dec);
    snprintf(where, sizeof where, "invalid JSON at byte %zu", (size_t)(strstr(msg, ",}") - msg + 1));
    FAILS(CDC_DEBEZIUM, msg, where);
    /* A second schema member is the one that counts. */
    snprintf(msg, sizeof msg, "%s%s,\"payload\":{\"after\":{\"id\":9,\"v\":\"AYY=\"},%s},"
             "\"schema\":%s%s}", head, dec, src, head + strlen("{\"schema\":"), raw);
    if (DECODE(CDC_DEBEZIUM, msg) == 0 && CHECK_INT(ev.n, 1))
        VALB(&ev.ev[0].after, "v", "\x01\x86", 2);
}

static void test_debezium_other(void)
{
    /* delete, snapshot read, bare payload with only ts_ms */
    if (DECODE(CDC_DEBEZIUM, "{\"payload\":{\"op\":\"d\",\"before\":{\"id\":3},\"after\":null,"
                             "\"source\":{\"db\":\"d\",\"table\":\"t\",\"commit_ts\":9}}}") == 0 &&
        CHECK_INT(ev.n, 1)) {
        CHECK_INT(ev.ev[0].op, CDC_DELETE);
        VAL(&ev.ev[0].before, "id", "3");
        CHECK_INT(ev.ev[0].after.n, 0);
    }
    if (DECODE(CDC_DEBEZIUM, "{\"op\":\"r\",\"after\":{\"id\":3,\"s\":\"x\",\"g\":{\"x\":1}},"
                             "\"source\":{\"db\":\"d\",\"table\":\"t\",\"ts_ms\":77}}") == 0 &&
        CHECK_INT(ev.n, 1)) {
        CHECK_INT(ev.ev[0].op, CDC_INSERT);
        CHECK_INT(ev.ev[0].ver.domain, VER_MS);
        CHECK(ev.ev[0].ver.v == 77);
        VAL(&ev.ev[0].after, "s", "x");
        VAL(&ev.ev[0].after, "g", "{\"x\":1}");
    }
    /* tombstones: no value, a null value, a null payload */
    if (DECODE_KV(CDC_DEBEZIUM, "{\"id\":1}", 8, NULL, 0) == 0)
        CHECK_INT(ev.n, 0);
    if (DECODE(CDC_DEBEZIUM, "null") == 0)
        CHECK_INT(ev.n, 0);
    if (DECODE(CDC_DEBEZIUM, "{\"schema\":{},\"payload\":null}") == 0)
        CHECK_INT(ev.n, 0);
    /* TiCDC's DDL and checkpoint messages */
    if (DECODE(CDC_DEBEZIUM, "{\"payload\":{\"source\":{\"db\":\"test\",\"table\":\"foo\","
                             "\"commit_ts\":12},\"databaseName\":\"test\",\"schemaName\":null,"
                             "\"ddl\":\"TRUNCATE TABLE foo\",\"tableChanges\":[]}}") == 0 &&
        CHECK_INT(ev.n, 1)) {
        CHECK_INT(ev.ev[0].kind, CDC_DDL);
        CHECK_INT(ev.ev[0].ddl, DDL_TRUNCATE);
        CHECK_STR(ev.ev[0].table, "foo");
        CHECK(ev.ev[0].ver.v == 12);
    }
    if (DECODE(CDC_DEBEZIUM, "{\"payload\":{\"source\":{\"db\":\"\",\"table\":\"\",\"file\":\"\","
                             "\"pos\":0,\"commit_ts\":446266400629063682},\"op\":\"m\"}}") == 0 &&
        CHECK_INT(ev.n, 1)) {
        CHECK_INT(ev.ev[0].kind, CDC_RESOLVED);
        CHECK(ev.ev[0].ver.v == UINT64_C(446266400629063682));
    }
    if (DECODE(CDC_DEBEZIUM, "{\"payload\":{\"source\":{\"db\":\"d\",\"table\":\"t\"},"
                             "\"op\":\"t\"}}") == 0 &&
        CHECK_INT(ev.n, 1))
        CHECK_INT(ev.ev[0].ddl, DDL_TRUNCATE);

    FAILS(CDC_DEBEZIUM, "{\"payload\":{\"op\":\"x\"}}", "op");
    FAILS(CDC_DEBEZIUM, "{\"payload\":{\"before\":null}}", "op");
    FAILS(CDC_DEBEZIUM, "{\"payload\":{\"op\":\"c\",\"after\":null}}", "payload.after");
    FAILS(CDC_DEBEZIUM, "{\"payload\":{\"op\":\"d\"}}", "payload.before");
    FAILS(CDC_DEBEZIUM, "{\"payload\":{\"op\":\"c\",\"after\":[]}}", "objects or null");
    FAILS(CDC_DEBEZIUM, "{\"payload\":7}", "not an object");
    FAILS(CDC_DEBEZIUM, "[1]", "not a JSON object");
    FAILS(CDC_DEBEZIUM, "{\"payload\":{\"op\":\"m\",\"source\":{}}}", "commit_ts");
    FAILS(CDC_DEBEZIUM,
          "{\"schema\":{\"fields\":[{\"field\":\"after\",\"fields\":[{\"field\":\"d\","
          "\"name\":\"io.debezium.time.Date\"}]}]},\"payload\":{\"op\":\"c\",\"after\":{\"d\":"
          "99999999999}}}",
          "payload.after.d");
    FAILS(CDC_DEBEZIUM,
          "{\"schema\":{\"fields\":[{\"field\":\"after\",\"fields\":[{\"field\":\"z\","
          "\"name\":\"io.debezium.time.ZonedTimestamp\"}]}]},\"payload\":{\"op\":\"c\",\"after\":"
          "{\"z\":\"2023-13-01T00:00:00Z\"}}}",
          "zoned");
    FAILS(CDC_DEBEZIUM,
          "{\"schema\":{\"fields\":[{\"field\":\"after\",\"fields\":[{\"field\":\"b\","
          "\"type\":\"bytes\"}]}]},\"payload\":{\"op\":\"c\",\"after\":{\"b\":\"%%%\"}}}",
          "base64");
    FAILS(CDC_DEBEZIUM,
          "{\"schema\":{\"fields\":[{\"field\":\"after\",\"fields\":[{\"field\":\"b\","
          "\"name\":\"io.debezium.data.Bits\"}]}]},\"payload\":{\"op\":\"c\",\"after\":"
          "{\"b\":\"AAAAAAAAAAAA\"}}}",
          "bits");
}

/* ---- simple ----------------------------------------------------------- */

static const char simple_bootstrap[] =
    "{\"version\":1,\"type\":\"BOOTSTRAP\",\"commitTs\":0,\"buildTs\":1708924603278,"
    "\"tableSchema\":{\"schema\":\"simple\",\"table\":\"user\",\"tableID\":148,"
    "\"version\":447984074911121426,\"columns\":["
    "{\"name\":\"id\",\"dataType\":{\"mysqlType\":\"int\",\"charset\":\"binary\","
    "\"collate\":\"binary\",\"length\":11},\"nullable\":false,\"default\":null},"
    "{\"name\":\"name\",\"dataType\":{\"mysqlType\":\"varchar\",\"charset\":\"utf8mb4\","
    "\"collate\":\"utf8mb4_bin\",\"length\":255},\"nullable\":true,\"default\":null},"
    "{\"name\":\"avatar\",\"dataType\":{\"mysqlType\":\"varbinary\",\"charset\":\"binary\","
    "\"collate\":\"binary\",\"length\":16},\"nullable\":true,\"default\":null},"
    "{\"name\":\"mood\",\"dataType\":{\"mysqlType\":\"enum\",\"charset\":\"utf8mb4\","
    "\"collate\":\"utf8mb4_bin\",\"length\":1,\"elements\":[\"happy\",\"sad\"]},"
    "\"nullable\":true,\"default\":null},"
    "{\"name\":\"tags\",\"dataType\":{\"mysqlType\":\"set\",\"charset\":\"utf8mb4\","
    "\"collate\":\"utf8mb4_bin\",\"length\":1,\"elements\":[\"a\",\"b\",\"c\"]},"
    "\"nullable\":true,\"default\":null}],"
    "\"indexes\":[{\"name\":\"primary\",\"unique\":true,\"primary\":true,\"nullable\":false,"
    "\"columns\":[\"id\"]}]}}";

static void test_simple(void)
{
    /* ticdc.md's example: no schema known yet, values as sent */
    if (DECODE(CDC_SIMPLE,
               "{\"version\":1,\"database\":\"simple\",\"table\":\"user\",\"tableID\":148,"
               "\"type\":\"INSERT\",\"commitTs\":447984084414103554,\"buildTs\":1708923662983,"
               "\"schemaVersion\":447984074911121426,\"data\":{\"age\":\"25\",\"id\":\"1\","
               "\"name\":\"John Doe\",\"score\":\"90.5\"}}") == 0 &&
        CHECK_INT(ev.n, 1)) {
        CHECK_INT(ev.ev[0].kind, CDC_ROW);
        CHECK_INT(ev.ev[0].op, CDC_INSERT);
        CHECK_STR(ev.ev[0].db, "simple");
        CHECK_STR(ev.ev[0].table, "user");
        CHECK_INT(ev.ev[0].ver.domain, VER_TSO);
        CHECK(ev.ev[0].ver.v == UINT64_C(447984084414103554));
        CHECK_INT(ev.ev[0].after.n, 4);
        VAL(&ev.ev[0].after, "age", "25");
        VAL(&ev.ev[0].after, "name", "John Doe");
        VAL(&ev.ev[0].after, "score", "90.5");
    }
    /* the bootstrap teaches the table's types and makes no events */
    if (DECODE(CDC_SIMPLE, simple_bootstrap) == 0)
        CHECK_INT(ev.n, 0);
    if (DECODE(CDC_SIMPLE,
               "{\"version\":1,\"database\":\"simple\",\"table\":\"user\",\"tableID\":148,"
               "\"type\":\"UPDATE\",\"commitTs\":447984099186180098,\"buildTs\":1708923719184,"
               "\"schemaVersion\":447984074911121426,\"data\":{\"id\":\"1\",\"name\":\"John\","
               "\"avatar\":\"AP8=\",\"mood\":\"2\",\"tags\":\"5\"},\"old\":{\"id\":\"1\","
               "\"name\":\"Jo\",\"avatar\":null,\"mood\":\"0\",\"tags\":\"0\"}}") == 0 &&
        CHECK_INT(ev.n, 1)) {
        CHECK_INT(ev.ev[0].op, CDC_UPDATE);
        VAL(&ev.ev[0].after, "name", "John");
        VALB(&ev.ev[0].after, "avatar", "\x00\xff", 2);
        VAL(&ev.ev[0].after, "mood", "sad");
        VAL(&ev.ev[0].after, "tags", "a,c");
        VAL(&ev.ev[0].before, "name", "Jo");
        ISNULL(&ev.ev[0].before, "avatar");
        VAL(&ev.ev[0].before, "mood", "");
        VAL(&ev.ev[0].before, "tags", "");
    }
    if (DECODE(CDC_SIMPLE,
               "{\"version\":1,\"database\":\"simple\",\"table\":\"user\",\"tableID\":148,"
               "\"type\":\"DELETE\",\"commitTs\":447984114259722243,\"buildTs\":1708923776484,"
               "\"schemaVersion\":447984074911121426,\"old\":{\"age\":\"25\",\"id\":\"1\","
               "\"name\":\"John Doe\",\"score\":\"95\",\"ts\":{\"location\":\"UTC\","
               "\"value\":\"2024-01-01 00:00:00\"}}}") == 0 &&
        CHECK_INT(ev.n, 1)) {
        CHECK_INT(ev.ev[0].op, CDC_DELETE);
        CHECK_INT(ev.ev[0].after.n, 0);
        VAL(&ev.ev[0].before, "score", "95");
        VAL(&ev.ev[0].before, "ts", "2024-01-01 00:00:00");
    }
    if (DECODE(CDC_SIMPLE, "{\"version\":1,\"type\":\"WATERMARK\",\"commitTs\":447984124732375041,"
                           "\"buildTs\":1708923816911}") == 0 &&
        CHECK_INT(ev.n, 1)) {
        CHECK_INT(ev.ev[0].kind, CDC_RESOLVED);
        CHECK(ev.ev[0].ver.v == UINT64_C(447984124732375041));
    }
    if (DECODE(CDC_SIMPLE,
               "{\"version\":1,\"type\":\"ALTER\",\"sql\":\"ALTER TABLE `user` ADD COLUMN "
               "`createTime` TIMESTAMP\",\"commitTs\":447987408682614795,\"buildTs\":"
               "1708936343598,\"tableSchema\":{\"schema\":\"simple\",\"table\":\"user\","
               "\"tableID\":148,\"version\":447987408682614791,\"columns\":[{\"name\":\"id\","
               "\"dataType\":{\"mysqlType\":\"int\"}}]},\"preTableSchema\":{\"schema\":\"simple\","
               "\"table\":\"user\",\"columns\":[]}}") == 0 &&
        CHECK_INT(ev.n, 1)) {
        CHECK_INT(ev.ev[0].kind, CDC_DDL);
        CHECK_INT(ev.ev[0].ddl, DDL_ADD_COLUMN);
        CHECK_STR(ev.ev[0].db, "simple");
        CHECK_STR(ev.ev[0].table, "user");
        CHECK(ev.ev[0].ver.v == UINT64_C(447987408682614795));
    }
    /* the DDL's schema replaced the bootstrap's: avatar is text again */
    if (DECODE(CDC_SIMPLE, "{\"version\":1,\"database\":\"simple\",\"table\":\"user\","
                           "\"type\":\"INSERT\",\"commitTs\":1,"
                           "\"data\":{\"avatar\":\"AP8=\"}}") == 0)
        VAL(&ev.ev[0].after, "avatar", "AP8=");
    if (DECODE(CDC_SIMPLE, "{\"version\":1,\"type\":\"ERASE\",\"sql\":\"/* x */\",\"commitTs\":3,"
                           "\"preTableSchema\":{\"schema\":\"s\",\"table\":\"gone\"}}") == 0 &&
        CHECK_INT(ev.n, 1)) {
        CHECK_INT(ev.ev[0].ddl, DDL_DROP);
        CHECK_STR(ev.ev[0].table, "gone");
    }
    FAILS(CDC_SIMPLE, "{\"version\":1,\"type\":\"INSERT\",\"commitTs\":1}", "data");
    FAILS(CDC_SIMPLE, "{\"version\":1,\"type\":\"DELETE\",\"commitTs\":1,\"data\":{}}", "old");
    FAILS(CDC_SIMPLE, "{\"version\":1,\"type\":\"INSERT\",\"data\":[]}", "objects");
    FAILS(CDC_SIMPLE, "{\"version\":1,\"type\":\"INSERT\",\"data\":{\"a\":{\"v\":1}}}",
          "data.a");
    FAILS(CDC_SIMPLE, "{\"version\":1,\"type\":\"INSERT\",\"data\":{\"a\":[]}}", "data.a");
    FAILS(CDC_SIMPLE, "{\"version\":1,\"type\":\"WATERMARK\"}", "commitTs");
    FAILS(CDC_SIMPLE, "{\"version\":1,\"type\":\"NOPE\"}", "unknown");
    FAILS(CDC_SIMPLE, "{\"version\":1}", "type");
    FAILS(CDC_SIMPLE, "{\"version\":1,\"type\":\"INSERT\",\"claimCheckLocation\":\"f\","
                      "\"data\":{}}",
          "claim-check");
    FAILS(CDC_SIMPLE, "{\"version\":1,\"type\":\"INSERT\",\"handleKeyOnly\":true,"
                      "\"commitTs\":5,\"data\":{\"id\":\"1\"}}",
          "handle-key-only");
    CHECK(DECODE(CDC_SIMPLE, "{\"version\":1,\"type\":\"DELETE\",\"database\":\"d\","
                             "\"table\":\"t\",\"handleKeyOnly\":true,\"commitTs\":5,"
                             "\"old\":{\"id\":\"1\"}}") == 0);
    FAILS(CDC_SIMPLE, "\"just a string\"", "not a JSON object");
    /* binary column of a known table with bad base64 */
    DECODE(CDC_SIMPLE, simple_bootstrap);
    FAILS(CDC_SIMPLE, "{\"version\":1,\"database\":\"simple\",\"table\":\"user\","
                      "\"type\":\"INSERT\",\"data\":{\"avatar\":\"@@\"}}",
          "avatar");
}

/* ---- detection -------------------------------------------------------- */

#define DETECT(v) cdc_detect(NULL, 0, (v), strlen(v))

static void test_detect(void)
{
    open_begin();
    open_event("{\"ts\":1,\"t\":3}", NULL);
    CHECK_INT(cdc_detect(K.data, K.len, NULL, 0), CDC_OPEN);
    CHECK_INT(cdc_detect(K.data, 12, NULL, 0), CDC_UNKNOWN);
    CHECK_INT(cdc_detect(NULL, 0, dbz_tidb, strlen(dbz_tidb)), CDC_DEBEZIUM);
    CHECK_INT(DETECT("{\"op\":\"c\",\"after\":{}}"), CDC_DEBEZIUM);
    CHECK_INT(DETECT("{\"id\":0,\"isDdl\":false,\"type\":\"INSERT\"}"), CDC_CANAL);
    CHECK_INT(DETECT(simple_bootstrap), CDC_SIMPLE);
    CHECK_INT(DETECT("{\"version\":1,\"type\":\"WATERMARK\",\"commitTs\":5}"), CDC_SIMPLE);
    CHECK_INT(DETECT("{\"version\":1,\"type\":\"x\"}"), CDC_UNKNOWN);
    CHECK_INT(DETECT("{}"), CDC_UNKNOWN);
    CHECK_INT(DETECT("[]"), CDC_UNKNOWN);
    CHECK_INT(DETECT("{\"a\":"), CDC_UNKNOWN);
    CHECK_INT(cdc_detect(NULL, 0, NULL, 0), CDC_UNKNOWN);
    CHECK_INT(cdc_detect("{\"id\":1}", 8, "\x00\x01", 2), CDC_UNKNOWN);
}

/* ---- lifetime --------------------------------------------------------- */

/* Events of earlier messages stay valid while later ones grow the arena. */
static void test_arena_stability(void)
{
    struct cdc_events e = {0};
    char msg[512];
    const char *first_name = NULL, *first_val = NULL;
    const char *bad = "{\"type\":\"INSERT\",\"data\":[{},7]}";

    for (int i = 0; i < 2000; i++) {
        snprintf(msg, sizeof msg,
                 "{\"type\":\"INSERT\",\"database\":\"d\",\"table\":\"t\",\"es\":%d,"
                 "\"data\":[{\"id\":\"%d\",\"text\":\"%0200d\"}]}",
                 i, i, i);
        if (!CHECK(cdc_decode(CDC_CANAL, NULL, 0, msg, strlen(msg), &e, err, sizeof err) == 0))
            break;
        if (i == 0) {
            first_name = e.ev[0].after.cols[0].name;
            first_val = col(&e.ev[0].after, "id")->p;
        }
    }
    CHECK_INT(e.n, 2000);
    CHECK_STR(first_name, e.ev[0].after.cols[0].name);
    CHECK_STR(first_val, "0");
    CHECK_STR(col(&e.ev[1999].after, "id")->p, "1999");
    /* a failing message appended to a full list takes nothing away */
    CHECK(cdc_decode(CDC_CANAL, NULL, 0, bad, strlen(bad), &e, err, sizeof err) == -1);
    CHECK_HAS(err, "data[1]");
    CHECK_INT(e.n, 2000);
    CHECK_STR(first_val, "0");
    cdc_events_reset(&e);
    CHECK_INT(e.n, 0);
    CHECK(cdc_decode(CDC_CANAL, NULL, 0, msg, strlen(msg), &e, err, sizeof err) == 0);
    cdc_events_free(&e);
    cdc_events_free(&e);
    CHECK(cdc_decode(CDC_SIMPLE, NULL, 0, "x", 1, &e, NULL, 0) == -1);
    CHECK(cdc_decode((enum cdc_protocol)42, NULL, 0, "{}", 2, &e, err, sizeof err) == -1);
    CHECK_HAS(err, "unknown protocol");
    cdc_events_free(&e);
}

/* Lists that share a lent arena (a decoded batch's): each one's values stay
 * as every other list decodes and resets, until the lender resets it. */
static void test_shared_arena(void)
{
    struct tbuf arena = {0};
    struct cdc_events e[300] = {{0}};
    char msg[512];
    for (int i = 0; i < 300; i++) {
        e[i].shared = &arena;
        snprintf(msg, sizeof msg,
                 "{\"type\":\"INSERT\",\"database\":\"d\",\"table\":\"t\",\"es\":%d,"
                 "\"data\":[{\"id\":\"%d\",\"text\":\"%0100d\"}]}",
                 i, i, i);
        cdc_events_reset(&e[i]);
        if (!CHECK(cdc_decode(CDC_CANAL, NULL, 0, msg, strlen(msg), &e[i], err, sizeof err) == 0))
            break;
        CHECK(e[i].arena.data == NULL); /* nothing of its own */
    }
    bool intact = true;
    for (int i = 0; i < 300; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", i);
        intact = intact && e[i].n == 1 && strcmp(col(&e[i].ev[0].after, "id")->p, id) == 0;
    }
    CHECK(intact);
    CHECK(arena.cap >= 4096);
    size_t cap = arena.cap;
    cdc_arena_reset(&arena); /* the largest chunk stays */
    CHECK_INT(arena.cap, cap);
    cdc_events_reset(&e[0]);
    if (CHECK(cdc_decode(CDC_CANAL, NULL, 0, msg, strlen(msg), &e[0], err, sizeof err) == 0))
        CHECK_STR(col(&e[0].ev[0].after, "id")->p, "299");
    for (int i = 0; i < 300; i++)
        cdc_events_free(&e[i]);
    cdc_arena_free(&arena);
    CHECK(arena.data == NULL);
}

int main(void)
{
    test_name_eq();
    test_names();
    test_binlog_version();
    test_ddl_classify();
    test_exchange_table();
    test_open_doc_example();
    test_open_batch();
    test_open_values();
    test_open_ddl();
    test_open_garbage();
    test_canal_doc_examples();
    test_canal_more();
    test_debezium_tidb();
    test_debezium_schema_kept();
    test_debezium_mysql();
    test_debezium_other();
    test_simple();
    test_detect();
    test_arena_stability();
    test_shared_arena();
    cdc_events_free(&ev);
    tbuf_free(&K);
    tbuf_free(&V);
    return check_summary();
}
