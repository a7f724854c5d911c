/* Unit tests for time zones (src/tz.c): MySQL's offset zones and the zone
 * names ICU reads, with their daylight saving at each moment. */
#define _GNU_SOURCE
#include "tisfs/tz.h"

#include <time.h>

#include "check.h"

static int64_t utc(int y, int mo, int d, int h)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h};
    return (int64_t)timegm(&tm);
}

static void test_known(void)
{
    CHECK(tz_known("+08:00"));
    CHECK(tz_known("-03:30"));
    CHECK(tz_known("Asia/Shanghai"));
    CHECK(tz_known("CET")); /* a server's zone table names it, ICU reads it */
    CHECK(tz_known("UTC"));
    CHECK(!tz_known("+08"));   /* tzdata's numeric abbreviations are no zone */
    CHECK(!tz_known("+0545"));
    CHECK(!tz_known("+08:00x"));
    CHECK(!tz_known("Nowhere/Atlantis"));
    CHECK(!tz_known(""));
    CHECK(!tz_known(NULL));
}

static void test_offsets(void)
{
    struct tz_cache tc = {0};
    long off = 0;
    CHECK(tz_offset_at(&tc, "+08:00", 0, &off) && off == 8 * 3600);
    CHECK(tz_offset_at(&tc, "-00:30", 0, &off) && off == -1800);
    CHECK(tz_offset_at(&tc, "CET", utc(2026, 1, 15, 12), &off) && off == 3600);
    CHECK(tz_offset_at(&tc, "CET", utc(2026, 7, 15, 12), &off) && off == 7200);
    /* New York leaves DST at 06:00 UTC on 2026-11-01 */
    CHECK(tz_offset_at(&tc, "America/New_York", utc(2026, 11, 1, 5), &off) && off == -4 * 3600);
    CHECK(tz_offset_at(&tc, "America/New_York", utc(2026, 11, 1, 6), &off) && off == -5 * 3600);
    CHECK(tz_offset_at(&tc, "Asia/Kathmandu", 0, &off) && off == 5 * 3600 + 30 * 60);
    CHECK(!tz_offset_at(&tc, "Nowhere/Atlantis", 0, &off));
    CHECK(tz_offset_at(&tc, "Asia/Shanghai", utc(2026, 7, 1, 0), &off) && off == 8 * 3600);
    tz_cache_free(&tc);
}

int main(void)
{
    test_known();
    test_offsets();
    return check_summary();
}
