/* schema — the fields of a collection as discovered from the source table:
 * the spec's columns plus the primary key, each with its source type and the
 * value type tisfs keeps it as. Rows travel between modules as arrays of raw
 * text values (the MySQL text protocol's form) in schema field order. */
#ifndef TISFS_SCHEMA_H
#define TISFS_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#include "tisfs/spec.h"

enum tis_vtype {
    VT_INT,      /* signed integer types */
    VT_UINT,     /* unsigned integer types (may exceed INT64_MAX) */
    VT_FLOAT,    /* float, double */
    VT_DECIMAL,  /* decimal: kept as exact text, shown as a JSON number */
    VT_STRING,   /* char, varchar, text, enum, set */
    VT_BINARY,   /* binary, varbinary, blob: shown base64-encoded */
    VT_DATE,     /* "YYYY-MM-DD" */
    VT_DATETIME, /* datetime, timestamp: "YYYY-MM-DD HH:MM:SS[.ffffff]" */
    VT_TIME,     /* time: "HH:MM:SS" */
    VT_YEAR,     /* year: a number */
    VT_JSON,     /* json: text */
    VT_BIT,      /* bit(n): a number */
};

const char *vtype_name(enum tis_vtype t);
/* Maps information_schema DATA_TYPE (+ COLUMN_TYPE for unsigned) to a vtype. */
enum tis_vtype vtype_from_sql(const char *data_type, const char *column_type);
bool vtype_is_text(enum tis_vtype t);

struct tis_field {
    char *name;        /* as the server spells it */
    char *source_type; /* COLUMN_TYPE, e.g. "varchar(14)" */
    enum tis_vtype vt;
    enum tis_token token; /* resolved: never TOK_DEFAULT for text fields */
    bool search, store, pk;
};

struct tis_schema {
    struct tis_field *fields;
    size_t nfields;
    size_t *pk;  /* indexes into fields, in key order */
    size_t npk;
    /* The zone the source printed TIMESTAMP values in when it was read:
     * "+HH:MM" or a zone name ("Asia/Shanghai"); NULL when unknown. A
     * channel whose events carry TIMESTAMPs in UTC (Debezium) turns them
     * into this zone, as the dump has them. */
    char *time_zone;
    int extra_refs; /* schema_ref; zero for a schema with one owner */
};

/* Schemas are handed around by reference and never changed once shared:
 * schema_ref takes one more reference (returns s), schema_free drops one
 * and frees the schema with the last. */
struct tis_schema *schema_ref(const struct tis_schema *s);
void schema_free(struct tis_schema *s);
struct json_object *schema_to_json(const struct tis_schema *s);
/* Inverse of schema_to_json; NULL if the JSON is not a schema. */
struct tis_schema *schema_from_json(struct json_object *o);

/* One row value: raw bytes (not NUL-terminated), or NULL. */
struct tis_value {
    const char *p;
    size_t len;
    bool null;
};

/* Converts a raw value to its JSON form according to vt. */
struct json_object *value_to_json(enum tis_vtype vt, const char *p, size_t len);

#endif
