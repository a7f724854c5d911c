/* rjson — the relaxed-JSON front end.
 *
 * Request bodies in the user's REST description (shared/seed/rest-api.md) are
 * not strict JSON: keys are unquoted, '#' starts a comment, a full-width comma
 * (U+FF0C) stands where a comma belongs, trailing commas appear, and one body
 * even leaves out a comma at the end of a line. rjson accepts all of that and
 * produces ordinary json-c objects, so everything after parsing is plain
 * json-c.
 *
 * Accepted beyond RFC 8259:
 *   - unquoted object keys: [A-Za-z_$][A-Za-z0-9_$.-]*
 *   - single-quoted strings ('...'), same escapes as double-quoted; the
 *     escape \' is accepted in both kinds of string
 *   - comments: '#' or '//' to end of line, and '/' '*' ... '*' '/' blocks
 *   - U+FF0C FULLWIDTH COMMA wherever ',' is allowed
 *   - a trailing comma before '}' or ']'
 *   - a line break in place of a missing comma between members/elements
 *     (two values on the same line with no comma are still an error)
 *
 * Everything else malformed is an error naming the line and column (both
 * 1-based, columns counted in characters, not bytes) and what was expected,
 * e.g. "line 3, column 12: expected ':' after key \"table\", found '='".
 * The found part is the character (or bare word) there, "line break", or
 * "end of input". Other errors read "line L, column C: duplicate key \"k\"",
 * "... invalid UTF-8 byte 0xFF", "... NUL byte in input", "... nesting deeper
 * than 64 levels", and so on. Duplicate keys, NaN/Infinity, leading zeros,
 * lone UTF-16 surrogates and raw control characters in strings are errors.
 *
 * Integers become int64 objects (uint64 above INT64_MAX, double beyond
 * that); other numbers become doubles that keep their source text.
 */
#ifndef TISFS_RJSON_H
#define TISFS_RJSON_H

#include <stddef.h>
#include <json-c/json.h>

/* Parses text[0..len) (UTF-8, need not be NUL-terminated). The whole input
 * must be exactly one value, surrounded only by white space and comments.
 * Returns a new json-c object owned by the caller (json_object_put), or NULL
 * with a message in err (always NUL-terminated when errlen > 0; err may be
 * NULL when errlen is 0). Nesting deeper than RJSON_MAX_DEPTH is an error,
 * never a stack overflow.
 *
 * A JSON null is NULL in json-c, so an input that is just `null` also returns
 * NULL, with err set to "": tell it from an error by err[0] == '\0'. */
#define RJSON_MAX_DEPTH 64
struct json_object *rjson_parse(const char *text, size_t len, char *err, size_t errlen);

/* Whether text[0..len) is a whole document to judge now rather than the
 * beginning of one still being written: its top-level braces (or brackets)
 * balance, ignoring those inside strings and comments, or it does not
 * start with one at all (then nothing more can make it an object). Only
 * white space and comments: false. Used to refuse a bad spec at write(2),
 * where a shell sees it, instead of at close(2). */
#include <stdbool.h>
bool rjson_complete(const char *text, size_t len);

#endif
