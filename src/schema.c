/* schema — field types and the typed JSON form of values. */
#define _GNU_SOURCE
#include "tisfs/schema.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tisfs/util.h"

static const char *const vt_names[] = {"int",  "uint",     "float", "decimal", "string", "binary",
                                       "date", "datetime", "time",  "year",    "json",   "bit"};

const char *vtype_name(enum tis_vtype t)
{
    return t <= VT_BIT ? vt_names[t] : "?";
}

static enum tis_vtype vtype_by_name(const char *s)
{
    for (int t = VT_INT; t <= VT_BIT; t++)
        if (strcmp(vt_names[t], s) == 0)
            return (enum tis_vtype)t;
    return VT_STRING;
}

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcasecmp(s, *list) == 0)
            return true;
    return false;
}

enum tis_vtype vtype_from_sql(const char *dt, const char *ct)
{
    static const char *const ints[] = {"tinyint", "smallint", "mediumint", "int",
                                       "integer", "bigint",   NULL};
    static const char *const floats[] = {"float", "double", "real", NULL};
    static const char *const bins[] = {"binary",     "varbinary", "blob", "tinyblob",
                                       "mediumblob", "longblob",  NULL};
    static const char *const datetimes[] = {"datetime", "timestamp", NULL};
    if (in_list(dt, ints))
        return ct && strcasestr(ct, "unsigned") ? VT_UINT : VT_INT;
    if (in_list(dt, floats))
        return VT_FLOAT;
    if (strcasecmp(dt, "decimal") == 0 || strcasecmp(dt, "numeric") == 0)
        return VT_DECIMAL;
    if (in_list(dt, bins))
        return VT_BINARY;
    if (strcasecmp(dt, "date") == 0)
        return VT_DATE;
    if (in_list(dt, datetimes))
        return VT_DATETIME;
    if (strcasecmp(dt, "time") == 0)
        return VT_TIME;
    if (strcasecmp(dt, "year") == 0)
        return VT_YEAR;
    if (strcasecmp(dt, "json") == 0)
        return VT_JSON;
    if (strcasecmp(dt, "bit") == 0)
        return VT_BIT;
    return VT_STRING;
}

bool vtype_is_text(enum tis_vtype t)
{
    return t == VT_STRING || t == VT_JSON;
}

struct tis_schema *schema_ref(const struct tis_schema *s)
{
    struct tis_schema *m = (struct tis_schema *)s; /* the count is not the schema */
    __atomic_add_fetch(&m->extra_refs, 1, __ATOMIC_RELAXED);
    return m;
}

void schema_free(struct tis_schema *s)
{
    if (!s || __atomic_fetch_sub(&s->extra_refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    for (size_t i = 0; i < s->nfields; i++) {
        free(s->fields[i].name);
        free(s->fields[i].source_type);
    }
    free(s->fields);
    free(s->pk);
    free(s->time_zone);
    free(s);
}

struct json_object *schema_to_json(const struct tis_schema *s)
{
    struct json_object *o = json_object_new_object(), *fs = json_object_new_array(),
                       *pk = json_object_new_array();
    for (size_t i = 0; i < s->nfields; i++) {
        const struct tis_field *f = &s->fields[i];
        struct json_object *j = json_object_new_object();
        json_object_object_add(j, "name", json_object_new_string(f->name));
        json_object_object_add(j, "source_type", json_object_new_string(f->source_type));
        json_object_object_add(j, "type", json_object_new_string(vtype_name(f->vt)));
        json_object_object_add(j, "token", f->token ? json_object_new_string(token_name(f->token))
                                                    : NULL);
        json_object_object_add(j, "search", json_object_new_boolean(f->search));
        json_object_object_add(j, "store", json_object_new_boolean(f->store));
        json_object_object_add(j, "pk", json_object_new_boolean(f->pk));
        json_object_array_add(fs, j);
    }
    for (size_t i = 0; i < s->npk; i++)
        json_object_array_add(pk, json_object_new_string(s->fields[s->pk[i]].name));
    json_object_object_add(o, "fields", fs);
    json_object_object_add(o, "primaryKey", pk);
    if (s->time_zone)
        json_object_object_add(o, "timeZone", json_object_new_string(s->time_zone));
    return o;
}

static const char *jstr(struct json_object *o, const char *k)
{
    struct json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

static bool jbool(struct json_object *o, const char *k)
{
    struct json_object *v;
    return json_object_object_get_ex(o, k, &v) && json_object_get_boolean(v);
}

static enum tis_token token_by_name(const char *s)
{
    for (int t = TOK_STRING; s && t <= TOK_PINYIN; t++)
        if (strcmp(s, token_name((enum tis_token)t)) == 0)
            return (enum tis_token)t;
    return TOK_DEFAULT;
}

struct tis_schema *schema_from_json(struct json_object *o)
{
    struct json_object *fs;
    if (!o || !json_object_object_get_ex(o, "fields", &fs) ||
        !json_object_is_type(fs, json_type_array))
        return NULL;
    struct tis_schema *s = xcalloc(1, sizeof *s);
    s->nfields = json_object_array_length(fs);
    s->fields = xcalloc(s->nfields, sizeof *s->fields);
    s->pk = xcalloc(s->nfields, sizeof *s->pk);
    for (size_t i = 0; i < s->nfields; i++) {
        struct json_object *j = json_object_array_get_idx(fs, i);
        struct tis_field *f = &s->fields[i];
        f->name = xstrdup(jstr(j, "name") ? jstr(j, "name") : "");
        f->source_type = xstrdup(jstr(j, "source_type") ? jstr(j, "source_type") : "");
        f->vt = vtype_by_name(jstr(j, "type") ? jstr(j, "type") : "string");
        f->token = token_by_name(jstr(j, "token"));
        f->search = jbool(j, "search");
        f->store = jbool(j, "store");
        f->pk = jbool(j, "pk");
    }
    /* primaryKey keeps key order, which may differ from field order. */
    struct json_object *pk;
    if (json_object_object_get_ex(o, "primaryKey", &pk))
        for (size_t k = 0; k < json_object_array_length(pk); k++)
            for (size_t i = 0; i < s->nfields; i++)
                if (strcmp(s->fields[i].name,
                           json_object_get_string(json_object_array_get_idx(pk, k))) == 0)
                    s->pk[s->npk++] = i;
    if (jstr(o, "timeZone"))
        s->time_zone = xstrdup(jstr(o, "timeZone"));
    return s;
}

static struct json_object *base64_json(const unsigned char *p, size_t len)
{
    char *b = base64_encode(p, len);
    struct json_object *o = json_object_new_string(b);
    free(b);
    return o;
}

/* Numbers come from the server as text; a value that does not parse (which a
 * real server never sends) is kept as a string rather than dropped. */
static struct json_object *number_json(enum tis_vtype vt, const char *s, size_t len)
{
    char buf[128];
    if (len >= sizeof buf)
        return json_object_new_string_len(s, (int)len);
    memcpy(buf, s, len);
    buf[len] = 0;
    char *end;
    errno = 0;
    if (vt == VT_INT || vt == VT_YEAR) {
        long long v = strtoll(buf, &end, 10);
        if (!*end && !errno)
            return json_object_new_int64(v);
    } else if (vt == VT_UINT) {
        unsigned long long v = strtoull(buf, &end, 10);
        if (!*end && !errno && buf[0] != '-')
            return json_object_new_uint64(v);
    } else {
        double d = strtod(buf, &end);
        if (!*end && end != buf)
            return json_object_new_double_s(d, buf);
    }
    return json_object_new_string(buf);
}

struct json_object *value_to_json(enum tis_vtype vt, const char *p, size_t len)
{
    switch (vt) {
    case VT_INT:
    case VT_UINT:
    case VT_YEAR:
    case VT_FLOAT:
    case VT_DECIMAL:
        return number_json(vt, p, len);
    case VT_BINARY:
        return base64_json((const unsigned char *)p, len);
    case VT_BIT: {
        /* The text protocol sends BIT(n) as its raw big-endian bytes. */
        uint64_t v = 0;
        for (size_t i = 0; i < len && i < 8; i++)
            v = v << 8 | (unsigned char)p[i];
        return json_object_new_uint64(v);
    }
    default:
        return json_object_new_string_len(p, (int)len);
    }
}
