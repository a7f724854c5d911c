/* search — a select request over one generation: BM25 scoring, top-k with
 * a heap, sorting, and the documents of the page. The query compiler is
 * search_plan.c. */
#define _GNU_SOURCE
#include "search_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- scoring ---- */

/* Term frequency of doc in a term plan. Documents are scored in increasing
 * id order, so a cursor walking the posting replaces a rank lookup. */
static uint32_t term_tf(struct plan *p, uint32_t doc)
{
    if (p->post.delta && roaring_bitmap_contains(p->post.delta, doc))
        return posting_tf(&p->post, doc); /* a live addition: not in the base */
    if (!p->cursor) {
        p->cursor = xmalloc(sizeof *p->cursor);
        id_cursor_start(p->cursor, p->post.docs);
    } else if (p->cursor->i < p->cursor->n && p->cursor->buf[p->cursor->i] > doc)
        return posting_tf(&p->post, doc); /* out of order: ask the bitmap */
    if (!id_cursor_seek(p->cursor, doc) || p->cursor->buf[p->cursor->i] != doc)
        return 0;
    return posting_base_tf(&p->post, p->cursor->rank);
}

static double score(struct ctx *c, struct plan *p, uint32_t doc)
{
    switch (p->kind) {
    case P_CONST:
        return roaring_bitmap_contains(p->docs, doc) ? p->boost : 0;
    case P_TERM: { /* a term's documents are those with a tf: no bitmap test */
        double tf = term_tf(p, doc);
        if (tf == 0)
            return 0;
        double dl = reader_norm(c->rd, p->field, doc);
        return p->boost * p->idf * tf / (tf + p->norm_a + p->norm_b * dl);
    }
    default: {
        if (!roaring_bitmap_contains(p->docs, doc))
            return 0;
        double s = 0;
        for (size_t i = 0; i < p->n; i++)
            if (p->occ[i] != OCC_MUST_NOT)
                s += score(c, p->kids[i], doc);
        return s * p->boost;
    }
    }
}

/* ---- sorting and top-k ---- */

struct sort_key {
    int field; /* -1: score */
    bool desc;
};

struct hit {
    uint32_t id;
    double score;
    struct tbuf *keys; /* one per field sort key; NULL data = missing */
};

struct sorter {
    struct sort_key *k;
    size_t n;
};

static int cmp_hit(const struct sorter *s, const struct hit *a, const struct hit *b)
{
    for (size_t i = 0, f = 0; i < s->n; i++) {
        int c;
        if (s->k[i].field < 0)
            c = (a->score > b->score) - (a->score < b->score);
        else {
            const struct tbuf *x = &a->keys[f], *y = &b->keys[f];
            f++;
            if (!x->data || !y->data) { /* missing values sort last either way */
                if (x->data || y->data)
                    return x->data ? -1 : 1;
                continue;
            }
            c = memcmp(x->data, y->data, x->len < y->len ? x->len : y->len);
            if (!c)
                c = (x->len > y->len) - (x->len < y->len);
        }
        if (c)
            return s->k[i].desc ? -c : c;
    }
    return (a->id > b->id) - (a->id < b->id);
}

static int parse_sort(struct ctx *c, const char *spec, struct sorter *s)
{
    char *copy = xstrdup(spec && *spec ? spec : "score desc"), *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char name[128], dir[16] = "asc";
        if (sscanf(item, " %127s %15s", name, dir) < 1 ||
            (strcasecmp(dir, "asc") && strcasecmp(dir, "desc"))) {
            search_fail(c, "Can't determine a Sort Order (asc or desc) in sort spec '%s'", spec);
            break;
        }
        int f = strcmp(name, "score") == 0 ? -1 : search_find_field(c->sc, name);
        if (f < 0 && strcmp(name, "score")) {
            search_fail(c, "sort param field can't be found: %s", name);
            break;
        }
        s->k = xrealloc(s->k, (s->n + 1) * sizeof *s->k);
        s->k[s->n++] = (struct sort_key){f, !strcasecmp(dir, "desc")};
    }
    free(copy);
    return c->failed ? -1 : 0;
}

static size_t field_keys(const struct sorter *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        n += s->k[i].field >= 0;
    return n;
}

static void fill_keys(struct ctx *c, const struct sorter *s, struct hit *h)
{
    size_t nk = field_keys(s);
    if (!nk)
        return;
    h->keys = xcalloc(nk, sizeof *h->keys);
    if (!reader_doc_values(c->rd, h->id, c->vals))
        return;
    for (size_t i = 0, k = 0; i < s->n; i++) {
        if (s->k[i].field < 0)
            continue;
        const struct tis_field *f = &c->sc->fields[s->k[i].field];
        const struct tis_value *v = &c->vals[s->k[i].field];
        unsigned char t[40];
        size_t n;
        if (!v->null) {
            if (vtype_is_ordered(f->vt) && index_typed_term(f->vt, v->p, v->len, t, &n))
                tbuf_add(&h->keys[k], t, n);
            else
                tbuf_add(&h->keys[k], v->p, v->len);
        }
        k++;
    }
}

static void hit_free(const struct sorter *s, struct hit *h)
{
    for (size_t i = 0; h->keys && i < field_keys(s); i++)
        tbuf_free(&h->keys[i]);
    free(h->keys);
    h->keys = NULL;
}

/* A max-heap on the sort order: the root is the worst hit kept. */
struct heap {
    struct hit *h;
    size_t n, cap;
    const struct sorter *s;
    size_t key_bytes; /* the sort keys the kept hits hold */
};

static size_t hit_key_bytes(const struct sorter *s, const struct hit *h)
{
    size_t n = 0;
    for (size_t i = 0; h->keys && i < field_keys(s); i++)
        n += h->keys[i].len;
    return n;
}

static void heap_swap(struct heap *hp, size_t a, size_t b)
{
    struct hit t = hp->h[a];
    hp->h[a] = hp->h[b];
    hp->h[b] = t;
}

static void heap_down(struct heap *hp, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < hp->n && cmp_hit(hp->s, &hp->h[l], &hp->h[m]) > 0)
            m = l;
        if (r < hp->n && cmp_hit(hp->s, &hp->h[r], &hp->h[m]) > 0)
            m = r;
        if (m == i)
            return;
        heap_swap(hp, i, m);
        i = m;
    }
}

static void heap_offer(struct heap *hp, struct hit *h)
{
    if (hp->n < hp->cap) {
        size_t i = hp->n++;
        hp->key_bytes += hit_key_bytes(hp->s, h);
        hp->h[i] = *h;
        while (i && cmp_hit(hp->s, &hp->h[i], &hp->h[(i - 1) / 2]) > 0) {
            heap_swap(hp, i, (i - 1) / 2);
            i = (i - 1) / 2;
        }
    } else if (hp->cap && cmp_hit(hp->s, h, &hp->h[0]) < 0) {
        hp->key_bytes += hit_key_bytes(hp->s, h) - hit_key_bytes(hp->s, &hp->h[0]);
        hit_free(hp->s, &hp->h[0]);
        hp->h[0] = *h;
        heap_down(hp, 0);
    } else
        hit_free(hp->s, h);
}

static int cmp_hit_q(const void *a, const void *b, void *sorter)
{
    return cmp_hit(sorter, a, b);
}

/* ---- response ---- */

static bool fl_wants(const char *fl, const char *name)
{
    if (!fl || !*fl)
        return strcmp(name, "score") != 0;
    char *copy = xstrdup(fl), *save = NULL;
    bool r = false;
    for (char *t = strtok_r(copy, ", ", &save); t && !r; t = strtok_r(NULL, ", ", &save))
        r = strcasecmp(t, name) == 0 || (strcmp(t, "*") == 0 && strcmp(name, "score") != 0);
    free(copy);
    return r;
}

static struct json_object *render_doc(struct ctx *c, const char *fl, const struct hit *h)
{
    struct json_object *doc = reader_doc_json(c->rd, h->id), *out = json_object_new_object();
    if (doc) {
        json_object_object_foreach(doc, k, v) {
            if (fl_wants(fl, k))
                json_object_object_add(out, k, json_object_get(v));
        }
    }
    if (fl_wants(fl, "score"))
        json_object_object_add(out, "score", json_object_new_double(h->score));
    json_object_put(doc);
    return out;
}

/* ---- running ---- */

static roaring_bitmap_t *matches(struct ctx *c, const struct search_request *r, struct plan **qp)
{
    *qp = search_compile(c, r->q && *r->q ? r->q : "*:*", r->and_op);
    if (!*qp)
        return NULL;
    roaring_bitmap_t *docs = roaring_bitmap_copy((*qp)->docs);
    for (size_t i = 0; i < r->nfq && !c->failed; i++) {
        if (!*r->fq[i])
            continue;
        struct plan *f = search_compile(c, r->fq[i], r->and_op);
        if (f)
            roaring_bitmap_and_inplace(docs, f->docs);
        plan_free(f);
    }
    if (c->failed) {
        roaring_bitmap_free(docs);
        return NULL;
    }
    return docs;
}

/* MaxScore (Turtle and Flood; Lucene's MaxScoreBulkScorer): for a
 * disjunction ranked by score, each clause contributes at most its bound
 * (BM25's tf / (tf + norm) is below 1, so boost * idf). Once the k-th best
 * score reaches the sum of the smallest bounds, a document that matches only
 * those clauses cannot enter the top k (a tie loses: it has a larger id), so
 * the walk goes on over the documents of the other clauses only. Exact. */
struct maxscore {
    struct plan **kids; /* the SHOULD clauses, by bound ascending */
    double *prefix;     /* prefix[j]: sum of the bounds of kids[0..j) */
    size_t n, skipped;  /* kids[0..skipped) no longer drive the walk */
    const roaring_bitmap_t *docs;
    roaring_bitmap_t *cand;
};

static double clause_bound(const struct plan *p)
{
    /* A negative boost makes a clause's contribution negative: at most 0. */
    return p->kind == P_TERM ? fmax(0, p->boost * p->idf)
           : p->kind == P_CONST ? fmax(0, p->boost) : HUGE_VAL;
}

static int cmp_bound(const void *a, const void *b)
{
    double x = clause_bound(*(struct plan *const *)a), y = clause_bound(*(struct plan *const *)b);
    return (x > y) - (x < y);
}

/* Whether qp is a disjunction MaxScore can walk (its own boost >= 0). */
static bool maxscore_init(struct maxscore *m, struct plan *qp, const roaring_bitmap_t *docs)
{
    memset(m, 0, sizeof *m);
    if (qp->kind != P_BOOL || qp->boost < 0 || qp->n < 2)
        return false;
    for (size_t i = 0; i < qp->n; i++) {
        if (qp->occ[i] == OCC_MUST)
            return false;
        if (qp->occ[i] == OCC_SHOULD && !isfinite(clause_bound(qp->kids[i])))
            return false;
    }
    m->kids = xcalloc(qp->n, sizeof *m->kids);
    for (size_t i = 0; i < qp->n; i++)
        if (qp->occ[i] == OCC_SHOULD)
            m->kids[m->n++] = qp->kids[i];
    qsort(m->kids, m->n, sizeof *m->kids, cmp_bound);
    m->prefix = xcalloc(m->n + 1, sizeof *m->prefix);
    for (size_t j = 0; j < m->n; j++)
        m->prefix[j + 1] = m->prefix[j] + clause_bound(m->kids[j]) * qp->boost;
    m->docs = docs;
    return true;
}

/* Called with the k-th best score: true when the walk must move onto a
 * smaller set of documents (m->cand, from the next id on). */
static bool maxscore_raise(struct maxscore *m, double kth)
{
    size_t s = m->skipped;
    while (s + 1 < m->n && m->prefix[s + 1] <= kth)
        s++;
    if (s == m->skipped)
        return false;
    m->skipped = s;
    roaring_bitmap_t *u = roaring_bitmap_create();
    for (size_t j = s; j < m->n; j++)
        roaring_bitmap_or_inplace(u, m->kids[j]->docs);
    roaring_bitmap_and_inplace(u, m->docs);
    bm_free(m->cand);
    m->cand = u;
    return true;
}

static void maxscore_free(struct maxscore *m)
{
    free(m->kids);
    free(m->prefix);
    bm_free(m->cand);
}

/* Whether every matching document scores the same: a constant-score plan
 * (prefix, range, *:*), or a boolean whose one scoring clause is one. */
static bool constant_score(const struct plan *p)
{
    if (p->kind != P_BOOL)
        return p->kind == P_CONST;
    const struct plan *only = NULL;
    for (size_t i = 0; i < p->n; i++)
        if (p->occ[i] != OCC_MUST_NOT) {
            if (only)
                return false;
            only = p->kids[i];
        }
    return only && constant_score(only);
}

/* The hits of the page and those before it; false (with c->err) when
 * their text sort keys would need more than SEARCH_MAX_SORT_BYTES (a deep
 * start sorted by a long text field). */
static bool top_k(struct ctx *c, struct plan *qp, roaring_bitmap_t *docs,
                  const struct sorter *s, bool need_score, struct heap *hp)
{
    /* Ordered by score alone, ties by id: ids come in increasing order, so
     * a hit that does not beat the worst kept one loses, and when every hit
     * scores the same (a prefix, a range, *:*) the first k ids are the
     * answer. */
    bool by_score = s->n == 1 && s->k[0].field < 0 && s->k[0].desc;
    bool first_k = by_score && constant_score(qp);
    struct maxscore ms;
    bool pruning = by_score && hp->cap && maxscore_init(&ms, qp, docs);
    struct id_cursor *it = xmalloc(sizeof *it);
    id_cursor_start(it, docs);
    bool ok = true;
    for (size_t n = 0; ok && id_cursor_seek(it, 0) && !(first_k && n == hp->cap); it->i++, n++) {
        struct hit h = {it->buf[it->i], 0, NULL};
        if (need_score)
            h.score = score(c, qp, h.id);
        if (by_score && hp->n == hp->cap && (!hp->cap || h.score <= hp->h[0].score))
            continue;
        fill_keys(c, s, &h);
        heap_offer(hp, &h);
        if (pruning && hp->n == hp->cap && maxscore_raise(&ms, hp->h[0].score)) {
            id_cursor_start_at(it, ms.cand, h.id + 1);
            it->i--; /* the loop's step */
        }
        if (hp->key_bytes > SEARCH_MAX_SORT_BYTES) {
            search_fail(c, "sorting the first %zu rows by these fields needs more than %d MiB: ask for "
                    "a smaller start, or sort by a shorter field", hp->cap,
                 SEARCH_MAX_SORT_BYTES >> 20);
            ok = false;
        }
    }
    free(it);
    if (pruning)
        maxscore_free(&ms);
    /* qsort_r: queries run on concurrent FUSE threads, no shared state. */
    if (ok)
        qsort_r(hp->h, hp->n, sizeof *hp->h, cmp_hit_q, (void *)s);
    return ok;
}

/* The page [start, start + rows) of the ranked hits, as documents; false
 * (with c->err) when they would exceed SEARCH_MAX_ANSWER_BYTES. */
static bool collect(struct ctx *c, const struct search_request *r, roaring_bitmap_t *docs,
                    struct heap *hp, bool want_score, struct search_result *res)
{
    res->num_found = roaring_bitmap_get_cardinality(docs);
    res->scored = want_score;
    res->docs = json_object_new_array();
    for (size_t i = 0; i < hp->n; i++)
        res->max_score = hp->h[i].score > res->max_score ? hp->h[i].score : res->max_score;
    size_t bytes = 0;
    for (size_t i = (size_t)r->start; i < hp->n; i++) {
        struct json_object *d = render_doc(c, r->fl, &hp->h[i]);
        size_t n = 0;
        json_object_to_json_string_length(d, JSON_C_TO_STRING_PLAIN, &n);
        json_object_array_add(res->docs, d);
        if ((bytes += n) > SEARCH_MAX_ANSWER_BYTES) {
            search_fail(c, "the answer would exceed %d MiB at row %zu: ask for fewer rows, or fewer "
                    "fields with fl", SEARCH_MAX_ANSWER_BYTES >> 20, i - (size_t)r->start + 1);
            json_object_put(res->docs);
            res->docs = NULL;
            return false;
        }
    }
    return true;
}

static bool sort_uses_score(const struct sorter *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->k[i].field < 0)
            return true;
    return false;
}

int search_run(struct gen *g, const struct search_request *r, struct search_result *res,
               char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    err[0] = 0;
    struct ctx c = {.sc = gen_schema(g), .df = r->df, .err = err, .errlen = errlen};
    struct sorter s = {0};
    struct plan *qp = NULL;
    roaring_bitmap_t *docs = NULL;
    c.an = analyzer_new(err, errlen);
    c.failed = !c.an || !(c.rd = reader_open(g, err, errlen));
    if (!c.failed) {
        c.vals = xcalloc(c.sc->nfields, sizeof *c.vals);
        if (parse_sort(&c, r->sort, &s) == 0)
            docs = matches(&c, r, &qp);
    }
    bool want_score = fl_wants(r->fl, "score");
    if (docs) {
        size_t k = (size_t)(r->start + r->rows);
        struct heap hp = {xcalloc(k ? k : 1, sizeof(struct hit)), 0, r->rows ? k : 0, &s, 0};
        /* counting alone materialises nothing */
        bool ok = !r->rows || top_k(&c, qp, docs, &s, want_score || sort_uses_score(&s), &hp);
        if (!ok || !collect(&c, r, docs, &hp, want_score, res))
            bm_free(docs), docs = NULL; /* a 400 with c.err */
        for (size_t i = 0; i < hp.n; i++)
            hit_free(&s, &hp.h[i]);
        free(hp.h);
    } else if (!err[0])
        snprintf(err, errlen, "search failed");
    bm_free(docs);
    plan_free(qp);
    free(s.k);
    free(c.vals);
    reader_close(c.rd);
    analyzer_free(c.an);
    return docs ? 0 : -1;
}

void search_result_free(struct search_result *res)
{
    json_object_put(res->docs);
    memset(res, 0, sizeof *res);
}
