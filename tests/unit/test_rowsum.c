/* Unit tests for verify's row hash and chunks (src/rowsum.c): the hash is
 * CRC-32 of the text the server's CONCAT_WS builds, whatever the row's
 * length; NULL is not ''; values cannot shift between fields; chunks and
 * their bounds are what the server's pk DIV ROWSUM_CHUNK_WIDTH makes of any key. */
#include "tisfs/rowsum.h"

#include <stdlib.h>
#include <libdeflate.h>

#include "check.h"

static struct tis_field fields[3] = {
    {.name = "id", .vt = VT_INT, .pk = true},
    {.name = "a", .vt = VT_STRING},
    {.name = "b", .vt = VT_BINARY},
};
static size_t pk0 = 0;
static struct tis_schema sc = {.fields = fields, .nfields = 3, .pk = &pk0, .npk = 1};

static struct tis_value val(const char *s)
{
    return (struct tis_value){s ? s : "", s ? strlen(s) : 0, s == NULL};
}

static uint32_t hash3(const char *id, const char *a, const char *b)
{
    struct tis_value v[3] = {val(id), val(a), val(b)};
    struct tbuf t = {0};
    uint32_t h = rowsum_hash(&sc, v, &t);
    tbuf_free(&t);
    return h;
}

static uint32_t crc(const char *s, size_t n)
{
    return libdeflate_crc32(0, s, n);
}

/* What CRC32(CONCAT_WS('|', IFNULL(OCTET_LENGTH(id), -1), ..., id, a, b))
 * hashes on the server. */
static void test_hash_is_the_servers_text(void)
{
    CHECK_INT(hash3("7", "ab", ""), crc("1|2|0|7|ab|", 11));
    CHECK_INT(hash3("7", NULL, "x"), crc("1|-1|1|7|x", 10)); /* CONCAT_WS skips NULL */
    CHECK(hash3("7", NULL, "") != hash3("7", "", ""));       /* NULL is not '' */
    CHECK(hash3("7", "a|b", "") != hash3("7", "a", "b"));    /* no shift between fields */
    CHECK(hash3("7", "ab", "c") != hash3("7", "a", "bc"));
}

/* A row above the copy limit is hashed piece by piece to the same CRC. */
static void test_long_rows_hash_alike(void)
{
    size_t n = 200000;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    big[n] = 0;
    struct tbuf want = {0};
    tbuf_printf(&want, "1|%zu|-1|7|", n);
    tbuf_add(&want, big, n);
    CHECK_INT(hash3("7", big, NULL), crc(want.data, want.len));
    tbuf_free(&want);
    free(big);
}

static int64_t chunk_of(const struct tis_field *f, const char *s)
{
    int64_t k = 12345;
    struct tis_value v = val(s);
    CHECK(rowsum_chunk_key(f, &v, &k));
    return k;
}

/* pk DIV 50 truncates toward zero; a chunk's bounds hold exactly its keys. */
static void test_chunks_and_bounds(void)
{
    struct tis_field u = {.name = "u", .vt = VT_UINT, .pk = true};
    CHECK_INT(ROWSUM_CHUNK_WIDTH, 50);
    CHECK_INT(chunk_of(&fields[0], "49"), 0);
    CHECK_INT(chunk_of(&fields[0], "50"), 1);
    CHECK_INT(chunk_of(&fields[0], "-49"), 0);
    CHECK_INT(chunk_of(&fields[0], "-50"), -1);
    CHECK_INT(chunk_of(&fields[0], "-9223372036854775808"), -184467440737095516);
    CHECK_INT(chunk_of(&u, "18446744073709551615"), (int64_t)368934881474191032);
    int64_t k;
    struct tis_value bad[] = {val("12a"), val(""), val(NULL), val("99999999999999999999")};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK(!rowsum_chunk_key(&fields[0], &bad[i], &k));
    struct tis_value neg = val("-1");
    CHECK(!rowsum_chunk_key(&u, &neg, &k));
    uint64_t lo, hi;
    rowsum_chunk_bounds(&fields[0], 0, &lo, &hi);
    CHECK_INT((int64_t)lo, -49);
    CHECK_INT((int64_t)hi, 49);
    rowsum_chunk_bounds(&fields[0], -1, &lo, &hi);
    CHECK_INT((int64_t)lo, -99);
    CHECK_INT((int64_t)hi, -50);
    rowsum_chunk_bounds(&fields[0], 3, &lo, &hi);
    CHECK_INT((int64_t)lo, 150);
    CHECK_INT((int64_t)hi, 199);
    rowsum_chunk_bounds(&fields[0], -184467440737095516, &lo, &hi);
    CHECK_INT((int64_t)lo, INT64_MIN);
    rowsum_chunk_bounds(&u, 368934881474191032, &lo, &hi);
    CHECK(hi == UINT64_MAX);
}

/* Sums taken out are gone again, whatever the order. */
static void test_sums_undo(void)
{
    struct rowsum s = {0}, t = {0}, d = {0};
    rowsum_add(&s, 1);
    rowsum_add(&s, 2);
    rowsum_add(&t, 2);
    rowsum_add(&t, 1);
    CHECK(rowsum_equal(&s, &t));
    rowsum_sub(&d, 2);
    rowsum_add(&d, 3);
    rowsum_merge(&s, &d); /* 2 replaced by 3 */
    struct rowsum u = {0};
    rowsum_add(&u, 1);
    rowsum_add(&u, 3);
    CHECK(rowsum_equal(&s, &u));
    CHECK(!rowsum_equal(&s, &t));
}

int main(void)
{
    test_hash_is_the_servers_text();
    test_long_rows_hash_alike();
    test_chunks_and_bounds();
    test_sums_undo();
    return check_summary();
}
