/* query — the Lucene/Solr standard query syntax, parsed into a tree.
 *
 * Accepted: terms, field:term, "phrases", AND OR NOT && || ! + -, parentheses,
 * field:(a b), prefix abc*, wildcards ? and * inside terms, ranges [a TO b]
 * {a TO b} with * for an open end, field:*, *:*, boosts ^2, backslash
 * escaping. Clauses combine as Lucene's classic QueryParser combines them
 * (AND binds its neighbours as required; q.op picks the default occur).
 * Errors name the position (1-based column) and what was found. */
#ifndef TISFS_QUERY_H
#define TISFS_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#define QUERY_MAX_DEPTH 32
#define QUERY_MAX_CLAUSES 1024

enum qkind { Q_TERM, Q_PHRASE, Q_PREFIX, Q_WILDCARD, Q_RANGE, Q_EXISTS, Q_ALL, Q_BOOL };
enum qoccur { OCC_SHOULD, OCC_MUST, OCC_MUST_NOT };

struct qnode;

struct qclause {
    enum qoccur occur;
    struct qnode *q;
};

struct qnode {
    enum qkind kind;
    char *field; /* NULL: the default field(s) */
    char *text;  /* term, phrase, prefix (without '*'), wildcard pattern */
    char *lo, *hi; /* range bounds, NULL for '*' */
    bool incl_lo, incl_hi;
    float boost;
    struct qclause *clauses; /* Q_BOOL */
    size_t nclauses;
};

/* Parses q. and_default: q.op=AND. Returns NULL with err "… at column N". */
struct qnode *query_parse(const char *q, bool and_default, char *err, size_t errlen);
void query_free(struct qnode *n);
/* A canonical rendering for tests and debugging: +f:a -g:"b c" (x y)^2 ... */
void query_dump(const struct qnode *n, char *buf, size_t len);

#endif
