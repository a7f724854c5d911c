/* query — a recursive-descent parser for Lucene's standard syntax. */
#define _GNU_SOURCE
#include "tisfs/query.h"

#include <stdarg.h>
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tisfs/util.h"

enum conj { CONJ_NONE, CONJ_AND, CONJ_OR };
enum mod { MOD_NONE, MOD_REQ, MOD_NOT };

struct parser {
    const char *s;
    size_t pos, len;
    bool and_default;
    int depth;
    char *err;
    size_t errlen;
    bool failed;
};

static bool fail(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(struct parser *p, const char *fmt, ...)
{
    if (p->failed)
        return false;
    p->failed = true;
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "Cannot parse '%s': %s at column %zu", p->s, what, p->pos + 1);
    return false;
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]))
        p->pos++;
}

static bool at_end(struct parser *p)
{
    skip_ws(p);
    return p->pos >= p->len;
}

static char peek(struct parser *p)
{
    return p->pos < p->len ? p->s[p->pos] : 0;
}

/* Characters that end a bare term (unless escaped). */
static bool is_special(char c)
{
    return c == 0 || strchr(" \t\r\n()[]{}:^\"~", c) != NULL;
}

static bool match_word(struct parser *p, const char *w)
{
    size_t n = strlen(w);
    if (p->pos + n > p->len || strncmp(p->s + p->pos, w, n) != 0)
        return false;
    char next = p->pos + n < p->len ? p->s[p->pos + n] : 0;
    if (!is_special(next) && !(w[0] == '&' || w[0] == '|'))
        return false;
    p->pos += n;
    return true;
}

static enum conj read_conj(struct parser *p)
{
    skip_ws(p);
    if (match_word(p, "AND") || match_word(p, "&&"))
        return CONJ_AND;
    if (match_word(p, "OR") || match_word(p, "||"))
        return CONJ_OR;
    return CONJ_NONE;
}

static enum mod read_mod(struct parser *p)
{
    skip_ws(p);
    char c = peek(p);
    if (c == '+') {
        p->pos++;
        return MOD_REQ;
    }
    if (c == '-' || c == '!') {
        p->pos++;
        return MOD_NOT;
    }
    if (match_word(p, "NOT"))
        return MOD_NOT;
    return MOD_NONE;
}

/* A bare term with escapes resolved. *wild reports an unescaped * or ?. */
static char *read_term(struct parser *p, bool *wild)
{
    struct tbuf b = {0};
    *wild = false;
    while (p->pos < p->len && !is_special(p->s[p->pos])) {
        char c = p->s[p->pos++];
        if (c == '\\') {
            if (p->pos >= p->len) {
                tbuf_free(&b);
                fail(p, "a '\\' at the end of the query escapes nothing");
                return NULL;
            }
            c = p->s[p->pos++];
            if (c == '*' || c == '?') /* keep escaped wildcards distinguishable */
                tbuf_add(&b, "\\", 1);
        } else if (c == '*' || c == '?')
            *wild = true;
        tbuf_add(&b, &c, 1);
    }
    if (!b.len) {
        tbuf_free(&b);
        char c = peek(p);
        if (c)
            fail(p, "Encountered \"%c\"; expected a term", c);
        else
            fail(p, "Encountered \"<EOF>\"; expected a term");
        return NULL;
    }
    return tbuf_take(&b);
}

static struct qnode *node(enum qkind k, const char *field)
{
    struct qnode *n = xcalloc(1, sizeof *n);
    n->kind = k;
    n->field = field ? xstrdup(field) : NULL;
    n->boost = 1;
    return n;
}

static bool read_boost(struct parser *p, struct qnode *n)
{
    if (peek(p) != '^')
        return true;
    p->pos++;
    char *end;
    const char *s = p->s + p->pos;
    /* Digits only: strtod would also take nan, inf and hex, and a
     * non-finite boost would make scores (and the JSON) NaN/Infinity. */
    size_t k = 0;
    while (isdigit((unsigned char)s[k]))
        k++;
    if (s[k] == '.')
        for (k++; isdigit((unsigned char)s[k]);)
            k++;
    if (k && (s[k] == 'e' || s[k] == 'E')) {
        size_t e = k + 1 + (s[k + 1] == '+' || s[k + 1] == '-');
        if (isdigit((unsigned char)s[e]))
            for (k = e; isdigit((unsigned char)s[k]);)
                k++;
    }
    if (k == 0 || (k == 1 && s[0] == '.') || isalpha((unsigned char)s[k]))
        return fail(p, "expected a boost number after '^'");
    char num[64];
    snprintf(num, sizeof num, "%.*s", (int)(k < sizeof num - 1 ? k : sizeof num - 1), s);
    double b = strtod(num, &end), total = (double)n->boost * b;
    end = (char *)s + k;
    if (!isfinite(b) || !isfinite(total) || total > FLT_MAX)
        return fail(p, "boost %.*s is too large", (int)(end - s), s);
    p->pos = (size_t)(end - p->s);
    n->boost = (float)total;
    return true;
}

static struct qnode *parse_query(struct parser *p, const char *field, bool nested);

static struct qnode *parse_phrase(struct parser *p, const char *field)
{
    size_t open = p->pos++;
    struct tbuf b = {0};
    while (p->pos < p->len && p->s[p->pos] != '"') {
        char c = p->s[p->pos++];
        if (c == '\\' && p->pos < p->len)
            c = p->s[p->pos++];
        tbuf_add(&b, &c, 1);
    }
    if (p->pos >= p->len) {
        tbuf_free(&b);
        p->pos = open;
        fail(p, "the phrase that starts here has no closing '\"'");
        return NULL;
    }
    p->pos++;
    if (peek(p) == '~') { /* slop: accepted, phrases stay exact */
        p->pos++;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
    }
    struct qnode *n = node(Q_PHRASE, field);
    n->text = tbuf_take(&b);
    return n;
}

static char *range_bound(struct parser *p)
{
    skip_ws(p);
    if (peek(p) == '"') {
        struct qnode *ph = parse_phrase(p, NULL);
        if (!ph)
            return NULL;
        char *t = ph->text;
        ph->text = NULL;
        query_free(ph);
        return t;
    }
    /* Lucene's RANGE_GOOP: inside brackets only blanks and the closing
     * bracket end a bound, so 2020-01-01T00:00:00Z needs no escaping. */
    size_t start = p->pos;
    while (p->pos < p->len && !strchr(" \t\r\n]}", p->s[p->pos]))
        p->pos++;
    if (p->pos == start) {
        if (p->pos < p->len)
            fail(p, "Encountered \"%c\"; expected a range bound", p->s[p->pos]);
        else
            fail(p, "Encountered \"<EOF>\"; expected a range bound");
        return NULL;
    }
    if (p->pos - start == 1 && p->s[start] == '*')
        return xstrdup("");
    return xstrndup(p->s + start, p->pos - start);
}

static struct qnode *parse_range(struct parser *p, const char *field)
{
    bool incl_lo = p->s[p->pos++] == '[';
    char *lo = range_bound(p), *hi = NULL;
    skip_ws(p);
    if (lo && !match_word(p, "TO"))
        fail(p, "expected TO in a range");
    if (lo && !p->failed)
        hi = range_bound(p);
    skip_ws(p);
    char close = peek(p);
    if (hi && close != ']' && close != '}')
        fail(p, "expected ']' or '}' to close the range");
    if (p->failed) {
        free(lo);
        free(hi);
        return NULL;
    }
    p->pos++;
    struct qnode *n = node(Q_RANGE, field);
    n->lo = *lo ? lo : (free(lo), NULL);
    n->hi = *hi ? hi : (free(hi), NULL);
    n->incl_lo = incl_lo;
    n->incl_hi = close == ']';
    return n;
}

static struct qnode *term_node(const char *field, char *t, bool wild)
{
    struct qnode *n;
    size_t len = strlen(t);
    if (strcmp(t, "*") == 0) {
        free(t);
        return node(field ? Q_EXISTS : Q_ALL, field);
    }
    if (wild && len > 1 && t[len - 1] == '*' && !strpbrk(t, "?") &&
        strchr(t, '*') == t + len - 1 && (len < 2 || t[len - 2] != '\\')) {
        n = node(Q_PREFIX, field);
        t[len - 1] = 0;
    } else
        n = node(wild ? Q_WILDCARD : Q_TERM, field);
    /* Escaped wildcards were kept as "\*": plain text again for non-patterns. */
    if (n->kind != Q_WILDCARD) {
        char *w = t;
        for (char *r = t; *r; r++) {
            if (*r == '\\' && (r[1] == '*' || r[1] == '?'))
                r++;
            *w++ = *r;
        }
        *w = 0;
    }
    n->text = t;
    return n;
}

/* One clause: [field:] (term | phrase | range | '(' query ')') [^boost]. */
static struct qnode *parse_clause(struct parser *p, const char *field)
{
    skip_ws(p);
    char c = peek(p);
    struct qnode *n = NULL;
    if (c == '(') {
        p->pos++;
        n = parse_query(p, field, true);
        if (n && peek(p) != ')') {
            query_free(n);
            fail(p, "expected ')'");
            return NULL;
        }
        if (n)
            p->pos++;
    } else if (c == '"')
        n = parse_phrase(p, field);
    else if (c == '[' || c == '{')
        n = parse_range(p, field);
    else {
        bool wild;
        char *t = read_term(p, &wild);
        if (!t)
            return NULL;
        if (peek(p) == ':' && !field) {
            p->pos++;
            if (strcmp(t, "*") == 0) { /* *:* or *:x */
                free(t);
                n = parse_clause(p, NULL);
                if (n && n->kind == Q_EXISTS)
                    n->kind = Q_ALL;
                return n;
            }
            n = parse_clause(p, t);
            free(t);
            return n;
        }
        if (peek(p) == ':')
            fail(p, "field %s: a field inside a field", field);
        n = p->failed ? (free(t), NULL) : term_node(field, t, wild);
    }
    if (n && !read_boost(p, n)) {
        query_free(n);
        return NULL;
    }
    return n;
}

/* Lucene's QueryParserBase.addClause, so that "a AND b OR c" means what it
 * means in Solr. */
static void add_clause(struct parser *p, struct qnode *bq, enum conj conj, enum mod mods,
                       struct qnode *q)
{
    struct qclause *last = bq->nclauses ? &bq->clauses[bq->nclauses - 1] : NULL;
    if (last && conj == CONJ_AND && last->occur != OCC_MUST_NOT)
        last->occur = OCC_MUST;
    if (last && p->and_default && conj == CONJ_OR && last->occur != OCC_MUST_NOT)
        last->occur = OCC_SHOULD;
    bool required, prohibited;
    if (!p->and_default) {
        required = mods == MOD_REQ;
        prohibited = mods == MOD_NOT;
        if (conj == CONJ_AND && !prohibited)
            required = true;
    } else {
        prohibited = mods == MOD_NOT;
        required = !prohibited && conj != CONJ_OR;
    }
    bq->clauses = xrealloc(bq->clauses, (bq->nclauses + 1) * sizeof *bq->clauses);
    bq->clauses[bq->nclauses++] = (struct qclause){
        prohibited ? OCC_MUST_NOT : required ? OCC_MUST : OCC_SHOULD, q};
}

static struct qnode *parse_query(struct parser *p, const char *field, bool nested)
{
    if (++p->depth > QUERY_MAX_DEPTH) {
        fail(p, "nesting deeper than %d levels", QUERY_MAX_DEPTH);
        return NULL;
    }
    struct qnode *bq = node(Q_BOOL, field);
    for (bool first = true;; first = false) {
        if (at_end(p) || (nested && peek(p) == ')'))
            break;
        enum conj conj = first ? CONJ_NONE : read_conj(p);
        if (first && (match_word(p, "AND") || match_word(p, "OR") || match_word(p, "&&") ||
                      match_word(p, "||"))) {
            fail(p, "a query cannot start with an operator");
            break;
        }
        enum mod mods = read_mod(p);
        if (bq->nclauses >= QUERY_MAX_CLAUSES) {
            fail(p, "more than %d clauses", QUERY_MAX_CLAUSES);
            break;
        }
        struct qnode *c = parse_clause(p, field);
        if (!c)
            break;
        add_clause(p, bq, conj, mods, c);
    }
    p->depth--;
    if (p->failed) {
        query_free(bq);
        return NULL;
    }
    if (!bq->nclauses && !nested) {
        query_free(bq);
        fail(p, "an empty query");
        return NULL;
    }
    return bq;
}

struct qnode *query_parse(const char *q, bool and_default, char *err, size_t errlen)
{
    struct parser p = {q, 0, strlen(q), and_default, 0, err, errlen, false};
    struct qnode *n = parse_query(&p, NULL, false);
    if (n && !at_end(&p)) {
        fail(&p, "Encountered \"%c\"", peek(&p));
        query_free(n);
        return NULL;
    }
    return n;
}

void query_free(struct qnode *n)
{
    if (!n)
        return;
    free(n->field);
    free(n->text);
    free(n->lo);
    free(n->hi);
    for (size_t i = 0; i < n->nclauses; i++)
        query_free(n->clauses[i].q);
    free(n->clauses);
    free(n);
}

static void dump(const struct qnode *n, struct tbuf *b)
{
    if (n->field && n->kind != Q_BOOL)
        tbuf_printf(b, "%s:", n->field);
    switch (n->kind) {
    case Q_TERM: tbuf_adds(b, n->text); break;
    case Q_PHRASE: tbuf_printf(b, "\"%s\"", n->text); break;
    case Q_PREFIX: tbuf_printf(b, "%s*", n->text); break;
    case Q_WILDCARD: tbuf_printf(b, "%s", n->text); break;
    case Q_EXISTS: tbuf_adds(b, "*"); break;
    case Q_ALL: tbuf_adds(b, "*:*"); break;
    case Q_RANGE:
        tbuf_printf(b, "%c%s TO %s%c", n->incl_lo ? '[' : '{', n->lo ? n->lo : "*",
                    n->hi ? n->hi : "*", n->incl_hi ? ']' : '}');
        break;
    case Q_BOOL:
        tbuf_adds(b, "(");
        for (size_t i = 0; i < n->nclauses; i++) {
            tbuf_printf(b, "%s%s", i ? " " : "",
                        n->clauses[i].occur == OCC_MUST       ? "+"
                        : n->clauses[i].occur == OCC_MUST_NOT ? "-"
                                                              : "");
            dump(n->clauses[i].q, b);
        }
        tbuf_adds(b, ")");
        break;
    }
    if (n->boost != 1)
        tbuf_printf(b, "^%g", n->boost);
}

void query_dump(const struct qnode *n, char *buf, size_t len)
{
    struct tbuf b = {0};
    dump(n, &b);
    snprintf(buf, len, "%s", b.data ? b.data : "");
    tbuf_free(&b);
}
