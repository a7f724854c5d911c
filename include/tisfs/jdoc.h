/* jdoc — strict JSON parsed into one flat, read-only array of values.
 *
 * For the change stream's hot path: a Kafka message is parsed, read once
 * and dropped. json-c builds a tree of allocated objects with a hash table
 * each, which cost about 17 µs a canal-json message (half of the decoding
 * thread); here a parse allocates nothing once the document's buffers have
 * grown to the messages' size, and a message is parsed in about a
 * microsecond a kilobyte. The document is reused from message to message.
 *
 * The grammar is RFC 8259's, strictly (no comments, single quotes, NaN or
 * trailing commas): an error names the byte where the text stops being
 * JSON. Strings are unescaped (\uXXXX and surrogate pairs to UTF-8) and
 * NUL-terminated; their bytes are otherwise passed through as they are,
 * as json-c did. Numbers keep the text they were written with ("-0" reads
 * "0", as json-c printed it), so a BIGINT UNSIGNED never passes a double.
 *
 * Values are laid out depth first: a container's members follow it, and
 * each value knows how many slots its subtree takes (span), so the next
 * sibling is v + v->span and a whole document is walked without pointers.
 * An object member carries its name in key. Of duplicate names jv_get
 * finds the last, as json-c kept it. */
#ifndef TISFS_JDOC_H
#define TISFS_JDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jv_type { JV_NULL, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ };

struct jval {
    uint8_t type;   /* enum jv_type */
    bool b;         /* JV_BOOL */
    bool integer;   /* JV_NUM: no fraction, no exponent */
    uint32_t len;   /* JV_STR, JV_NUM: bytes of s; JV_ARR, JV_OBJ: members */
    uint32_t span;  /* slots of this value's subtree, itself included */
    uint32_t start; /* where the value's text begins and ends in the input */
    uint32_t end;
    const char *s;   /* JV_STR, JV_NUM: the text, NUL-terminated */
    const char *key; /* an object's member: its name, NUL-terminated */
    uint32_t keylen;
};

struct jdoc {
    struct jval *v;
    size_t n, cap;
    char *text; /* unescaped strings and numbers, each NUL-terminated */
    size_t tlen, tcap;
    const char *src; /* the last parse's input (start and end index it) */
    /* The last parse's error: what, at which byte of the input. */
    char err[96];
    size_t err_at;
};

/* Parses exactly p[0..n) (blanks around the value allowed) as one JSON
 * value, nested at most max_depth deep. Returns the root, or NULL with
 * d->err and d->err_at set. Values stay valid until the next parse. */
const struct jval *jdoc_parse(struct jdoc *d, const char *p, size_t n, int max_depth);
void jdoc_free(struct jdoc *d);

static inline bool jv_is(const struct jval *v, enum jv_type t)
{
    return v && v->type == t;
}

/* Member key of o (the last of that name); NULL if o is not an object or
 * has none. */
const struct jval *jv_get(const struct jval *o, const char *key);
/* jv_get for a walk over members that usually come in o's own order (a
 * row's columns and their types): *hint, o's member after the last one
 * found, is tried first. *hint starts NULL. */
const struct jval *jv_get_hinted(const struct jval *o, const char *key, const struct jval **hint);
/* Element i of an array (a walk: iterate with jv_foreach when going
 * through all); NULL if out of range or a is not an array. */
const struct jval *jv_at(const struct jval *a, size_t i);

/* Every member of an object, or element of an array, in order. */
#define jv_foreach(parent, m)                                                                   \
    for (const struct jval *m = (parent) && (parent)->len ? (parent) + 1 : NULL,               \
                           *m##_stop_ = (parent) ? (parent) + (parent)->span : NULL;           \
         m && m < m##_stop_; m += m->span)

const char *jv_type_name(enum jv_type t);

#endif
