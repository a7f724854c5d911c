/* incr_values — an event's row image as a dump gives it: the values each
 * protocol sends in its own form (BIT as a number, ENUM as an index,
 * Debezium's times and decimals without the column's precision) turned back
 * into the text the source prints, so that a row applied from the channel
 * and the same row dumped are equal byte for byte (verify compares them). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "incr_internal.h"
#include "tisfs/cdc.h"
#include "tisfs/tz.h"
#include "tisfs/util.h"

/* BIT(n) comes as a number; a dump gives its big-endian bytes. */
static struct tis_value bit_bytes(struct tbuf *conv, const struct tis_field *f, struct tis_value v)
{
    int bits = 64;
    const char *paren = strchr(f->source_type, '(');
    if (paren)
        bits = atoi(paren + 1);
    size_t n = (size_t)(bits + 7) / 8;
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%.*s", (int)(v.len < 31 ? v.len : 31), v.p);
    unsigned long long x = strtoull(tmp, NULL, 10);
    size_t at = conv->len;
    for (size_t i = 0; i < n && i < 8; i++) {
        char b = (char)(x >> (8 * (n - 1 - i)));
        tbuf_add(conv, &b, 1);
    }
    return (struct tis_value){(const char *)(uintptr_t)at, n, false}; /* offset: fixed later */
}

/* ENUM and SET come from open-protocol and canal-json as the index (from
 * 1) or the bit set; a dump gives the names, comma-separated for a SET. The
 * names are read from the column's type, e.g. enum('a','it''s'). */
static struct tis_value enum_names(struct tbuf *conv, const struct tis_field *f, struct tis_value v)
{
    bool set = strncasecmp(f->source_type, "set(", 4) == 0;
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%.*s", (int)(v.len < 31 ? v.len : 31), v.p);
    unsigned long long x = strtoull(tmp, NULL, 10);
    size_t at = conv->len;
    int k = 0;
    bool first = true;
    for (const char *p = strchr(f->source_type, '('); p && *p; k++) {
        const char *q = strchr(p, '\'');
        if (!q)
            break;
        bool take = set ? k < 64 && (x >> k & 1) : (unsigned long long)k + 1 == x;
        if (take && set && !first)
            tbuf_add(conv, ",", 1);
        for (q++; *q && !(q[0] == '\'' && q[1] != '\''); q++) {
            if (q[0] == '\'' && q[1] == '\'')
                q++;
            if (take)
                tbuf_add(conv, q, 1);
        }
        first &= !take;
        p = *q ? q + 1 : q;
    }
    return (struct tis_value){(const char *)(uintptr_t)at, conv->len - at, false};
}

static bool all_digits(struct tis_value v)
{
    for (size_t i = 0; i < v.len; i++)
        if (v.p[i] < '0' || v.p[i] > '9')
            return false;
    return v.len > 0;
}

/* A binary value the decoder could not type (simple's untyped rows,
 * Debezium's strings: cdc_col.plain_string): its base64, decoded; as it
 * came when it is not base64. */
static struct tis_value unbase64(struct tbuf *conv, struct tis_value v, bool *moved)
{
    char *s = xstrndup(v.p, v.len);
    size_t n;
    char *bytes = base64_decode(s, &n);
    free(s);
    if (!bytes)
        return v;
    size_t at = conv->len;
    tbuf_add(conv, bytes, n);
    free(bytes);
    *moved = true;
    return (struct tis_value){(const char *)(uintptr_t)at, n, false}; /* offset: fixed later */
}

/* The digits a column's type gives its values' fraction: n of datetime(n),
 * time(n), timestamp(n); s of decimal(p,s). 0 when the type names none. */
static int fraction_digits(const char *type)
{
    const char *p = strchr(type, '(');
    if (!p)
        return 0;
    if (strncasecmp(type, "decimal", 7) == 0 && !(p = strchr(p, ',')))
        return 0;
    int n = atoi(p + 1);
    return n < 0 ? 0 : n > 65 ? 65 : n;
}

/* The text at conv[at..] with a fraction of exactly n digits, as MySQL
 * prints a DATETIME(n) or TIME(n): Debezium sends milli- or microseconds
 * and drops a zero fraction. Digits past n are zero (the column holds no
 * more), so cutting them loses nothing. */
static void fix_fraction(struct tbuf *conv, size_t at, int n)
{
    char *dot = memchr(conv->data + at, '.', conv->len - at);
    size_t have = dot ? (size_t)(conv->data + conv->len - dot - 1) : 0;
    if (!dot && n > 0) {
        tbuf_add(conv, ".", 1);
        have = 0;
    }
    if (n == 0 && dot)
        conv->len = (size_t)(dot - conv->data);
    else if (have > (size_t)n)
        conv->len -= have - (size_t)n;
    for (; have < (size_t)n; have++)
        tbuf_add(conv, "0", 1);
    conv->data[conv->len] = 0;
}

/* A number's text, [-]d[.d][e[+-]d], in plain decimal digits into out
 * (the exponent applied by moving the point, exactly: no double between);
 * the count of fraction digits, or -1 when v is no such number. */
static int plain_decimal(struct tis_value v, struct tbuf *out)
{
    char dig[160];
    size_t i = 0, nd = 0;
    long point = -1, exp = 0;
    bool neg = v.len && v.p[0] == '-';
    for (i = neg; i < v.len; i++) {
        if (v.p[i] == '.' && point < 0)
            point = (long)nd;
        else if (v.p[i] >= '0' && v.p[i] <= '9' && nd < sizeof dig)
            dig[nd++] = v.p[i];
        else
            break;
    }
    if (nd == 0 || nd == sizeof dig)
        return -1;
    if (i < v.len && (v.p[i] == 'e' || v.p[i] == 'E')) {
        char tmp[16], *end;
        snprintf(tmp, sizeof tmp, "%.*s", (int)(v.len - i - 1 < 15 ? v.len - i - 1 : 15),
                 v.p + i + 1);
        exp = strtol(tmp, &end, 10);
        if (end == tmp || *end || exp > 100 || exp < -100 || v.len - i - 1 > 15)
            return -1;
        i = v.len;
    }
    if (i != v.len)
        return -1;
    point = (point < 0 ? (long)nd : point) + exp; /* integer digits */
    size_t lead = 0;                               /* leading zeros, the last integer one kept */
    while (lead + 1 < nd && (long)lead + 1 < point && dig[lead] == '0')
        lead++;
    if (neg)
        tbuf_add(out, "-", 1);
    if (point <= 0) {
        tbuf_add(out, "0.", 2);
        for (long z = point; z < 0; z++)
            tbuf_add(out, "0", 1);
        tbuf_add(out, dig, nd);
        return (int)(nd - (size_t)point);
    }
    for (long k = (long)lead; k < point; k++)
        tbuf_add(out, k < (long)nd ? &dig[k] : "0", 1);
    if ((size_t)point >= nd)
        return 0;
    tbuf_add(out, ".", 1);
    tbuf_add(out, dig + point, nd - (size_t)point);
    return (int)(nd - (size_t)point);
}

/* A DECIMAL(p,s) from Debezium's double (TiCDC's encoding): "12.3" back
 * to "12.30", "1e-05" to "0.00001000". A double's shortest text keeps the
 * value's significant digits, so padding gives the column's text back;
 * only one with more fraction digits than s (a value past a double's
 * precision) is rounded, through the double. */
static void decimal_scale(struct tbuf *conv, struct tis_value v, int scale)
{
    size_t at = conv->len;
    int frac = plain_decimal(v, conv);
    if (frac >= 0 && frac <= scale) {
        if (frac == 0 && scale > 0)
            tbuf_add(conv, ".", 1);
        for (; frac < scale; frac++)
            tbuf_add(conv, "0", 1);
    } else {
        char tmp[64];
        conv->len = at;
        snprintf(tmp, sizeof tmp, "%.*s", (int)(v.len < 63 ? v.len : 63), v.p);
        tbuf_printf(conv, "%.*f", scale, strtod(tmp, NULL));
    }
    char *p = conv->data + at;
    if (p[0] == '-' && strspn(p + 1, "0.") == conv->len - at - 1) { /* a DECIMAL has no -0 */
        memmove(p, p + 1, conv->len - at); /* with the terminating NUL */
        conv->len--;
    }
}

/* A TIMESTAMP Debezium sent in UTC ("YYYY-MM-DD HH:MM:SS[.f]"), written
 * in the zone the dump read the table in; false (nothing written) when the
 * text or the zone cannot be read. */
static bool timestamp_in_zone(struct rowbuf *rb, const char *zone, struct tis_value v)
{
    struct tm tm = {0};
    char tmp[64];
    int used = 0;
    long off;
    snprintf(tmp, sizeof tmp, "%.*s", (int)(v.len < 63 ? v.len : 63), v.p);
    if (sscanf(tmp, "%4d-%2d-%2d %2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6 || tm.tm_year < 1)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    /* The epoch is no TIMESTAMP (they start a second later): it is how
     * Debezium sends the zero value, which the dump prints as zeros. */
    if (t == 0 && strspn(tmp + used, ".0") == strlen(tmp + used)) {
        tbuf_printf(&rb->conv, "0000-00-00 00:00:00%s", tmp + used);
        return true;
    }
    if (!tz_offset_at(&rb->tz, zone, (int64_t)t, &off))
        return false;
    t += off;
    if (!gmtime_r(&t, &tm))
        return false;
    tbuf_printf(&rb->conv, "%04d-%02d-%02d %02d:%02d:%02d%s", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tmp + used);
    return true;
}

/* Debezium's values of a time or decimal column in the dump's text: the
 * column's fraction digits, and a TIMESTAMP in the dump's zone. */
static struct tis_value debezium_form(struct rowbuf *rb, const char *zone,
                                      const struct tis_field *f, struct tis_value v, bool *moved)
{
    size_t at = rb->conv.len;
    int n = fraction_digits(f->source_type);
    if (f->vt == VT_DECIMAL)
        decimal_scale(&rb->conv, v, n);
    else if (f->vt != VT_DATETIME && f->vt != VT_TIME)
        return v;
    else if (!(f->vt == VT_DATETIME && zone && strncasecmp(f->source_type, "timestamp", 9) == 0 &&
               timestamp_in_zone(rb, zone, v)))
        tbuf_add(&rb->conv, v.p, v.len);
    if (f->vt != VT_DECIMAL)
        fix_fraction(&rb->conv, at, n);
    *moved = true;
    return (struct tis_value){(const char *)(uintptr_t)at, rb->conv.len - at, false};
}

/* The value of field f as a dump has it (offsets into rb->conv when
 * converted; *moved says so). untyped: the row's (cdc_row.untyped). */
static struct tis_value dump_form(enum cdc_protocol proto, bool untyped, struct rowbuf *rb,
                                  const char *zone, const struct tis_field *f,
                                  const struct cdc_col *col, bool *moved)
{
    struct tis_value v = col->v;
    *moved = false;
    if (v.null)
        return v;
    if (f->vt == VT_BIT)
        return *moved = true, bit_bytes(&rb->conv, f, v);
    if ((untyped || col->plain_string) && f->vt == VT_BINARY)
        return unbase64(&rb->conv, v, moved);
    if (proto == CDC_DEBEZIUM)
        return debezium_form(rb, zone, f, v, moved);
    if ((proto == CDC_OPEN || proto == CDC_CANAL || untyped) && all_digits(v) &&
        (strncasecmp(f->source_type, "enum(", 5) == 0 ||
         strncasecmp(f->source_type, "set(", 4) == 0))
        return *moved = true, enum_names(&rb->conv, f, v);
    return v;
}

void rowbuf_init(struct rowbuf *rb, size_t nfields)
{
    memset(rb, 0, sizeof *rb);
    rb->vals = xcalloc(nfields, sizeof *rb->vals);
    rb->present = xcalloc(nfields, sizeof *rb->present);
    rb->moved = xcalloc(nfields, sizeof *rb->moved);
}

void rowbuf_free(struct rowbuf *rb)
{
    free(rb->vals);
    free(rb->present);
    free(rb->moved);
    tbuf_free(&rb->conv);
    tz_cache_free(&rb->tz);
}

int incr_row_values(struct incr *c, struct rowbuf *rb, const struct cdc_row *r, bool need_pk,
                    char *err, size_t errlen)
{
    const struct tis_schema *sc = gen_schema(c->g);
    tbuf_reset(&rb->conv);
    tbuf_reserve(&rb->conv, 64); /* offsets below never sit on a NULL buffer */
    rb->all = true;
    /* A row's columns mostly come in the table's order, as the fields do:
     * each search starts after the column the last one found (a wide
     * table's rows would otherwise cost fields x columns comparisons). */
    size_t from = 0;
    for (size_t i = 0; i < sc->nfields; i++) {
        rb->present[i] = false;
        rb->vals[i] = (struct tis_value){"", 0, true};
        for (size_t k = 0; k < r->n; k++) {
            size_t j = (from + k) % r->n;
            if (name_eq(r->cols[j].name, sc->fields[i].name)) {
                rb->present[i] = true;
                rb->vals[i] = dump_form(c->proto, r->untyped, rb, sc->time_zone, &sc->fields[i],
                                        &r->cols[j],
                                        &rb->moved[i]);
                from = j + 1;
                break;
            }
        }
        rb->all &= rb->present[i];
    }
    for (size_t i = 0; i < sc->nfields; i++) /* conv may have moved while it grew */
        if (rb->present[i] && rb->moved[i])
            rb->vals[i].p = rb->conv.data + (uintptr_t)rb->vals[i].p;
    for (size_t i = 0; need_pk && i < sc->npk; i++)
        if (!rb->present[sc->pk[i]] || rb->vals[sc->pk[i]].null) {
            snprintf(err, errlen, "the event carries no value for primary key column %s",
                     sc->fields[sc->pk[i]].name);
            return -1;
        }
    return 0;
}
