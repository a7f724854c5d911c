/* spec — a collection spec: the request body of `create`, validated.
 *
 * Input is the seed's relaxed JSON (see rjson.h). Two column layouts are
 * accepted: the seed's `columns: [{name, token, search, store}]` and the
 * original system's `colMeta: {columns: [{name, parser, ...}], options:
 * {minGramSize, maxGramSize}}`. Every error names the offending field. */
#ifndef TISFS_SPEC_H
#define TISFS_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

enum tis_token {
    TOK_DEFAULT = 0, /* not given: `ik` for text columns, typed for the rest */
    TOK_STRING,
    TOK_IK,
    TOK_LIKE,
    TOK_TEXT_WS,
    TOK_PINYIN,
};

const char *token_name(enum tis_token t);

enum tis_plugin { PLUGIN_MYSQL, PLUGIN_TIKV };

struct tis_datasource {
    enum tis_plugin plugin;
    char *host;      /* MySQL */
    int port;        /* MySQL, default 3306 */
    char *user;      /* default "root" */
    char *password;  /* default "" */
    char *db;        /* dbName */
    char *pd_addrs;  /* TiKV: comma list of PD addresses */
    char *tidb_addr; /* TiKV: optional, skips discovery */
};

struct tis_column_spec {
    char *name;
    enum tis_token token;
    bool search; /* indexed; default true */
    bool store;  /* returned in documents; default true */
};

struct tis_incr_spec {
    bool present;
    char *plugin; /* "TiCDC-Kafka" */
    char *mq_address;
    char *topic;
    char *group_id;     /* default "tisfs-<indexName>" */
    char *offset_reset; /* earliest | latest | none; default earliest */
    char *protocol;     /* NULL = detect from the first message */
};

/* Columns a spec may list: fields have one-byte ids (256), and the primary
 * key's columns may come on top of the listed ones. */
#define SPEC_MAX_COLUMNS 240

struct tis_spec {
    char *index_name;
    char *table;
    struct tis_datasource ds;
    struct tis_column_spec *cols;
    size_t ncols;
    int min_gram, max_gram; /* 0 = the analyzer's default */
    struct tis_incr_spec incr;
    int refs; /* spec_ref / spec_free; a shared spec is never changed */
};

/* Parses and validates a relaxed-JSON body for collection `collection`
 * (indexName, when given, must equal it; when absent it is set to it).
 * Returns the spec, or NULL with "what and where" in err. */
struct tis_spec *spec_parse(const char *collection, const char *text, size_t len, char *err,
                            size_t errlen);

/* Same, from an already-parsed object. */
struct tis_spec *spec_from_json(const char *collection, struct json_object *obj, char *err,
                                size_t errlen);

/* Canonical strict JSON of the spec (seed layout). With masked, passwords
 * read "******". Caller frees. */
char *spec_to_json(const struct tis_spec *spec, bool masked);
/* The same as a json-c object (caller puts it). */
struct json_object *spec_to_object(const struct tis_spec *spec, bool masked);

/* Specs are handed around by reference: spec_ref takes one more (returns
 * spec), spec_free drops one and frees the spec with the last. A spec that
 * has been shared is read-only; to change one, change a spec_copy. */
struct tis_spec *spec_ref(struct tis_spec *spec);
void spec_free(struct tis_spec *spec);
/* A deep, unshared copy. */
struct tis_spec *spec_copy(const struct tis_spec *spec);

/* Parses a channel spec on its own (the `incr` file, the seed's
 * do_create_incr body): {indexName, incr: {...}} or the bare {...} block.
 * Returns 0, or -1 with err. */
int spec_parse_incr(const char *collection, const char *text, size_t len,
                    struct tis_incr_spec *out, char *err, size_t errlen);
/* A deep copy (offsetResetStrategy defaults to earliest); free with
 * spec_incr_free. */
void spec_incr_copy(struct tis_incr_spec *dst, const struct tis_incr_spec *src);
void spec_incr_free(struct tis_incr_spec *in);
/* Strict JSON of a channel spec (it holds no secret). Caller frees. */
char *spec_incr_to_json(const struct tis_incr_spec *in);

#endif
