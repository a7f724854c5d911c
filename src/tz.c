/* tz — zones as MySQL names them, through ICU's calendars (see tz.h). */
#include "tisfs/tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/ucal.h>
#include <unicode/ustring.h>

#include "tisfs/util.h"

/* "+HH:MM" or "-HH:MM" exactly, as MySQL writes an offset zone. */
static bool fixed_offset(const char *zone, long *off)
{
    int h, m, n = 0;
    char sign;
    if (sscanf(zone, "%c%2d:%2d%n", &sign, &h, &m, &n) != 3 || zone[n] || n != 6 ||
        (sign != '+' && sign != '-') || m > 59)
        return false;
    *off = (sign == '-' ? -1 : 1) * (h * 3600L + m * 60L);
    return true;
}

/* zone as ICU's UChar id; false when too long to be a zone's name. */
static bool zone_id(const char *zone, UChar id[128])
{
    if (strlen(zone) >= 127)
        return false;
    u_uastrncpy(id, zone, 127);
    id[127] = 0;
    return true;
}

static bool icu_knows(const char *zone)
{
    UChar id[128], canon[128];
    UErrorCode st = U_ZERO_ERROR;
    UBool sys;
    if (!zone_id(zone, id))
        return false;
    ucal_getCanonicalTimeZoneID(id, -1, canon, 128, &sys, &st);
    return U_SUCCESS(st);
}

bool tz_known(const char *zone)
{
    long off;
    return zone && (fixed_offset(zone, &off) || icu_knows(zone));
}

bool tz_offset_at(struct tz_cache *tc, const char *zone, int64_t t, long *off)
{
    if (fixed_offset(zone, off))
        return true;
    if (!tc->name || strcmp(tc->name, zone) != 0) {
        tz_cache_free(tc);
        tc->name = xstrdup(zone);
        UChar id[128];
        if ((tc->known = icu_knows(zone) && zone_id(zone, id))) {
            UErrorCode st = U_ZERO_ERROR;
            tc->cal = ucal_open(id, -1, "", UCAL_GREGORIAN, &st);
            tc->known = tc->cal && U_SUCCESS(st);
        }
    }
    if (!tc->known)
        return false;
    UErrorCode st = U_ZERO_ERROR;
    ucal_setMillis(tc->cal, (UDate)t * 1000.0, &st);
    int32_t ms = ucal_get(tc->cal, UCAL_ZONE_OFFSET, &st) + ucal_get(tc->cal, UCAL_DST_OFFSET, &st);
    *off = ms / 1000;
    return U_SUCCESS(st);
}

void tz_cache_free(struct tz_cache *tc)
{
    free(tc->name);
    if (tc->cal)
        ucal_close(tc->cal);
    *tc = (struct tz_cache){0};
}
