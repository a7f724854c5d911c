/* tz — time zones as MySQL names them, read through ICU: a session's
 * TIMESTAMP values are in its zone, which Debezium's UTC values must be
 * turned back into (incr_values.c), and which a build records
 * (tis_schema.time_zone). */
#ifndef TISFS_TZ_H
#define TISFS_TZ_H

#include <stdbool.h>
#include <stdint.h>

/* A zone the daemon can read: "+HH:MM"/"-HH:MM", or a name ICU knows
 * ("Asia/Shanghai", "CET", "UTC"). */
bool tz_known(const char *zone);

/* One thread's reader of zones: the last zone's ICU calendar, kept. */
struct tz_cache {
    char *name;
    void *cal;
    bool known;
};

/* Seconds east of UTC in zone at UTC time t (epoch seconds), by the
 * zone's rules at that moment (daylight saving included). false when the
 * zone cannot be read. */
bool tz_offset_at(struct tz_cache *tc, const char *zone, int64_t t, long *off);
void tz_cache_free(struct tz_cache *tc);

#endif
