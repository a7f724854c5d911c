/* cdc_internal — what the protocol decoders share (implemented in cdc.c):
 * a decoding context that carries the error buffer, the event list's arena,
 * JSON parsing with located errors and field access, and the value codecs
 * several protocols need (base64, Go-quoted strings, ISO-8859-1). */
#ifndef TISFS_CDC_INTERNAL_H
#define TISFS_CDC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "tisfs/cdc.h"
#include "tisfs/jdoc.h"

/* One cdc_decode call: where events go and where an error is written. */
struct cdc_ctx {
    struct cdc_events *out;
    char *err;
    size_t errlen;
    const char *proto; /* prefix of every error message */
    struct jdoc *doc;  /* without an event list (detection): its own */
};

/* Writes "<proto>: <message>" to the error buffer; returns -1. */
int cdc_fail(struct cdc_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- arena and events ---- */

/* n bytes, 8-aligned, valid (never moved) until the next reset. */
void *cdc_alloc(struct cdc_events *e, size_t n);
/* A NUL-terminated copy of p[0..n) in the arena. */
const char *cdc_copy(struct cdc_events *e, const void *p, size_t n);
/* Appends a zeroed event of kind k (db, table and sql ""). The pointer is
 * valid until the next cdc_add_event. */
struct cdc_event *cdc_add_event(struct cdc_events *e, enum cdc_kind k);
/* Appends one named column to a row whose cols array was sized by
 * cdc_row_init; returns its value to fill. */
void cdc_row_init(struct cdc_events *e, struct cdc_row *r, size_t cap);
struct tis_value *cdc_row_add(struct cdc_events *e, struct cdc_row *r, const char *name);
/* Sets a value to a copy of p[0..n) or to NULL. */
void cdc_value_set(struct cdc_events *e, struct tis_value *v, const void *p, size_t n);
void cdc_value_null(struct tis_value *v);

/* ---- JSON ---- */

/* Deep enough for Debezium's schema-change messages, shallow enough that a
 * hostile message cannot recurse the parser into the ground. */
#define CDC_JSON_DEPTH 64

/* The documents an event list's docs points at (doc[0]: they are one
 * block): a message's value (slot 0) and open-protocol's keys (1), and what
 * the Debezium decoder keeps from message to message: the last schema's
 * text and its parse (doc[2], root), and the text it parses instead of a
 * message that repeats that schema (rest). */
struct cdc_docs {
    struct jdoc doc[3];
    struct tbuf schema, rest;
    const struct jval *root;
    /* What Debezium's decoder read of each field schema in root, by the
     * field's index in root's document (cdc_debezium.c), until root is
     * parsed again. */
    struct cdc_field_info *fields;
    size_t nfields;
};

/* The list's documents (allocated at first use), NULL without a list. */
struct cdc_docs *cdc_docs_of(struct cdc_ctx *c);

/* Parses exactly p[0..n) as one JSON value into *o (NULL for JSON null),
 * in document slot (0 or 1: open-protocol holds a key's and a value's at
 * once), valid until the slot's next parse. what names the part for the
 * error message. Returns 0 or -1. */
int cdc_json_parse(struct cdc_ctx *c, int slot, const char *what, const void *p, size_t n,
                   const struct jval **o);
/* A one-message JSON protocol (canal-json, simple): parses the value and
 * hands it to fn, which sees the message's object (or NULL for null). */
int cdc_json_message(struct cdc_ctx *c, const void *val, size_t vlen,
                     int (*fn)(struct cdc_ctx *c, const struct jval *m));
/* A json-c copy of v, a value of the message parsed in slot 0, from its
 * text (NULL if json-c refuses it): for what must outlive the message or
 * be written as json-c writes it. Rare paths only. */
struct json_object *cdc_json_c(const struct cdc_events *e, const struct jval *v);
/* o's member key, NULL when o is not an object, the key is absent or null. */
const struct jval *cdc_get(const struct jval *o, const char *key);
/* Member key as a string (NULL if absent or not a string). */
const char *cdc_get_str(const struct jval *o, const char *key);
/* Member key as an unsigned integer (a JSON number or a string of digits);
 * false if absent or not one. */
bool cdc_get_u64(const struct jval *o, const char *key, uint64_t *v);
bool cdc_json_u64(const struct jval *v, uint64_t *out);
bool cdc_json_i64(const struct jval *v, int64_t *out);
/* Member key is JSON true. */
bool cdc_get_bool(const struct jval *o, const char *key);
/* An insert or update whose row was too large for the topic, sent with its
 * key columns alone (TiCDC's large-message-handle-option handle-key-only):
 * refused, so that the event is reported and skipped, not applied as a row
 * of empty columns. */
#define CDC_HANDLE_KEY_ONLY                                                                    \
    "handle-key-only event (the row was too large for the topic; only its key was sent): "  \
    "not supported"
/* A scalar as value text: strings as they are, numbers with their digits as
 * written, booleans "1"/"0", null as NULL. Objects and arrays fail. */
int cdc_scalar(struct cdc_ctx *c, const struct jval *v, struct tis_value *out,
               const char *where);

/* ---- value codecs: append the decoded bytes to b, false on bad input ---- */

bool cdc_base64(struct tbuf *b, const char *s, size_t n);
bool cdc_go_unquote(struct tbuf *b, const char *s, size_t n);
bool cdc_latin1(struct tbuf *b, const char *s, size_t n);
/* Decodes s with one of the codecs above into v (arena copy). */
bool cdc_decode_into(struct cdc_events *e, struct tis_value *v,
                     bool (*codec)(struct tbuf *, const char *, size_t), const char *s,
                     size_t n);

/* ---- the protocols ---- */

int cdc_open_decode(struct cdc_ctx *c, const unsigned char *key, size_t klen,
                    const unsigned char *val, size_t vlen);
int cdc_canal_decode(struct cdc_ctx *c, const unsigned char *val, size_t vlen);
int cdc_debezium_decode(struct cdc_ctx *c, const unsigned char *val, size_t vlen);
int cdc_simple_decode(struct cdc_ctx *c, const unsigned char *val, size_t vlen);

#endif
