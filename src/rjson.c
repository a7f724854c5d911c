/* rjson — hand-written recursive-descent parser for relaxed JSON.
 *
 * The parser works on byte offsets into the caller's buffer and never relies
 * on a terminating NUL. Line and column are only computed when an error is
 * reported, by rescanning the input up to the error offset: errors are rare,
 * and this keeps the hot path free of bookkeeping.
 *
 * The whole input is checked for valid UTF-8 and NUL bytes before parsing, so
 * every later step may decode characters without re-checking them. */
#define _GNU_SOURCE
#include "tisfs/rjson.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tisfs/util.h"

#if defined(__GNUC__)
#define RJSON_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define RJSON_PRINTF(f, a)
#endif

/* Longest key or word quoted back in an error message, in bytes. */
#define SHOW_MAX 40

struct parser {
	const unsigned char *s;
	size_t len;
	size_t pos;
	char *err;
	size_t errlen;
	bool failed;
	bool secret; /* after a key such as "password": messages never quote the text */
};

/* Growable byte buffer for decoded strings and keys. */
struct buf {
	char *p;
	size_t len;
	size_t cap;
};

/* ---- UTF-8 ------------------------------------------------------------ */

/* Decodes one UTF-8 sequence at s[0..len). Returns its length and stores the
 * code point, or returns 0 for anything RFC 3629 forbids (overlong forms,
 * UTF-16 surrogates, values above U+10FFFF, truncated sequences). */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
	size_t n;
	uint32_t c = s[0];

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		c &= 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		c &= 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		c &= 0x07;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return n;
}

/* ---- error reporting -------------------------------------------------- */

/* 1-based line and column of byte offset off; columns count characters, so
 * only bytes that start a UTF-8 sequence advance the column. */
static void position(const struct parser *p, size_t off, size_t *line, size_t *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && i < p->len; i++) {
		if (p->s[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if ((p->s[i] & 0xC0) != 0x80) {
			(*col)++;
		}
	}
}

/* Records the first error only: later failures while unwinding would
 * otherwise overwrite the precise message with a vaguer one. */
RJSON_PRINTF(3, 4)
static void fail(struct parser *p, size_t off, const char *fmt, ...)
{
	size_t line, col;
	int n;
	va_list ap;

	if (p->failed)
		return;
	p->failed = true;
	if (!p->err || p->errlen == 0)
		return;
	position(p, off, &line, &col);
	n = snprintf(p->err, p->errlen, "line %zu, column %zu: ", line, col);
	if (n < 0 || (size_t)n >= p->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static bool is_word_start(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == '$';
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_word_char(unsigned char c)
{
	return is_word_start(c) || is_digit(c);
}

/* Describes what sits at off for the "found ..." part of a message. With
 * word set, a whole bare word is shown rather than its first letter, since
 * "found 'TiKV'" tells the reader far more than "found 'T'"; inside strings
 * (escapes) only the single character is meant. */
static void describe(const struct parser *p, size_t off, bool word, char *out, size_t outlen)
{
	uint32_t cp = 0;
	unsigned char c;
	size_t n;

	if (off >= p->len) {
		snprintf(out, outlen, "end of input");
		return;
	}
	c = p->s[off];
	if (p->secret && c > 0x20 && c != 0x7F) {
		snprintf(out, outlen, "text that is not shown (it follows a secret field)");
	} else if (c == '\n' || c == '\r') {
		snprintf(out, outlen, "line break");
	} else if (c == '\t') {
		snprintf(out, outlen, "tab");
	} else if (c < 0x20 || c == 0x7F) {
		snprintf(out, outlen, "control character U+%04X", (unsigned)c);
	} else if (c == '\'') {
		snprintf(out, outlen, "\"'\"");
	} else if (word && is_word_start(c)) {
		for (n = 1; off + n < p->len && n < SHOW_MAX && is_word_char(p->s[off + n]); n++)
			;
		snprintf(out, outlen, "'%.*s'", (int)n, (const char *)p->s + off);
	} else if (c < 0x80) {
		snprintf(out, outlen, "'%c'", c);
	} else {
		n = utf8_decode(p->s + off, p->len - off, &cp);
		snprintf(out, outlen, "'%.*s' (U+%04X)", (int)n, (const char *)p->s + off,
			 (unsigned)cp);
	}
}

/* Reports "expected WHAT, found X" for whatever sits at off. */
static void fail_found(struct parser *p, size_t off, bool word, const char *what)
{
	char found[SHOW_MAX + 32];

	describe(p, off, word, found, sizeof(found));
	fail(p, off, "expected %s, found %s", what, found);
}

static void fail_expected(struct parser *p, size_t off, const char *what)
{
	fail_found(p, off, true, what);
}

/* Same, for positions inside a string, where letters are not words. */
static void fail_expected_char(struct parser *p, size_t off, const char *what)
{
	fail_found(p, off, false, what);
}

/* Copies a decoded key into out for quoting in messages: cut short at a
 * character boundary, with control characters and '"' made harmless so the
 * message stays on one line and unambiguous. */
static const char *show_key(const char *key, char *out, size_t outlen)
{
	size_t o = 0;
	const unsigned char *k = (const unsigned char *)key;

	/* Worst case: a 4-byte character starting at SHOW_MAX - 1, then "...". */
	for (size_t i = 0; k[i] && o + 4 < outlen; i++) {
		if (o >= SHOW_MAX && (k[i] & 0xC0) != 0x80) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		out[o++] = (k[i] < 0x20 || k[i] == '"') ? '?' : (char)k[i];
	}
	out[o] = '\0';
	return out;
}

/* ---- input checks ----------------------------------------------------- */

static bool validate_input(struct parser *p)
{
	size_t i = 0;
	uint32_t cp = 0;

	while (i < p->len) {
		size_t n;

		if (p->s[i] == 0) {
			fail(p, i, "NUL byte in input");
			return false;
		}
		n = utf8_decode(p->s + i, p->len - i, &cp);
		if (n == 0) {
			fail(p, i, "invalid UTF-8 byte 0x%02X", (unsigned)p->s[i]);
			return false;
		}
		i += n;
	}
	return true;
}

/* ---- buffers ---------------------------------------------------------- */

static bool buf_add(struct parser *p, struct buf *b, const void *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 32;
		char *np;

		while (cap < b->len + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np) {
			fail(p, p->pos, "out of memory");
			return false;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return true;
}

/* ---- white space and comments ---------------------------------------- */

static bool at(const struct parser *p, size_t off, char c)
{
	return off < p->len && p->s[off] == (unsigned char)c;
}

/* U+FF0C FULLWIDTH COMMA is EF BC 8C in UTF-8. */
static bool at_fullwidth_comma(const struct parser *p)
{
	return p->pos + 3 <= p->len && memcmp(p->s + p->pos, "\xEF\xBC\x8C", 3) == 0;
}

/* Skips a block comment whose '/' is at p->pos. */
static void skip_block_comment(struct parser *p)
{
	size_t start = p->pos;
	char where[128];
	size_t line, col;

	for (p->pos += 2; p->pos + 1 < p->len; p->pos++) {
		if (p->s[p->pos] == '*' && p->s[p->pos + 1] == '/') {
			p->pos += 2;
			return;
		}
	}
	position(p, start, &line, &col);
	snprintf(where, sizeof(where), "'*/' to close the comment opened at line %zu, column %zu",
		 line, col);
	fail_expected(p, p->len, where);
}

/* Skips white space and comments. Returns whether a line break was crossed,
 * because a line break may stand in for a missing comma. Check p->failed
 * afterwards: an unterminated block comment is an error. */
static bool skip_space(struct parser *p)
{
	bool newline = false;

	while (p->pos < p->len && !p->failed) {
		unsigned char c = p->s[p->pos];

		if (c == '\n') {
			newline = true;
			p->pos++;
		} else if (c == ' ' || c == '\t' || c == '\r') {
			p->pos++;
		} else if (c == '#' || (c == '/' && at(p, p->pos + 1, '/'))) {
			while (p->pos < p->len && p->s[p->pos] != '\n')
				p->pos++;
		} else if (c == '/' && at(p, p->pos + 1, '*')) {
			size_t from = p->pos;

			skip_block_comment(p);
			newline = newline || memchr(p->s + from, '\n', p->pos - from) != NULL;
		} else {
			break;
		}
	}
	return newline;
}

/* ---- strings ---------------------------------------------------------- */

static int hex_value(unsigned char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads the four hex digits after "\u" at p->pos. */
static bool parse_hex4(struct parser *p, uint32_t *out)
{
	*out = 0;
	for (int i = 0; i < 4; i++) {
		int v = p->pos < p->len ? hex_value(p->s[p->pos]) : -1;

		if (v < 0) {
			fail_expected_char(p, p->pos, "4 hex digits after \\u");
			return false;
		}
		*out = (*out << 4) | (uint32_t)v;
		p->pos++;
	}
	return true;
}

/* Reads a \uXXXX escape (p->pos just past the 'u'), joining a UTF-16
 * surrogate pair into one code point. esc is the offset of the backslash. */
static bool parse_unicode_escape(struct parser *p, size_t esc, uint32_t *cp)
{
	uint32_t lo;

	if (!parse_hex4(p, cp))
		return false;
	if (*cp >= 0xDC00 && *cp <= 0xDFFF) {
		fail(p, esc, "lone surrogate \\u%04X: a low surrogate must follow a high surrogate",
		     (unsigned)*cp);
		return false;
	}
	if (*cp < 0xD800 || *cp > 0xDBFF)
		return true;
	if (!at(p, p->pos, '\\') || !at(p, p->pos + 1, 'u')) {
		fail(p, esc, "lone surrogate \\u%04X: expected a low surrogate \\uDC00-\\uDFFF after it",
		     (unsigned)*cp);
		return false;
	}
	p->pos += 2;
	if (!parse_hex4(p, &lo))
		return false;
	if (lo < 0xDC00 || lo > 0xDFFF) {
		fail(p, esc, "lone surrogate \\u%04X: expected a low surrogate \\uDC00-\\uDFFF after it",
		     (unsigned)*cp);
		return false;
	}
	*cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
	return true;
}

/* Decodes one escape; p->pos is at the backslash. \' is accepted in both
 * quote styles, so single-quoted strings can contain their own quote. */
static bool parse_escape(struct parser *p, struct buf *b)
{
	static const char from[] = "\"\\/'bfnrt";
	static const char to[] = "\"\\/'\b\f\n\r\t";
	size_t esc = p->pos++;
	const char *hit;
	char utf8[4];
	uint32_t cp = 0;

	if (p->pos >= p->len || p->s[p->pos] == 0) {
		fail_expected_char(p, p->pos, "an escape character after '\\'");
		return false;
	}
	if (p->s[p->pos] == 'u') {
		p->pos++;
		if (!parse_unicode_escape(p, esc, &cp))
			return false;
		return buf_add(p, b, utf8, utf8_encode(cp, utf8));
	}
	hit = strchr(from, p->s[p->pos]);
	if (!hit) {
		fail_expected_char(p, p->pos,
				   "an escape character (one of \" \\ / ' b f n r t u) after '\\'");
		return false;
	}
	p->pos++;
	return buf_add(p, b, &to[hit - from], 1);
}

/* Reports a string that ran into a line break or the end of the input,
 * naming where it started since that is usually where the quote is missing. */
static void fail_unterminated(struct parser *p, size_t start)
{
	char what[128];
	size_t line, col;

	position(p, start, &line, &col);
	snprintf(what, sizeof(what), "the closing quote of the string started at line %zu, column %zu",
		 line, col);
	fail_expected(p, p->pos, what);
}

/* Parses a '...' or "..." string at p->pos into b (NUL-terminated; may also
 * contain NULs from \u0000, so b->len is the real length). */
static bool parse_string(struct parser *p, struct buf *b)
{
	size_t start = p->pos;
	unsigned char quote = p->s[p->pos++];

	for (;;) {
		size_t run = p->pos;
		unsigned char c;

		/* Copy plain runs in one go; most strings have no escapes. */
		while (p->pos < p->len && p->s[p->pos] != quote && p->s[p->pos] != '\\' &&
		       p->s[p->pos] >= 0x20)
			p->pos++;
		if (!buf_add(p, b, p->s + run, p->pos - run))
			return false;
		if (p->pos >= p->len || p->s[p->pos] == '\n' || p->s[p->pos] == '\r') {
			fail_unterminated(p, start);
			return false;
		}
		c = p->s[p->pos];
		if (c == quote) {
			p->pos++;
			return true;
		}
		if (c < 0x20) {
			fail(p, p->pos, "control character U+%04X in string must be escaped (\\u%04X)",
			     (unsigned)c, (unsigned)c);
			return false;
		}
		if (!parse_escape(p, b))
			return false;
	}
}

/* Builds a json-c string; json-c takes an int length. */
static bool make_string(struct parser *p, size_t start, struct buf *b, struct json_object **out)
{
	if (b->len > INT_MAX) {
		fail(p, start, "string too long");
		return false;
	}
	*out = json_object_new_string_len(b->p ? b->p : "", (int)b->len);
	if (!*out) {
		fail(p, start, "out of memory");
		return false;
	}
	return true;
}

/* ---- numbers ---------------------------------------------------------- */

static void skip_digits(struct parser *p)
{
	while (p->pos < p->len && is_digit(p->s[p->pos]))
		p->pos++;
}

/* Checks the JSON number grammar from p->pos and leaves p->pos past it.
 * Sets *integer when there is neither fraction nor exponent. */
static bool scan_number(struct parser *p, bool *integer)
{
	if (at(p, p->pos, '-'))
		p->pos++;
	if (p->pos >= p->len || !is_digit(p->s[p->pos])) {
		fail_expected(p, p->pos, "a digit after '-'");
		return false;
	}
	if (p->s[p->pos++] == '0' && p->pos < p->len && is_digit(p->s[p->pos])) {
		fail(p, p->pos - 1, "numbers must not have leading zeros");
		return false;
	}
	skip_digits(p);
	*integer = true;
	if (at(p, p->pos, '.')) {
		*integer = false;
		if (++p->pos >= p->len || !is_digit(p->s[p->pos])) {
			fail_expected(p, p->pos, "a digit after '.' in a number");
			return false;
		}
		skip_digits(p);
	}
	if (at(p, p->pos, 'e') || at(p, p->pos, 'E')) {
		*integer = false;
		p->pos++;
		if (at(p, p->pos, '+') || at(p, p->pos, '-'))
			p->pos++;
		if (p->pos >= p->len || !is_digit(p->s[p->pos])) {
			fail_expected(p, p->pos, "a digit in the exponent of a number");
			return false;
		}
		skip_digits(p);
	}
	return true;
}

/* Converts a validated integer; false when it does not fit in 64 bits and
 * must be kept as a double instead. */
static bool make_integer(const char *t, size_t n, struct json_object **out)
{
	bool neg = t[0] == '-';
	uint64_t v = 0;

	for (size_t i = neg ? 1 : 0; i < n; i++) {
		uint64_t d = (uint64_t)(t[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (neg && v > (uint64_t)INT64_MAX + 1)
		return false;
	if (neg)
		*out = json_object_new_int64(v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v);
	else if (v <= (uint64_t)INT64_MAX)
		*out = json_object_new_int64((int64_t)v);
	else
		*out = json_object_new_uint64(v);
	return true;
}

/* Non-integers keep their source text (json_object_new_double_s) so that
 * re-serialising does not change "0.10" into "0.1". strtod needs a
 * NUL-terminated copy because the input is not terminated. */
static bool make_double(struct parser *p, size_t start, const char *t, struct json_object **out)
{
	double d = strtod(t, NULL);

	if (isinf(d)) {
		fail(p, start, "number %.*s is out of range", SHOW_MAX, t);
		return false;
	}
	*out = json_object_new_double_s(d, t);
	return true;
}

static bool parse_number(struct parser *p, struct json_object **out)
{
	size_t start = p->pos, n;
	bool integer, ok = true;
	char *text;

	if (!scan_number(p, &integer))
		return false;
	n = p->pos - start;
	text = malloc(n + 1);
	if (!text) {
		fail(p, start, "out of memory");
		return false;
	}
	memcpy(text, p->s + start, n);
	text[n] = '\0';
	*out = NULL;
	if (!integer || !make_integer(text, n, out))
		ok = make_double(p, start, text, out);
	free(text);
	if (ok && !*out) {
		fail(p, start, "out of memory");
		return false;
	}
	return ok;
}

/* ---- values ----------------------------------------------------------- */

static bool parse_value(struct parser *p, int depth, struct json_object **out);

/* Parses true/false/null; any other bare word is an error, most likely a
 * string someone forgot to quote. */
static bool parse_word(struct parser *p, struct json_object **out)
{
	size_t start = p->pos, n;
	const char *w = (const char *)p->s + start;

	while (p->pos < p->len && is_word_char(p->s[p->pos]))
		p->pos++;
	n = p->pos - start;
	if (n == 4 && memcmp(w, "null", 4) == 0) {
		*out = NULL;
		return true;
	}
	if ((n == 4 && memcmp(w, "true", 4) == 0) || (n == 5 && memcmp(w, "false", 5) == 0)) {
		*out = json_object_new_boolean(n == 4);
		if (!*out)
			fail(p, start, "out of memory");
		return *out != NULL;
	}
	fail_expected(p, start, "a value (strings need quotes)");
	return false;
}

/* After an element or member: consumes the separator. Returns 1 when another
 * item follows, 0 when close was consumed, -1 on error. A comma (ASCII or
 * U+FF0C) may be followed directly by close (trailing comma); with no comma,
 * a line break in between still separates two items. after is the phrase
 * used in the error message. */
static int next_item(struct parser *p, char close, const char *after)
{
	bool newline = skip_space(p);
	char what[128];

	if (p->failed)
		return -1;
	if (at(p, p->pos, close)) {
		p->pos++;
		return 0;
	}
	if (at(p, p->pos, ',') || at_fullwidth_comma(p)) {
		p->pos += p->s[p->pos] == ',' ? 1 : 3;
		skip_space(p);
		if (p->failed)
			return -1;
		if (at(p, p->pos, close)) {
			p->pos++;
			return 0;
		}
		return 1;
	}
	if (newline && p->pos < p->len)
		return 1;
	snprintf(what, sizeof(what), "',' or '%c' %s", close, after);
	fail_expected(p, p->pos, what);
	return -1;
}

/* Fails when opening another container at p->pos would exceed the limit. */
static bool check_depth(struct parser *p, int depth)
{
	if (depth >= RJSON_MAX_DEPTH) {
		fail(p, p->pos, "nesting deeper than %d levels", RJSON_MAX_DEPTH);
		return false;
	}
	return true;
}

static bool parse_array(struct parser *p, int depth, struct json_object **out)
{
	struct json_object *arr, *v;
	int r = 1;

	if (!check_depth(p, depth))
		return false;
	p->pos++;
	arr = json_object_new_array();
	if (!arr) {
		fail(p, p->pos - 1, "out of memory");
		return false;
	}
	skip_space(p);
	if (!p->failed && at(p, p->pos, ']')) {
		p->pos++;
		r = 0;
	}
	while (r == 1 && !p->failed) {
		size_t start = p->pos;

		if (!parse_value(p, depth + 1, &v))
			break;
		if (json_object_array_add(arr, v) != 0) {
			json_object_put(v);
			fail(p, start, "out of memory");
			break;
		}
		r = next_item(p, ']', "after an array element");
	}
	if (p->failed) {
		json_object_put(arr);
		return false;
	}
	*out = arr;
	return true;
}

/* Reads an unquoted key: [A-Za-z_$][A-Za-z0-9_$.-]* */
static bool parse_bare_key(struct parser *p, struct buf *b)
{
	size_t start = p->pos;

	while (p->pos < p->len &&
	       (is_word_char(p->s[p->pos]) || p->s[p->pos] == '.' || p->s[p->pos] == '-'))
		p->pos++;
	return buf_add(p, b, p->s + start, p->pos - start);
}

/* Reads a key (quoted or bare) into b (always allocated and NUL-terminated
 * on success, as buf_add reserves the terminator) and rejects ones json-c cannot hold or
 * that were already used in obj. */
static bool parse_key(struct parser *p, struct json_object *obj, struct buf *b)
{
	size_t start = p->pos;
	char shown[SHOW_MAX + 8];
	bool ok;

	if (at(p, start, '"') || at(p, start, '\''))
		ok = parse_string(p, b);
	else if (start < p->len && is_word_start(p->s[start]))
		ok = parse_bare_key(p, b);
	else {
		fail_expected(p, start, "a key or '}'");
		return false;
	}
	if (!ok)
		return false;
	/* json-c keys are C strings: an embedded NUL would silently cut the key. */
	if (memchr(b->p, '\0', b->len)) {
		fail(p, start, "key must not contain U+0000");
		return false;
	}
	if (json_object_object_get_ex(obj, b->p, NULL)) {
		fail(p, start, "duplicate key \"%s\"", show_key(b->p, shown, sizeof(shown)));
		return false;
	}
	return true;
}

/* Parses "key: value" and adds it to obj; key is left in b for messages. */
/* Keys whose values must never be quoted back in an error message. */
static bool is_secret_key(const char *k)
{
	return strcasestr(k, "password") || strcasestr(k, "passwd") || strcasestr(k, "secret") ||
	       strcasestr(k, "token");
}

static bool parse_member(struct parser *p, int depth, struct json_object *obj, struct buf *b)
{
	char shown[SHOW_MAX + 8], what[SHOW_MAX + 32];
	struct json_object *v;
	size_t start;

	p->secret = false;
	if (!parse_key(p, obj, b))
		return false;
	p->secret = is_secret_key(b->p);
	skip_space(p);
	if (p->failed)
		return false;
	if (!at(p, p->pos, ':')) {
		snprintf(what, sizeof(what), "':' after key \"%s\"",
			 show_key(b->p, shown, sizeof(shown)));
		fail_expected(p, p->pos, what);
		return false;
	}
	p->pos++;
	skip_space(p);
	start = p->pos;
	if (p->failed || !parse_value(p, depth + 1, &v))
		return false;
	if (json_object_object_add(obj, b->p, v) != 0) {
		json_object_put(v);
		fail(p, start, "out of memory");
		return false;
	}
	return true;
}

static bool parse_object(struct parser *p, int depth, struct json_object **out)
{
	char shown[SHOW_MAX + 8], after[SHOW_MAX + 32];
	struct buf key = {0};
	struct json_object *obj;
	int r = 1;

	if (!check_depth(p, depth))
		return false;
	p->pos++;
	obj = json_object_new_object();
	if (!obj) {
		fail(p, p->pos - 1, "out of memory");
		return false;
	}
	skip_space(p);
	if (!p->failed && at(p, p->pos, '}')) {
		p->pos++;
		r = 0;
	}
	while (r == 1 && !p->failed) {
		key.len = 0;
		if (!parse_member(p, depth, obj, &key))
			break;
		snprintf(after, sizeof(after), "after member \"%s\"",
			 show_key(key.p, shown, sizeof(shown)));
		r = next_item(p, '}', after);
	}
	free(key.p);
	if (p->failed) {
		json_object_put(obj);
		return false;
	}
	*out = obj;
	return true;
}

/* Parses the value at p->pos (white space already skipped). depth counts
 * the containers around it. *out is NULL for a JSON null. */
static bool parse_value(struct parser *p, int depth, struct json_object **out)
{
	unsigned char c;

	*out = NULL;
	if (p->pos >= p->len) {
		fail_expected(p, p->pos, "a value");
		return false;
	}
	c = p->s[p->pos];
	if (c == '{')
		return parse_object(p, depth, out);
	if (c == '[')
		return parse_array(p, depth, out);
	if (c == '-' || is_digit(c))
		return parse_number(p, out);
	if (is_word_start(c))
		return parse_word(p, out);
	if (c == '"' || c == '\'') {
		struct buf b = {0};
		size_t start = p->pos;
		bool ok = parse_string(p, &b) && make_string(p, start, &b, out);

		free(b.p);
		return ok;
	}
	fail_expected(p, p->pos, "a value");
	return false;
}

struct json_object *rjson_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct parser p = {(const unsigned char *)text, len, 0, err, errlen, false, false};
	struct json_object *v = NULL;

	if (err && errlen > 0)
		err[0] = '\0';
	if (!text && len > 0) {
		fail(&p, 0, "no input buffer");
		return NULL;
	}
	if (!validate_input(&p))
		return NULL;
	skip_space(&p);
	if (p.failed || !parse_value(&p, 0, &v))
		return NULL;
	skip_space(&p);
	if (!p.failed && p.pos < p.len)
		fail_expected(&p, p.pos, "end of input after the value");
	if (p.failed) {
		json_object_put(v);
		return NULL;
	}
	return v;
}

/* Skips a string or comment starting at i (the caller saw its opener);
 * returns the index after it, or len when it runs to the end. */
static size_t skip_lexeme(const char *t, size_t len, size_t i)
{
	char q = t[i];

	if (q == '"' || q == '\'') {
		for (i++; i < len && t[i] != q; i++)
			if (t[i] == '\\')
				i++;
		return i < len ? i + 1 : len;
	}
	if (q == '#' || (q == '/' && i + 1 < len && t[i + 1] == '/')) {
		while (i < len && t[i] != '\n')
			i++;
		return i;
	}
	/* a block comment */
	for (i += 2; i + 1 < len && !(t[i] == '*' && t[i + 1] == '/'); i++)
		;
	return i + 1 < len ? i + 2 : len;
}

bool rjson_complete(const char *text, size_t len)
{
	int depth = 0;
	bool seen = false;

	for (size_t i = 0; i < len;) {
		char c = text[i];
		if (c == '"' || c == '\'' || c == '#' ||
		    (c == '/' && i + 1 < len && (text[i + 1] == '/' || text[i + 1] == '*'))) {
			if (depth == 0 && (c == '"' || c == '\''))
				return true; /* a top-level scalar: not a document to wait for */
			i = skip_lexeme(text, len, i);
			continue;
		}
		if (c == '{' || c == '[') {
			depth++;
			seen = true;
		} else if (c == '}' || c == ']') {
			if (--depth <= 0)
				return true;
		} else if (depth == 0 && c != ' ' && c != '\t' && c != '\n' && c != '\r')
			return true; /* anything else at the top: judged as it is */
		i++;
	}
	return seen && depth <= 0;
}
