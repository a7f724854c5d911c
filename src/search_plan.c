/* search_plan — the query compiler: a parsed query, analysed the way each
 * field was indexed, into plans over the inverted index (terms, phrases,
 * like grams, prefixes and wildcards, ranges, booleans) with their
 * documents and BM25 weights. */
#define _GNU_SOURCE
#include "search_internal.h"

#include <ctype.h>
#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct plan *search_fail(struct ctx *c, const char *fmt, ...)
{
    if (!c->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    c->failed = true;
    return NULL;
}

void plan_free(struct plan *p)
{
    if (!p)
        return;
    bm_free(p->docs);
    if (p->kind == P_TERM)
        posting_free(&p->post);
    free(p->cursor);
    for (size_t i = 0; i < p->n; i++)
        plan_free(p->kids[i]);
    free(p->kids);
    free(p->occ);
    free(p);
}

static struct plan *const_plan(roaring_bitmap_t *docs)
{
    struct plan *p = xcalloc(1, sizeof *p);
    p->kind = P_CONST;
    p->docs = docs;
    p->boost = 1;
    return p;
}

/* A term (or a walk over terms) that the index cannot read: the query
 * fails rather than answer without it. */
static struct plan *unreadable(struct ctx *c, uint8_t f, int rc)
{
    return search_fail(c, "the index of field %s cannot be read (%s): rebuild the collection",
                       c->sc->fields[f].name, mdb_strerror(rc));
}

static struct plan *term_plan(struct ctx *c, uint8_t f, const void *term, size_t len)
{
    struct plan *p = xcalloc(1, sizeof *p);
    p->kind = P_TERM;
    p->boost = 1;
    p->field = f;
    int rc = reader_term(c->rd, f, term, len, &p->post);
    if (rc && rc != MDB_NOTFOUND) {
        free(p);
        return unreadable(c, f, rc);
    }
    if (rc) {
        memset(&p->post, 0, sizeof p->post);
        p->post.docs = roaring_bitmap_create();
    }
    p->docs = posting_live(&p->post, reader_deleted(c->rd));
    const struct gen_stats *st = reader_stats(c->rd);
    uint64_t ndocs = (uint64_t)st->f[f].docs, tokens = (uint64_t)st->f[f].tokens;
    double n = (double)roaring_bitmap_get_cardinality(p->docs);
    p->idf = log(1 + ((double)ndocs - n + 0.5) / (n + 0.5));
    double avgdl = ndocs ? (double)tokens / (double)ndocs : 1;
    p->norm_a = BM25_K1 * (1 - BM25_B);
    p->norm_b = BM25_K1 * BM25_B / (avgdl > 0 ? avgdl : 1);
    return p;
}

static struct plan *bool_plan(void)
{
    struct plan *p = xcalloc(1, sizeof *p);
    p->kind = P_BOOL;
    p->boost = 1;
    return p;
}

static void bool_add(struct plan *b, enum qoccur occ, struct plan *kid)
{
    b->kids = xrealloc(b->kids, (b->n + 1) * sizeof *b->kids);
    b->occ = xrealloc(b->occ, (b->n + 1) * sizeof *b->occ);
    b->kids[b->n] = kid;
    b->occ[b->n++] = occ;
}

/* Computes a P_BOOL's matches from its children (Lucene's semantics: with a
 * required clause the optional ones only score). */
static void bool_finish(struct ctx *c, struct plan *b)
{
    roaring_bitmap_t *must = NULL, *should = roaring_bitmap_create();
    bool any_should = false;
    for (size_t i = 0; i < b->n; i++) {
        if (b->occ[i] == OCC_MUST) {
            if (must)
                roaring_bitmap_and_inplace(must, b->kids[i]->docs);
            else
                must = roaring_bitmap_copy(b->kids[i]->docs);
        } else if (b->occ[i] == OCC_SHOULD) {
            roaring_bitmap_or_inplace(should, b->kids[i]->docs);
            any_should = true;
        }
    }
    if (must || !any_should)
        roaring_bitmap_free(should);
    if (must)
        b->docs = must;
    else if (any_should)
        b->docs = should;
    else /* only prohibited clauses: everything but them, as Solr does */
        b->docs = roaring_bitmap_copy(reader_all(c->rd));
    for (size_t i = 0; i < b->n; i++)
        if (b->occ[i] == OCC_MUST_NOT)
            roaring_bitmap_andnot_inplace(b->docs, b->kids[i]->docs);
}

int search_find_field(const struct tis_schema *sc, const char *name)
{
    for (size_t i = 0; i < sc->nfields; i++)
        if (strcasecmp(sc->fields[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* ---- text analysis at query time ---- */

struct qtokens {
    struct tbuf buf;  /* terms, NUL-separated */
    struct tbuf pos;  /* u32 position of each */
    size_t n;
    uint32_t last_pos;
};

static int collect_token(void *arg, const char *t, size_t len, uint32_t pos)
{
    struct qtokens *q = arg;
    if (q->n && pos == q->last_pos) /* keep one token per position (pinyin extras) */
        return 0;
    tbuf_add(&q->buf, t, len);
    tbuf_add(&q->buf, "", 1);
    tbuf_add(&q->pos, &pos, sizeof pos);
    q->n++;
    q->last_pos = pos;
    return 0;
}

/* Keeps the docs of p whose stored value of field passes keep(). */
static void recheck(struct ctx *c, roaring_bitmap_t *docs, uint8_t field,
                    bool (*keep)(struct ctx *, const struct tis_field *, const struct tis_value *,
                                 void *),
                    void *arg)
{
    roaring_bitmap_t *drop = roaring_bitmap_create();
    roaring_uint32_iterator_t it;
    roaring_init_iterator(docs, &it);
    for (; it.has_value; roaring_advance_uint32_iterator(&it)) {
        struct tis_value *v = &c->vals[field];
        if (!reader_doc_values(c->rd, it.current_value, c->vals) || v->null ||
            !keep(c, &c->sc->fields[field], v, arg))
            roaring_bitmap_add(drop, it.current_value);
    }
    roaring_bitmap_andnot_inplace(docs, drop);
    roaring_bitmap_free(drop);
}

/* ---- phrases, from the positions in the index ---- */

static bool has_pos(const uint32_t *a, size_t n, uint32_t p)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && a[lo] == p;
}

struct phrase {
    size_t n;
    struct term_positions *tp;
    uint32_t *rel;    /* query position of token k minus the first one's */
    uint32_t **list;  /* a document's positions of token k */
    size_t *cnt, *cap;
};

/* Whether doc holds token k at start + rel[k] for every k, some start. */
static bool phrase_in_doc(struct ctx *c, struct phrase *ph, uint32_t doc)
{
    for (size_t k = 0; k < ph->n; k++)
        if (!(ph->cnt[k] = reader_positions(c->rd, &ph->tp[k], doc, &ph->list[k], &ph->cap[k])))
            return false;
    for (size_t i = 0; i < ph->cnt[0]; i++) {
        size_t k = 1;
        while (k < ph->n && has_pos(ph->list[k], ph->cnt[k], ph->list[0][i] + ph->rel[k]))
            k++;
        if (k == ph->n)
            return true;
    }
    return false;
}

static struct plan *phrase_plan(struct ctx *c, uint8_t f, struct qtokens *qt)
{
    struct phrase ph = {qt->n, xcalloc(qt->n, sizeof *ph.tp), xcalloc(qt->n, sizeof *ph.rel),
                        xcalloc(qt->n, sizeof *ph.list), xcalloc(qt->n, sizeof *ph.cnt),
                        xcalloc(qt->n, sizeof *ph.cap)};
    const uint32_t *qpos = (const uint32_t *)qt->pos.data;
    const char *t = qt->buf.data;
    struct plan *b = bool_plan();
    for (size_t i = 0; i < qt->n; i++, t += strlen(t) + 1) {
        bool_add(b, OCC_MUST, term_plan(c, f, t, strlen(t)));
        ph.rel[i] = qpos[i] - qpos[0];
        if (term_positions_init(&ph.tp[i], f, t, strlen(t), &b->kids[i]->post))
            search_fail(c, "cannot read the positions of a phrase term");
    }
    bool_finish(c, b);
    roaring_bitmap_t *drop = roaring_bitmap_create();
    roaring_uint32_iterator_t it;
    roaring_init_iterator(b->docs, &it);
    for (; it.has_value && !c->failed; roaring_advance_uint32_iterator(&it))
        if (!phrase_in_doc(c, &ph, it.current_value))
            roaring_bitmap_add(drop, it.current_value);
    roaring_bitmap_andnot_inplace(b->docs, drop);
    roaring_bitmap_free(drop);
    for (size_t i = 0; i < qt->n; i++)
        free(ph.list[i]);
    free(ph.tp);
    free(ph.rel);
    free(ph.list);
    free(ph.cnt);
    free(ph.cap);
    return b;
}

/* ---- like fields ---- */

struct like_arg {
    const char *needle;
    bool anchored;
};

static bool keep_like(struct ctx *c, const struct tis_field *f, const struct tis_value *v,
                      void *arg)
{
    (void)f;
    struct like_arg *la = arg;
    if (!la->anchored)
        return like_contains(c->an, v->p, v->len, la->needle, strlen(la->needle));
    char *fv = analysis_fold(c->an, v->p, v->len), *fn = analysis_fold(c->an, la->needle, strlen(la->needle));
    bool r = strncmp(fv, fn, strlen(fn)) == 0;
    free(fv);
    free(fn);
    return r;
}

static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* The live documents of one term, without scoring state. */
static roaring_bitmap_t *term_docs(struct ctx *c, uint8_t f, const char *t, size_t len)
{
    struct posting post;
    int rc = reader_term(c->rd, f, t, len, &post);
    if (rc && rc != MDB_NOTFOUND)
        unreadable(c, f, rc);
    if (rc)
        return roaring_bitmap_create();
    roaring_bitmap_t *r = posting_live(&post, reader_deleted(c->rd));
    posting_free(&post);
    return r;
}

static roaring_bitmap_t *exists_docs(struct ctx *c, uint8_t f)
{
    return reader_exists(c->rd, f);
}

/* SQL LIKE '%text%' (or 'text%' when anchored) over a like field: grams find
 * candidates, the stored value decides when grams alone could over-match. */
static struct plan *like_plan(struct ctx *c, uint8_t f, const char *text, bool anchored)
{
    const struct analysis_opts *o = reader_analysis(c->rd);
    int lo = o->min_gram ? o->min_gram : LIKE_MIN_GRAM_DEFAULT;
    int hi = o->max_gram ? o->max_gram : LIKE_MAX_GRAM_DEFAULT;
    char *folded = analysis_fold(c->an, text, strlen(text));
    size_t n = utf8_len(folded);
    struct plan *p;
    if (n >= (size_t)lo && n <= (size_t)hi && !anchored) {
        p = term_plan(c, f, folded, strlen(folded)); /* a gram of exactly this text */
    } else {
        roaring_bitmap_t *cand = NULL;
        if (n > (size_t)hi) { /* every hi-gram of the needle must be present */
            const char *s = folded;
            for (size_t i = 0; i + (size_t)hi <= n; i++) {
                const char *e = s;
                for (int g = 0; g < hi; g++) {
                    e++;
                    while (((unsigned char)*e & 0xC0) == 0x80)
                        e++;
                }
                roaring_bitmap_t *d = term_docs(c, f, s, (size_t)(e - s));
                if (cand) {
                    roaring_bitmap_and_inplace(cand, d);
                    roaring_bitmap_free(d);
                } else
                    cand = d;
                s++;
                while (((unsigned char)*s & 0xC0) == 0x80)
                    s++;
            }
        } else if (n >= (size_t)lo) {
            cand = term_docs(c, f, folded, strlen(folded));
        } else
            cand = exists_docs(c, f);
        struct like_arg la = {text, anchored};
        if (n > (size_t)hi || anchored || n < (size_t)lo)
            recheck(c, cand, f, keep_like, &la);
        p = const_plan(cand);
    }
    free(folded);
    return p;
}

/* ---- multi-term expansions ---- */

struct expand {
    struct ctx *c;
    roaring_bitmap_t *docs;
    const char *pattern; /* wildcard, or NULL */
    size_t prefix_len;
    const char *prefix;
    bool prefix_mode;
    /* A range over the values of text terms (a number indexed as a string):
     * each term's typed form against the bounds; NULL bound = open. */
    const struct tis_field *by_value;
    const unsigned char *lo, *hi;
    size_t lon, hin;
    bool incl_lo, incl_hi;
};

/* Whether a text term's value lies within e's bounds. */
static bool value_in_range(const struct expand *e, const unsigned char *t, size_t len)
{
    unsigned char v[40];
    size_t n;
    if (!index_typed_term(e->by_value->vt, (const char *)t, len, v, &n))
        return false;
    if (e->lo) {
        int c = memcmp(v, e->lo, n < e->lon ? n : e->lon);
        c = c ? c : (n > e->lon) - (n < e->lon);
        if (c < 0 || (c == 0 && !e->incl_lo))
            return false;
    }
    if (e->hi) {
        int c = memcmp(v, e->hi, n < e->hin ? n : e->hin);
        c = c ? c : (n > e->hin) - (n < e->hin);
        if (c > 0 || (c == 0 && !e->incl_hi))
            return false;
    }
    return true;
}

static int expand_term(void *arg, const unsigned char *t, size_t len, const struct posting *p)
{
    struct expand *e = arg;
    if (e->prefix_mode && (len < e->prefix_len || memcmp(t, e->prefix, e->prefix_len) != 0))
        return 1; /* past the prefix: terms are sorted */
    if (e->pattern) {
        char *s = xstrndup((const char *)t, len);
        int m = fnmatch(e->pattern, s, 0);
        free(s);
        if (m)
            return 0;
    }
    if (e->by_value && !value_in_range(e, t, len))
        return 0;
    if (++e->c->expansions > SEARCH_MAX_EXPANSIONS) {
        search_fail(e->c, "the query expands to more than %d terms", SEARCH_MAX_EXPANSIONS);
        return 1;
    }
    roaring_bitmap_or_inplace(e->docs, p->docs); /* deleted ids go once, at the end */
    if (p->delta)
        roaring_bitmap_or_inplace(e->docs, p->delta);
    return 0;
}

/* The plan of an expansion: its documents, the deleted ones dropped. */
static struct plan *expand_plan(struct ctx *c, struct expand *e)
{
    roaring_bitmap_andnot_inplace(e->docs, reader_deleted(c->rd));
    return const_plan(e->docs);
}

static char *fold_for(struct ctx *c, const struct tis_field *f, const char *s)
{
    return token_folds(f->token) ? analysis_fold(c->an, s, strlen(s)) : xstrdup(s);
}

static struct plan *prefix_plan(struct ctx *c, uint8_t f, const char *prefix, const char *pattern)
{
    struct expand e = {.c = c, .docs = roaring_bitmap_create(), .pattern = pattern,
                       .prefix_len = strlen(prefix), .prefix = prefix, .prefix_mode = true};
    int rc = reader_terms_between(c->rd, f, prefix, strlen(prefix), true, NULL, 0, false,
                                  expand_term, &e);
    if (rc) {
        roaring_bitmap_free(e.docs);
        return unreadable(c, f, rc);
    }
    return expand_plan(c, &e);
}

/* Digits at s[0..n), as a number; -1 if any is not a digit. */
static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* A date bound must be a date: YYYY[-MM[-DD[( |T)HH[:MM[:SS[.f]]]]]][Z], each
 * part in its range (2020-13-01 and 2021-02-30 are not dates). Index terms
 * compare as text, so an impossible bound would silently match nonsense. */
static bool valid_date(const char *s)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    size_t n = strlen(s);
    if (n && s[n - 1] == 'Z')
        n--;
    if (n < 4 || digits(s, 4) < 0)
        return false;
    int y = digits(s, 4), m = 1;
    if (n == 4)
        return true;
    if (n < 7 || s[4] != '-' || (m = digits(s + 5, 2)) < 1 || m > 12)
        return false;
    if (n == 7)
        return true;
    int d = n >= 10 && s[7] == '-' ? digits(s + 8, 2) : -1;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d < 1 || d > mdays[m - 1] || (m == 2 && d == 29 && !leap))
        return false;
    if (n == 10)
        return true;
    static const int lim[] = {23, 59, 59};
    size_t at = 11;
    if (s[10] != ' ' && s[10] != 'T')
        return false;
    for (int part = 0; part < 3 && at < n; part++, at += 3) {
        int v = at + 2 <= n ? digits(s + at, 2) : -1;
        if (v < 0 || v > lim[part] || (at + 2 < n && s[at + 2] != (part < 2 ? ':' : '.')))
            return false;
    }
    return at >= n || digits(s + at, n - at) >= 0;
}

static bool valid_bound(enum tis_vtype vt, const char *v)
{
    return !v || (vt != VT_DATE && vt != VT_DATETIME) || valid_date(v);
}

static struct plan *range_plan(struct ctx *c, uint8_t f, const struct qnode *q)
{
    const struct tis_field *fd = &c->sc->fields[f];
    unsigned char lo[40], hi[40];
    size_t lon = 0, hin = 0;
    char *flo = NULL, *fhi = NULL;
    bool typed = field_is_typed(fd), by_value = !typed && vtype_is_ordered(fd->vt);
    if (typed || by_value) {
        if (!valid_bound(fd->vt, q->lo) || !valid_bound(fd->vt, q->hi) ||
            (q->lo && !index_typed_term(fd->vt, q->lo, strlen(q->lo), lo, &lon)) ||
            (q->hi && !index_typed_term(fd->vt, q->hi, strlen(q->hi), hi, &hin)))
            return search_fail(c, "Invalid %s value in range [%s TO %s] on field %s", vtype_name(fd->vt),
                        q->lo ? q->lo : "*", q->hi ? q->hi : "*", fd->name);
    } else {
        flo = q->lo ? fold_for(c, fd, q->lo) : NULL;
        fhi = q->hi ? fold_for(c, fd, q->hi) : NULL;
    }
    struct expand e = {.c = c, .docs = roaring_bitmap_create()};
    if (by_value) { /* text terms of numbers: every term, compared by value */
        e.by_value = fd;
        e.lo = lon ? lo : NULL, e.lon = lon, e.incl_lo = q->incl_lo;
        e.hi = hin ? hi : NULL, e.hin = hin, e.incl_hi = q->incl_hi;
        lon = hin = 0;
    }
    const void *plo = flo ? (const void *)flo : lon ? lo : NULL;
    const void *phi = fhi ? (const void *)fhi : hin ? hi : NULL;
    int rc = reader_terms_between(c->rd, f, plo, flo ? strlen(flo) : lon, q->incl_lo, phi,
                                  fhi ? strlen(fhi) : hin, q->incl_hi, expand_term, &e);
    free(flo);
    free(fhi);
    if (rc) {
        roaring_bitmap_free(e.docs);
        return unreadable(c, f, rc);
    }
    return expand_plan(c, &e);
}

/* ---- compiling a query node for one field ---- */

static struct plan *text_plan(struct ctx *c, uint8_t f, const char *text, bool explicit_field)
{
    const struct tis_field *fd = &c->sc->fields[f];
    if (field_is_typed(fd)) {
        unsigned char term[40];
        size_t n;
        if (!index_typed_term(fd->vt, text, strlen(text), term, &n))
            return explicit_field ? search_fail(c, "Invalid %s value: \"%s\" for field %s",
                                         vtype_name(fd->vt), text, fd->name)
                                  : NULL;
        return term_plan(c, f, term, n);
    }
    if (fd->token == TOK_LIKE)
        return like_plan(c, f, text, false);
    struct qtokens qt = {0};
    analyze(c->an, fd->token, reader_analysis(c->rd), text, strlen(text), collect_token, &qt);
    struct plan *p = NULL;
    if (qt.n == 1)
        p = term_plan(c, f, qt.buf.data, strlen(qt.buf.data));
    else if (qt.n > 1)
        p = phrase_plan(c, f, &qt);
    tbuf_free(&qt.buf);
    tbuf_free(&qt.pos);
    return p;
}

static struct plan *leaf_for_field(struct ctx *c, const struct qnode *q, uint8_t f, bool explicit_field)
{
    const struct tis_field *fd = &c->sc->fields[f];
    if (!fd->search)
        return explicit_field ? search_fail(c, "field %s is not searchable (search: false)", fd->name)
                              : NULL;
    if (!field_is_typed(fd) && fd->token == TOK_DEFAULT)
        return explicit_field ? search_fail(c, "field %s is not indexed", fd->name) : NULL;
    switch (q->kind) {
    case Q_TERM:
    case Q_PHRASE:
        return text_plan(c, f, q->text, explicit_field);
    case Q_PREFIX: {
        if (fd->token == TOK_LIKE)
            return like_plan(c, f, q->text, true);
        char *p = fold_for(c, fd, q->text);
        struct plan *r = prefix_plan(c, f, p, NULL);
        free(p);
        return r;
    }
    case Q_WILDCARD: {
        char *pat = fold_for(c, fd, q->text);
        size_t lit = strcspn(pat, "*?\\[");
        char *prefix = xstrndup(pat, lit);
        struct plan *r = prefix_plan(c, f, prefix, pat);
        free(prefix);
        free(pat);
        return r;
    }
    case Q_RANGE:
        return range_plan(c, f, q);
    case Q_EXISTS:
        return const_plan(exists_docs(c, f));
    default:
        return NULL;
    }
}

static struct plan *compile(struct ctx *c, const struct qnode *q);

/* A leaf without a field: the df field, or every searchable field. */
static struct plan *leaf(struct ctx *c, const struct qnode *q)
{
    const char *fname = q->field ? q->field : c->df;
    if (fname) {
        int f = search_find_field(c->sc, fname);
        if (f < 0)
            return search_fail(c, "undefined field %s", fname);
        return leaf_for_field(c, q, (uint8_t)f, true);
    }
    struct plan *b = bool_plan();
    for (size_t f = 0; f < c->sc->nfields && !c->failed; f++) {
        struct plan *p = leaf_for_field(c, q, (uint8_t)f, false);
        if (p)
            bool_add(b, OCC_SHOULD, p);
    }
    if (c->failed || !b->n) {
        plan_free(b);
        return NULL;
    }
    bool_finish(c, b);
    return b;
}

static struct plan *compile_bool(struct ctx *c, const struct qnode *q)
{
    struct plan *b = bool_plan();
    for (size_t i = 0; i < q->nclauses && !c->failed; i++) {
        struct plan *p = compile(c, q->clauses[i].q);
        if (p)
            bool_add(b, q->clauses[i].occur, p);
    }
    if (c->failed || !b->n) {
        plan_free(b);
        return NULL;
    }
    bool_finish(c, b);
    return b;
}

static struct plan *compile(struct ctx *c, const struct qnode *q)
{
    struct plan *p;
    if (q->kind == Q_BOOL)
        p = compile_bool(c, q);
    else if (q->kind == Q_ALL)
        p = const_plan(roaring_bitmap_copy(reader_all(c->rd)));
    else
        p = leaf(c, q);
    if (p)
        p->boost *= q->boost;
    return p;
}

struct plan *search_compile(struct ctx *c, const char *q, bool and_op)
{
    struct qnode *n = query_parse(q, and_op, c->err, c->errlen);
    if (!n) {
        c->failed = true;
        return NULL;
    }
    struct plan *p = compile(c, n);
    query_free(n);
    if (!p && !c->failed)
        p = const_plan(roaring_bitmap_create()); /* nothing left after analysis */
    return p;
}
