/* cdc_debezium — Debezium's change-event envelope, as TiCDC (v8.0+) and
 * Debezium's own MySQL connector write it with Kafka Connect's JSON
 * converter: {"schema": {...}, "payload": {...}}, or the bare payload when
 * schemas are disabled.
 *
 * Values are typed by the schema of the before/after struct, not by their
 * JSON form: a date is a day count, a DATETIME milliseconds or microseconds,
 * a DECIMAL base64 two's-complement bytes, a BIT(n>1) little-endian bytes.
 * Each is turned back into the text a MySQL dump gives. TiCDC types binary
 * strings "string" and sends base64; its "tidb_type" extension (when on)
 * tells them apart, and also marks unsigned BIGINTs, which TiCDC sends
 * wrapped to int64. Without a schema, values go by their JSON form. */
#include "cdc_internal.h"

#include <stdio.h>
#include <string.h>

/* Decimal magnitudes above this many bytes (DECIMAL(65) needs 28) are
 * refused: long division by ten is quadratic. */
#define DECIMAL_MAX_BYTES 64
/* |days| beyond this is far outside MySQL's years 0..9999. */
#define DAYS_MAX 4000000

/* A field schema's members that decide a column's conversion. */
struct cdc_field_info {
    bool read;
    const struct jval *fs;
    const char *field, *name, *type, *tidb;
};

struct fmt {
    struct cdc_ctx *c;
    const char *where;
    const struct cdc_field_info *fi; /* the field's schema, or NULL */
    struct tis_value *out;
};

/* ---- dates and times -------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Howard Hinnant's days-from-civil and its inverse: exact for the
 * proleptic Gregorian calendar MySQL uses, negative days included. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* "YYYY-MM-DD" of a day count, refusing years MySQL cannot hold. */
static bool put_date(struct tbuf *b, int64_t days)
{
    int64_t y;
    int m, d;

    if (days > DAYS_MAX || days < -DAYS_MAX)
        return false;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999)
        return false;
    tbuf_printf(b, "%04d-%02d-%02d", (int)y, m, d);
    return true;
}

/* A fraction of `digits` digits, only when it is not zero: the schema does
 * not carry the column's precision, and a whole second is the common case. */
static void put_frac(struct tbuf *b, uint64_t frac, int digits)
{
    if (digits == 9 && frac % 1000 == 0) {
        frac /= 1000;
        digits = 6;
    }
    if (frac)
        tbuf_printf(b, ".%0*llu", digits, (unsigned long long)frac);
}

/* "YYYY-MM-DD HH:MM:SS[.f]" from v units (per_sec a second) since the epoch,
 * read as UTC as Debezium writes DATETIME. */
static bool put_datetime(struct tbuf *b, int64_t v, int64_t per_sec, int digits)
{
    int64_t sec, days, rem;

    if (v > INT64_C(4000000000000000000) || v < -INT64_C(4000000000000000000))
        return false;
    sec = floor_div(v, per_sec);
    days = floor_div(sec, 86400);
    rem = sec - days * 86400;
    if (!put_date(b, days))
        return false;
    tbuf_printf(b, " %02d:%02d:%02d", (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
    put_frac(b, (uint64_t)(v - sec * per_sec), digits);
    return true;
}

/* "[-]HH:MM:SS[.f]": a TIME is a duration, negative or past 24 hours. */
static void put_time(struct tbuf *b, int64_t v, int64_t per_sec, int digits)
{
    uint64_t a = v < 0 ? -(uint64_t)v : (uint64_t)v, sec = a / (uint64_t)per_sec;

    tbuf_printf(b, "%s%02llu:%02d:%02d", v < 0 ? "-" : "", (unsigned long long)(sec / 3600),
                (int)(sec / 60 % 60), (int)(sec % 60));
    put_frac(b, a % (uint64_t)per_sec, digits);
}

/* Exactly n digits at *p. */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return -1;
        v = v * 10 + (**p - '0');
    }
    return v;
}

/* Z, ±HH:MM, ±HHMM or ±HH, as seconds east of UTC. */
static bool zone_offset(const char *p, int64_t *off)
{
    int sign = *p == '-' ? -1 : 1, h, m = 0;

    if (p[0] == 'Z' && !p[1]) {
        *off = 0;
        return true;
    }
    if (*p != '+' && *p != '-')
        return false;
    p++;
    if ((h = digits(&p, 2)) < 0)
        return false;
    p += *p == ':';
    if (*p && (m = digits(&p, 2)) < 0)
        return false;
    *off = sign * (h * 3600 + m * 60);
    return !*p;
}

/* "YYYY-MM-DD?HH:MM:SS" at *p into its six fields, separators checked. */
static bool iso_fields(const char **p, int f[6])
{
    static const int width[6] = {4, 2, 2, 2, 2, 2};
    static const char sep[6] = "--T::";

    for (int i = 0; i < 6; i++) {
        if ((f[i] = digits(p, width[i])) < 0)
            return false;
        if (i < 5 && **p != sep[i] && !(i == 2 && **p == ' '))
            return false;
        *p += i < 5;
    }
    return f[1] >= 1 && f[1] <= 12 && f[2] >= 1 && f[2] <= 31;
}

/* An ISO-8601 ZonedTimestamp to UTC, keeping the fraction's digits as sent
 * (TiCDC sends as many as the column's precision). */
static bool put_zoned(struct tbuf *b, const char *s)
{
    const char *p = s, *frac = NULL;
    int f[6];
    int64_t off, t;
    size_t nfrac = 0;

    if (!iso_fields(&p, f))
        return false;
    if (*p == '.') {
        frac = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        nfrac = (size_t)(p - frac);
        if (nfrac == 0 || nfrac > 9)
            return false;
    }
    if (!zone_offset(p, &off))
        return false;
    t = days_from_civil(f[0], f[1], f[2]) * 86400 + f[3] * 3600 + f[4] * 60 + f[5] - off;
    if (!put_datetime(b, t, 1, 0))
        return false;
    if (nfrac)
        tbuf_printf(b, ".%.*s", (int)nfrac, frac);
    return true;
}

/* ---- numbers ---------------------------------------------------------- */

/* Decimal digits of a big-endian magnitude, least significant first, by
 * long division by ten; the magnitude is consumed. */
static size_t magnitude_digits(unsigned char *mag, size_t n, char *dig)
{
    size_t nd = 0;
    bool nonzero = true;

    while (nonzero) {
        unsigned rem = 0;
        nonzero = false;
        for (size_t i = 0; i < n; i++) {
            unsigned cur = rem * 256 + mag[i];
            mag[i] = (unsigned char)(cur / 10);
            rem = cur % 10;
            nonzero |= mag[i] != 0;
        }
        dig[nd++] = (char)('0' + rem);
    }
    return nd;
}

/* Decimal text of a big-endian two's-complement integer times 10^-scale
 * (Kafka Connect's Decimal), with exactly scale fraction digits as MySQL
 * prints a DECIMAL(m, scale). */
static bool put_decimal(struct tbuf *b, const unsigned char *in, size_t n, int64_t scale)
{
    unsigned char mag[DECIMAL_MAX_BYTES];
    char dig[DECIMAL_MAX_BYTES * 3 + 104];
    bool neg = n && (in[0] & 0x80);
    size_t nd;

    if (n > DECIMAL_MAX_BYTES || scale < -100 || scale > 100)
        return false;
    for (size_t i = 0; i < n; i++)
        mag[i] = neg ? (unsigned char)~in[i] : in[i];
    for (size_t i = n; neg && i-- > 0;)
        if (++mag[i] != 0)
            break;
    nd = magnitude_digits(mag, n, dig);
    while (scale > 0 && nd <= (size_t)scale)
        dig[nd++] = '0';
    tbuf_adds(b, neg ? "-" : "");
    for (size_t i = nd; i-- > 0;) {
        tbuf_add(b, &dig[i], 1);
        if (scale > 0 && i == (size_t)scale)
            tbuf_adds(b, ".");
    }
    for (int64_t i = scale; i < 0 && !(nd == 1 && dig[0] == '0'); i++)
        tbuf_adds(b, "0");
    return true;
}

/* The base64 bytes of a string value into buf; n gets their count. */
static bool b64_bytes(struct fmt *f, const struct jval *v, unsigned char *buf, size_t cap,
                      size_t *n)
{
    struct tbuf *s = &f->c->out->scratch;

    tbuf_reset(s);
    if (!jv_is(v, JV_STR) || !cdc_base64(s, v->s, v->len) ||
        s->len > cap)
        return false;
    memcpy(buf, s->data, s->len);
    *n = s->len;
    tbuf_reset(s);
    return true;
}

/* ---- conversions by semantic type -------------------------------------- */

/* The text a conversion left in scratch becomes the value; or the error,
 * naming the column. */
static int done(struct fmt *f, bool ok, const char *what)
{
    struct tbuf *s = &f->c->out->scratch;

    if (!ok)
        return cdc_fail(f->c, "%s: not a valid %s", f->where, what);
    cdc_value_set(f->c->out, f->out, s->len ? s->data : "", s->len);
    return 0;
}

/* The conversions below share one shape: text into scratch, then done(). */
static int conv_date(struct fmt *f, const struct jval *v)
{
    int64_t days;
    tbuf_reset(&f->c->out->scratch);
    return done(f, cdc_json_i64(v, &days) && put_date(&f->c->out->scratch, days), "date");
}

static int conv_datetime(struct fmt *f, const struct jval *v, int64_t per_sec, int digits)
{
    int64_t t;
    tbuf_reset(&f->c->out->scratch);
    return done(f, cdc_json_i64(v, &t) && put_datetime(&f->c->out->scratch, t, per_sec, digits),
                "timestamp");
}

static int conv_time(struct fmt *f, const struct jval *v, int64_t per_sec, int digits)
{
    int64_t t;
    bool ok = cdc_json_i64(v, &t);
    tbuf_reset(&f->c->out->scratch);
    if (ok)
        put_time(&f->c->out->scratch, t, per_sec, digits);
    return done(f, ok, "time");
}

static int conv_zoned(struct fmt *f, const struct jval *v)
{
    tbuf_reset(&f->c->out->scratch);
    return done(f,
                jv_is(v, JV_STR) && put_zoned(&f->c->out->scratch, v->s),
                "zoned timestamp");
}

/* Kafka's Decimal (scale in the schema's parameters) or Debezium's
 * VariableScaleDecimal (a struct carrying its own scale). */
static int conv_decimal(struct fmt *f, const struct jval *v, bool variable)
{
    unsigned char buf[DECIMAL_MAX_BYTES];
    size_t n = 0;
    int64_t scale = 0;
    const struct jval *sc = variable ? cdc_get(v, "scale")
                                      : cdc_get(cdc_get(f->fi ? f->fi->fs : NULL, "parameters"),
                                                "scale");
    bool ok = (!sc || cdc_json_i64(sc, &scale)) &&
              b64_bytes(f, variable ? cdc_get(v, "value") : v, buf, sizeof buf, &n);

    return done(f, ok && put_decimal(&f->c->out->scratch, buf, n, scale), "decimal");
}

/* BIT(n>1): little-endian bytes, at most 64 bits, as their decimal value. */
static int conv_bits(struct fmt *f, const struct jval *v)
{
    unsigned char buf[8];
    size_t n = 0;
    uint64_t x = 0;
    bool ok = b64_bytes(f, v, buf, sizeof buf, &n);

    for (size_t i = 0; ok && i < n; i++)
        x |= (uint64_t)buf[i] << (8 * i);
    if (ok)
        tbuf_printf(&f->c->out->scratch, "%llu", (unsigned long long)x);
    return done(f, ok, "bits value");
}

static int conv_bytes(struct fmt *f, const struct jval *v)
{
    if (!jv_is(v, JV_STR) || !cdc_decode_into(f->c->out, f->out, cdc_base64, v->s, v->len))
        return cdc_fail(f->c, "%s: bytes value is not base64", f->where);
    return 0;
}

/* TiCDC wraps BIGINT UNSIGNED above INT64_MAX to negative int64; its
 * tidb_type says when adding 2^64 gives the value back. */
static int conv_unsigned(struct fmt *f, const struct jval *v)
{
    int64_t x;
    if (!cdc_json_i64(v, &x) || x >= 0)
        return cdc_scalar(f->c, v, f->out, f->where);
    tbuf_reset(&f->c->out->scratch);
    tbuf_printf(&f->c->out->scratch, "%llu", (unsigned long long)(uint64_t)x);
    return done(f, true, "number");
}

/* Logical types by schema name; false when the name is not one of them. */
static bool conv_named(struct fmt *f, const char *name, const struct jval *v, int *rc)
{
    static const char dbz[] = "io.debezium.", kc[] = "org.apache.kafka.connect.data.";
    const char *n = strncmp(name, dbz, sizeof dbz - 1) == 0  ? name + sizeof dbz - 1
                    : strncmp(name, kc, sizeof kc - 1) == 0 ? name + sizeof kc - 1
                                                            : "";
    if (!strcmp(n, "time.Date") || !strcmp(n, "Date"))
        *rc = conv_date(f, v);
    else if (!strcmp(n, "time.Timestamp") || !strcmp(n, "Timestamp"))
        *rc = conv_datetime(f, v, 1000, 3);
    else if (!strcmp(n, "time.MicroTimestamp"))
        *rc = conv_datetime(f, v, 1000000, 6);
    else if (!strcmp(n, "time.NanoTimestamp"))
        *rc = conv_datetime(f, v, 1000000000, 9);
    else if (!strcmp(n, "time.ZonedTimestamp"))
        *rc = conv_zoned(f, v);
    else if (!strcmp(n, "time.Time") || !strcmp(n, "Time"))
        *rc = conv_time(f, v, 1000, 3);
    else if (!strcmp(n, "time.MicroTime"))
        *rc = conv_time(f, v, 1000000, 6);
    else if (!strcmp(n, "time.NanoTime"))
        *rc = conv_time(f, v, 1000000000, 9);
    else if (!strcmp(n, "Decimal") || !strcmp(n, "data.VariableScaleDecimal"))
        *rc = conv_decimal(f, v, n[0] == 'd');
    else if (!strcmp(n, "data.Bits"))
        *rc = conv_bits(f, v);
    else
        return false;
    return true;
}

/* A struct as json-c writes it plainly (the form this decoder has always
 * given): its text in the message, parsed again by json-c. Rare, so the
 * second parse costs nothing that matters. */
static int json_text(struct fmt *f, const struct jval *v)
{
    struct json_object *o = cdc_json_c(f->c->out, v);
    const char *s = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;
    if (s)
        cdc_value_set(f->c->out, f->out, s, strlen(s));
    json_object_put(o);
    return s ? 0 : cdc_fail(f->c, "%s: a value json-c cannot read", f->where);
}

/* One value by its field schema; JSON text for structs nobody asked for
 * (geometry, say) rather than failing the whole message. */
static int convert(struct fmt *f, const struct jval *v)
{
    const char *name = f->fi ? f->fi->name : NULL, *type = f->fi ? f->fi->type : NULL;
    const char *tidb = f->fi ? f->fi->tidb : NULL;
    int rc;

    if (!v) {
        cdc_value_null(f->out);
        return 0;
    }
    if (name && conv_named(f, name, v, &rc))
        return rc;
    if ((type && !strcmp(type, "bytes")) ||
        (tidb && (strstr(tidb, "blob") || strstr(tidb, "binary"))))
        return conv_bytes(f, v);
    if (tidb && strstr(tidb, "unsigned"))
        return conv_unsigned(f, v);
    if (jv_is(v, JV_OBJ) || jv_is(v, JV_ARR))
        return json_text(f, v);
    return cdc_scalar(f->c, v, f->out, f->where);
}

/* ---- envelope --------------------------------------------------------- */

/* The field list of the before/after struct (NULL when the message
 * carries no schema). */
static const struct jval *struct_fields(const struct jval *schema, const char *which)
{
    jv_foreach(cdc_get(schema, "fields"), fs) {
        const char *f = cdc_get_str(fs, "field");
        if (f && !strcmp(f, which)) {
            const struct jval *st = cdc_get(fs, "fields");
            return jv_is(st, JV_ARR) ? st : NULL;
        }
    }
    return NULL;
}

/* What field schema fs says, read once for the schema a message repeats
 * (four lookups a column were a tenth of decoding a Debezium message), or
 * into *tmp for one that came with its message alone. */
static const struct cdc_field_info *field_info(struct cdc_ctx *c, const struct jval *fs,
                                               struct cdc_field_info *tmp)
{
    struct cdc_docs *k = cdc_docs_of(c);
    struct cdc_field_info *fi = tmp;
    if (k && k->root && fs >= k->root && fs < k->root + k->root->span) {
        size_t i = (size_t)(fs - k->root);
        if (k->nfields != k->root->span) {
            free(k->fields);
            k->nfields = k->root->span;
            k->fields = xcalloc(k->nfields, sizeof *k->fields);
        }
        fi = &k->fields[i];
        if (fi->read)
            return fi;
    }
    *fi = (struct cdc_field_info){true, fs, cdc_get_str(fs, "field"), cdc_get_str(fs, "name"),
                                  cdc_get_str(fs, "type"), cdc_get_str(fs, "tidb_type")};
    return fi;
}

/* The field schema of column name; the list normally follows the image's
 * order, so the element after the last one found is tried first. */
static const struct cdc_field_info *field_schema(struct cdc_ctx *c, const struct jval *st,
                                                 const char *name, const struct jval **hint,
                                                 struct cdc_field_info *tmp)
{
    const struct jval *h = *hint;
    if (!st)
        return NULL;
    if (h && h > st && h < st + st->span) {
        const struct cdc_field_info *fi = field_info(c, h, tmp);
        if (fi->field && !strcmp(fi->field, name)) {
            *hint = h + h->span;
            return fi;
        }
    }
    jv_foreach(st, fs) {
        const struct cdc_field_info *fi = field_info(c, fs, tmp);
        if (fi->field && !strcmp(fi->field, name)) {
            *hint = fs + fs->span;
            return fi;
        }
    }
    return NULL;
}

/* Each column by its field in the struct of the same name (before and
 * after have their own, normally identical, field lists). */
static int image(struct cdc_ctx *c, const struct jval *schema, const char *which,
                 const struct jval *img, struct cdc_row *r)
{
    const struct jval *st = struct_fields(schema, which), *hint = NULL;
    char where[160];

    cdc_row_init(c->out, r, img->len);
    jv_foreach(img, v) {
        struct cdc_field_info tmp;
        struct fmt f = {c, "", field_schema(c, st, v->key, &hint, &tmp),
                        cdc_row_add(c->out, r, v->key)};
        const struct jval *x = v->type == JV_NULL ? NULL : v;
        /* The place is spelled out only for an error, in a second pass
         * (an snprintf a column was 4 % of decoding a message). */
        if (convert(&f, x) < 0) {
            snprintf(where, sizeof where, "payload.%s.%s", which, v->key);
            f.where = where;
            return convert(&f, x);
        }
        r->cols[r->n - 1].plain_string =
            x && jv_is(x, JV_STR) &&
            !(f.fi && (f.fi->name || f.fi->tidb || (f.fi->type && strcmp(f.fi->type, "string"))));
    }
    return 0;
}

/* ---- the message ------------------------------------------------------ */

static struct version version(const struct jval *src)
{
    struct version v = {VER_NONE, 0};
    const char *file = cdc_get_str(src, "file");
    uint64_t pos, row = 0;

    if (cdc_get_u64(src, "commit_ts", &v.v)) {
        v.domain = VER_TSO;
        return v;
    }
    if (file && *file && cdc_get_u64(src, "pos", &pos)) {
        cdc_get_u64(src, "row", &row);
        v = cdc_binlog_version(file, pos, row > UINT32_MAX ? UINT32_MAX : (uint32_t)row);
        if (v.domain != VER_NONE)
            return v;
    }
    if (cdc_get_u64(src, "ts_ms", &v.v))
        v.domain = VER_MS;
    return v;
}

/* Schema-change events may name the database only in databaseName. */
static void names(struct cdc_ctx *c, struct cdc_event *ev, const struct jval *p)
{
    const struct jval *src = cdc_get(p, "source");
    const char *db = cdc_get_str(src, "db"), *tbl = cdc_get_str(src, "table");

    if (!db || !*db)
        db = cdc_get_str(p, "databaseName");
    ev->db = db ? cdc_copy(c->out, db, strlen(db)) : "";
    ev->table = tbl ? cdc_copy(c->out, tbl, strlen(tbl)) : "";
    ev->ver = version(src);
}

static bool is_object_or_null(const struct jval *o)
{
    return !o || jv_is(o, JV_OBJ);
}

/* c (create) and r (snapshot read) insert, u update, d delete. */
static int row(struct cdc_ctx *c, const struct jval *schema, const struct jval *p, char op)
{
    const struct jval *before = cdc_get(p, "before"), *after = cdc_get(p, "after");
    struct cdc_event *ev;

    if (!is_object_or_null(before) || !is_object_or_null(after))
        return cdc_fail(c, "payload.before and payload.after must be objects or null");
    if (op == 'd' ? !before : !after)
        return cdc_fail(c, "op \"%c\" without payload.%s", op, op == 'd' ? "before" : "after");
    ev = cdc_add_event(c->out, CDC_ROW);
    names(c, ev, p);
    ev->op = op == 'd' ? CDC_DELETE : op == 'u' ? CDC_UPDATE : CDC_INSERT;
    if (before && image(c, schema, "before", before, &ev->before) < 0)
        return -1;
    return after && op != 'd' ? image(c, schema, "after", after, &ev->after) : 0;
}

/* A schema change (payload.ddl, no op) or a truncate (op t). */
static int ddl(struct cdc_ctx *c, const struct jval *p, const char *sql, enum cdc_ddl kind)
{
    struct cdc_event *ev = cdc_add_event(c->out, CDC_DDL);

    names(c, ev, p);
    ev->ver = version(cdc_get(p, "source"));
    ev->sql = cdc_copy(c->out, sql, strlen(sql));
    ev->ddl = kind != DDL_OTHER ? kind : cdc_ddl_classify(sql);
    return 0;
}

/* TiCDC's checkpoint (op m) carries the watermark in source.commit_ts. */
static int watermark(struct cdc_ctx *c, const struct jval *p)
{
    struct cdc_event *ev = cdc_add_event(c->out, CDC_RESOLVED);

    ev->ver = version(cdc_get(p, "source"));
    if (ev->ver.domain != VER_TSO)
        return cdc_fail(c, "watermark (op \"m\") without source.commit_ts");
    return 0;
}

/* A payload with ddl and no op is a schema change, on TiCDC's data topic or
 * the MySQL connector's schema-change topic alike. */
static int payload(struct cdc_ctx *c, const struct jval *schema, const struct jval *p)
{
    const char *op = cdc_get_str(p, "op"), *sql = cdc_get_str(p, "ddl");

    if (!jv_is(p, JV_OBJ))
        return cdc_fail(c, "payload is not an object");
    if (!op && sql)
        return ddl(c, p, sql, DDL_OTHER);
    if (!op || !op[0] || op[1] || !strchr("crudmt", op[0]))
        return cdc_fail(c, "payload.op is missing or not one of c, r, u, d, m, t");
    if (op[0] == 'm')
        return watermark(c, p);
    if (op[0] == 't')
        return ddl(c, p, "", DDL_TRUNCATE);
    return row(c, schema, p, op[0]);
}

/* ---- the schema a message repeats ---------------------------------------
 *
 * The JSON converter writes the table's schema into every message (~2.4 KB
 * of a 3.3 KB row event on the benchmark's table), first (Debezium's MySQL
 * connector) or last (TiCDC), and its parse was most of the decoding. When
 * a message's schema is, byte for byte, the last one's, the last parse of
 * it serves and only the rest is parsed: the message without
 * "schema":<schema> and its comma. When the rest parses, the message is
 * that object with the schema as its first or last member: nothing else
 * needs checking. */

#define HEAD "{\"schema\":"
#define HEAD_LEN (sizeof HEAD - 1)
#define TAIL ",\"schema\":"
#define TAIL_LEN (sizeof TAIL - 1)

/* The message without its schema (the kept one's n bytes), into rest;
 * false when it does not carry that schema first or last. */
static bool rest_of(const unsigned char *val, size_t vlen, const struct tbuf *schema,
                    struct tbuf *rest)
{
    size_t n = schema->len;
    tbuf_reset(rest);
    if (!n || vlen <= n + HEAD_LEN + 1)
        return false;
    if (memcmp(val, HEAD, HEAD_LEN) == 0 && val[HEAD_LEN + n] == ',' &&
        memcmp(val + HEAD_LEN, schema->data, n) == 0) {
        tbuf_add(rest, "{", 1);
        tbuf_add(rest, val + HEAD_LEN + n + 1, vlen - HEAD_LEN - n - 1);
        return true;
    }
    size_t at = vlen - 1 - n - TAIL_LEN; /* where ,"schema": would start */
    if (val[vlen - 1] == '}' && memcmp(val + at, TAIL, TAIL_LEN) == 0 &&
        memcmp(val + at + TAIL_LEN, schema->data, n) == 0) {
        tbuf_add(rest, val, at);
        tbuf_add(rest, "}", 1);
        return true;
    }
    return false;
}

/* The message's payload and schema, or false when it does not repeat the
 * kept schema (or the rest is not JSON, or has no payload: the full parse
 * then says what is wrong). */
static bool parse_known_schema(struct cdc_ctx *c, const unsigned char *val, size_t vlen,
                               const struct jval **p, const struct jval **schema)
{
    struct cdc_docs *k = cdc_docs_of(c);
    if (!k || !rest_of(val, vlen, &k->schema, &k->rest))
        return false;
    const struct jval *m = jdoc_parse(&k->doc[0], k->rest.data, k->rest.len, CDC_JSON_DEPTH);
    /* Another "schema" member: which one counts is the full parse's say. */
    if (!jv_is(m, JV_OBJ) || jv_get(m, "schema") || !(*p = jv_get(m, "payload")))
        return false;
    *schema = k->root;
    c->out->repeated = vlen - k->rest.len; /* "schema":<schema> and its comma */
    return true;
}

/* Keeps the schema s of message val for the next ones: an object, the
 * message's first or last member, written as the converter writes it. */
static void keep_schema(struct cdc_ctx *c, const unsigned char *val, size_t vlen,
                        const struct jval *s)
{
    struct cdc_docs *k = cdc_docs_of(c);
    if (!k)
        return;
    tbuf_reset(&k->schema);
    if (!jv_is(s, JV_OBJ))
        return;
    bool head = s->start == HEAD_LEN && memcmp(val, HEAD, HEAD_LEN) == 0;
    bool tail = s->end == vlen - 1 && s->start >= TAIL_LEN &&
                memcmp(val + s->start - TAIL_LEN, TAIL, TAIL_LEN) == 0;
    if (!head && !tail)
        return;
    tbuf_add(&k->schema, val + s->start, s->end - s->start);
    k->root = jdoc_parse(&k->doc[2], k->schema.data, k->schema.len, CDC_JSON_DEPTH);
    if (k->fields) /* what was read of the last one's fields */
        memset(k->fields, 0, k->nfields * sizeof *k->fields);
    if (!k->root)
        tbuf_reset(&k->schema);
}

/* A null value (Kafka tombstone, after a delete) carries no change. */
int cdc_debezium_decode(struct cdc_ctx *c, const unsigned char *val, size_t vlen)
{
    const struct jval *m, *p, *schema;

    if (vlen == 0)
        return 0;
    if (parse_known_schema(c, val, vlen, &p, &schema))
        return p->type != JV_NULL ? payload(c, schema, p) : 0;
    if (cdc_json_parse(c, 0, "value", val, vlen, &m) < 0)
        return -1;
    if (!m)
        return 0;
    if (!jv_is(m, JV_OBJ))
        return cdc_fail(c, "value is not a JSON object");
    if ((p = jv_get(m, "payload"))) {
        if (p->type == JV_NULL)
            return 0;
        schema = cdc_get(m, "schema");
        keep_schema(c, val, vlen, schema);
        return payload(c, schema, p);
    }
    return payload(c, NULL, m);
}
