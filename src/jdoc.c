/* jdoc — strict JSON into a flat array of values (see jdoc.h).
 *
 * A recursive descent over the bytes. Values are appended by index while
 * parsing (the array may move as it grows); the text buffer is sized for
 * the worst case before the parse starts (unescaping only shrinks a
 * string, and each string or number adds one NUL), so the pointers into
 * it are set as we go and stay put. */
#include "tisfs/jdoc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tisfs/util.h"

struct parser {
    struct jdoc *d;
    const char *s, *p, *e;
    int depth, max_depth;
};

static bool fail(struct parser *ps, const char *what)
{
    snprintf(ps->d->err, sizeof ps->d->err, "%s", what);
    ps->d->err_at = (size_t)(ps->p - ps->s);
    return false;
}

static void blanks(struct parser *ps)
{
    while (ps->p < ps->e && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
        ps->p++;
}

static size_t new_value(struct jdoc *d, enum jv_type t)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 256;
        d->v = xrealloc(d->v, d->cap * sizeof *d->v);
    }
    memset(&d->v[d->n], 0, sizeof d->v[d->n]);
    d->v[d->n].type = (uint8_t)t;
    return d->n++;
}

static int hex4(const char *p)
{
    int x = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int h = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (h < 0)
            return -1;
        x = x * 16 + h;
    }
    return x;
}

static char *put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80)
        *o++ = (char)cp;
    else if (cp < 0x800) {
        *o++ = (char)(0xC0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* \uXXXX at p (after the backslash's u), a surrogate pair taken whole; a
 * lone surrogate becomes U+FFFD, as json-c made it. */
static bool unicode_escape(struct parser *ps, char **o)
{
    if (ps->e - ps->p < 4)
        return fail(ps, "truncated \\u escape");
    int cp = hex4(ps->p);
    if (cp < 0)
        return fail(ps, "invalid \\u escape");
    ps->p += 4;
    if (cp >= 0xD800 && cp < 0xDC00 && ps->e - ps->p >= 6 && ps->p[0] == '\\' &&
        ps->p[1] == 'u') {
        int lo = hex4(ps->p + 2);
        if (lo >= 0xDC00 && lo < 0xE000) {
            ps->p += 6;
            *o = put_utf8(*o, 0x10000 + (((uint32_t)cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00));
            return true;
        }
    }
    *o = put_utf8(*o, cp >= 0xD800 && cp < 0xE000 ? 0xFFFD : (uint32_t)cp);
    return true;
}

/* Whether any of the 8 bytes of x is '"', '\\' or below 0x20 (a byte
 * where a string's plain run ends): the zero-byte test of "Bit Twiddling
 * Hacks" on x ^ '"' and x ^ '\\', and its less-than variant on x. */
static inline bool run_ends_in(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    return (((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x)) & high;
}

/* The string at ps->p (its opening quote) into the text buffer. A plain
 * run is scanned 8 bytes at a time: byte by byte, the scan was the
 * parser's largest part (a row's text is most of a message). */
static bool string(struct parser *ps, const char **out, uint32_t *len)
{
    struct jdoc *d = ps->d;
    char *o = d->text + d->tlen, *start = o;
    ps->p++;
    for (;;) {
        const char *run = ps->p;
        for (uint64_t x; ps->e - ps->p >= 8; ps->p += 8) {
            memcpy(&x, ps->p, 8);
            if (run_ends_in(x))
                break;
        }
        while (ps->p < ps->e && *ps->p != '"' && *ps->p != '\\' && (unsigned char)*ps->p >= 0x20)
            ps->p++;
        memcpy(o, run, (size_t)(ps->p - run));
        o += ps->p - run;
        if (ps->p == ps->e)
            return fail(ps, "unterminated string");
        char c = *ps->p;
        if (c == '"')
            break;
        if (c != '\\')
            return fail(ps, "control character in a string");
        if (++ps->p == ps->e)
            return fail(ps, "unterminated string");
        c = *ps->p++;
        switch (c) {
        case '"': case '\\': case '/':
            *o++ = c;
            break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u':
            if (!unicode_escape(ps, &o))
                return false;
            break;
        default:
            ps->p--;
            return fail(ps, "invalid escape");
        }
    }
    ps->p++;
    *o++ = 0;
    *out = start;
    *len = (uint32_t)(o - start - 1);
    d->tlen += (size_t)(o - start);
    return true;
}

static bool digits(struct parser *ps)
{
    const char *s = ps->p;
    while (ps->p < ps->e && *ps->p >= '0' && *ps->p <= '9')
        ps->p++;
    return ps->p > s;
}

static bool number(struct parser *ps, struct jval *v)
{
    const char *s = ps->p;
    if (*ps->p == '-')
        ps->p++;
    if (ps->p < ps->e && *ps->p == '0')
        ps->p++;
    else if (!digits(ps))
        return fail(ps, "invalid number");
    v->integer = true;
    if (ps->p < ps->e && *ps->p == '.') {
        ps->p++;
        v->integer = false;
        if (!digits(ps))
            return fail(ps, "invalid number: digits must follow '.'");
    }
    if (ps->p < ps->e && (*ps->p == 'e' || *ps->p == 'E')) {
        ps->p++;
        v->integer = false;
        if (ps->p < ps->e && (*ps->p == '+' || *ps->p == '-'))
            ps->p++;
        if (!digits(ps))
            return fail(ps, "invalid number: digits must follow the exponent");
    }
    size_t n = (size_t)(ps->p - s);
    if (v->integer && n == 2 && s[0] == '-' && s[1] == '0') /* -0 */
        s++, n--;
    char *o = ps->d->text + ps->d->tlen;
    memcpy(o, s, n);
    o[n] = 0;
    v->s = o;
    v->len = (uint32_t)n;
    ps->d->tlen += n + 1;
    return true;
}

static bool literal(struct parser *ps, const char *word, struct jval *v)
{
    size_t n = strlen(word);
    if ((size_t)(ps->e - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, "unexpected character");
    ps->p += n;
    v->type = word[0] == 'n' ? JV_NULL : JV_BOOL;
    v->b = word[0] == 't';
    return true;
}

static bool value(struct parser *ps, const char *key, uint32_t keylen);

/* Members of the object or elements of the array whose opening bracket is
 * at ps->p; the container is slot i. */
static bool members(struct parser *ps, size_t i, bool object)
{
    char close = object ? '}' : ']';
    uint32_t count = 0;
    if (++ps->depth > ps->max_depth)
        return fail(ps, "nested too deep");
    ps->p++;
    blanks(ps);
    if (ps->p < ps->e && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return true;
    }
    for (;;) {
        const char *key = NULL;
        uint32_t keylen = 0;
        blanks(ps);
        if (object) {
            if (ps->p == ps->e || *ps->p != '"')
                return fail(ps, "expected a member name");
            if (!string(ps, &key, &keylen))
                return false;
            blanks(ps);
            if (ps->p == ps->e || *ps->p != ':')
                return fail(ps, "expected ':'");
            ps->p++;
        }
        if (!value(ps, key, keylen))
            return false;
        count++;
        blanks(ps);
        if (ps->p < ps->e && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->e && *ps->p == close)
            break;
        return fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    ps->p++;
    ps->depth--;
    ps->d->v[i].len = count;
    return true;
}

static bool value(struct parser *ps, const char *key, uint32_t keylen)
{
    struct jdoc *d = ps->d;
    blanks(ps);
    if (ps->p == ps->e)
        return fail(ps, "unexpected end of input");
    size_t i = new_value(d, JV_NULL);
    d->v[i].key = key;
    d->v[i].keylen = keylen;
    d->v[i].start = (uint32_t)(ps->p - ps->s);
    bool ok;
    switch (*ps->p) {
    case '{':
    case '[':
        d->v[i].type = *ps->p == '{' ? JV_OBJ : JV_ARR;
        ok = members(ps, i, *ps->p == '{');
        break;
    case '"':
        d->v[i].type = JV_STR;
        ok = string(ps, &d->v[i].s, &d->v[i].len);
        break;
    case 't':
        ok = literal(ps, "true", &d->v[i]);
        break;
    case 'f':
        ok = literal(ps, "false", &d->v[i]);
        break;
    case 'n':
        ok = literal(ps, "null", &d->v[i]);
        break;
    default:
        d->v[i].type = JV_NUM;
        ok = (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) ? number(ps, &d->v[i])
                                                                 : fail(ps, "unexpected character");
    }
    d->v[i].span = (uint32_t)(d->n - i);
    d->v[i].end = (uint32_t)(ps->p - ps->s);
    return ok;
}

const struct jval *jdoc_parse(struct jdoc *d, const char *p, size_t n, int max_depth)
{
    struct parser ps = {d, p, p, p + n, 0, max_depth};
    d->n = d->tlen = 0;
    d->src = p;
    d->err[0] = 0;
    d->err_at = 0;
    if (n > UINT32_MAX / 2) {
        fail(&ps, "too large");
        return NULL;
    }
    /* Grown for the largest message so far; one huge message does not keep
     * its room for the rest of a channel's life. */
    if (d->tcap < 2 * n + 1 || (d->tcap > ((size_t)8 << 20) && d->tcap > 8 * (2 * n + 1))) {
        d->tcap = 2 * n + 1;
        free(d->text);
        d->text = xmalloc(d->tcap);
    }
    if (d->cap > 65536 && d->cap > 8 * (n + 1)) {
        free(d->v);
        d->v = NULL;
        d->cap = 0;
    }
    if (!value(&ps, NULL, 0))
        return NULL;
    blanks(&ps);
    if (ps.p != ps.e) {
        fail(&ps, "unexpected data after the JSON value");
        return NULL;
    }
    return d->v;
}

void jdoc_free(struct jdoc *d)
{
    free(d->v);
    free(d->text);
    memset(d, 0, sizeof *d);
}

/* Whether m's name is key[0..n): lengths first (a strcmp a member was 4 %
 * of the decoding thread), and a name with a NUL in it never matches. */
static inline bool key_is(const struct jval *m, const char *key, size_t n)
{
    return m->key && m->keylen == n && memcmp(m->key, key, n) == 0;
}

const struct jval *jv_get(const struct jval *o, const char *key)
{
    const struct jval *found = NULL;
    if (!jv_is(o, JV_OBJ))
        return NULL;
    size_t n = strlen(key);
    jv_foreach(o, m)
        if (key_is(m, key, n))
            found = m;
    return found;
}

const struct jval *jv_get_hinted(const struct jval *o, const char *key, const struct jval **hint)
{
    const struct jval *h = *hint, *found;
    if (h && jv_is(o, JV_OBJ) && h > o && h < o + o->span && key_is(h, key, strlen(key)))
        found = h;
    else
        found = jv_get(o, key);
    *hint = found ? found + found->span : NULL;
    return found;
}

const struct jval *jv_at(const struct jval *a, size_t i)
{
    if (!jv_is(a, JV_ARR) || i >= a->len)
        return NULL;
    const struct jval *m = a + 1;
    while (i--)
        m += m->span;
    return m;
}

const char *jv_type_name(enum jv_type t)
{
    static const char *const names[] = {"null", "boolean", "number", "string", "array", "object"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}
