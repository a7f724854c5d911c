/* analysis — the tokenizers, the same at index and at query time (ICU).
 *
 *   string   the whole value is one term, exact (ids, codes)
 *   ik       Unicode word segmentation with ICU's dictionary for Chinese and
 *            Japanese and the Unicode word rules elsewhere, after NFKC case
 *            folding (so "ＦＵＬＬ" and "Full" give "full"); punctuation, spaces
 *            and emoji are dropped. A word ICU keeps whole across a joiner or
 *            a letter/digit change ("boost.python", "python's", "python3",
 *            "foo_bar") is also split into its letter and digit runs, the
 *            whole at the word's position and the runs at consecutive ones
 *            (IK's fine-grained mode), so "python" finds "Boost.Python"
 *   like     n-grams of minGramSize..maxGramSize characters (default 1..3) of
 *            the case-folded text, so that any substring can be looked up;
 *            a query longer than maxGramSize is answered from its grams and
 *            rechecked against the stored value (see like_contains)
 *   text_ws  split on white space only, no folding (Solr's text_ws)
 *   pinyin   as ik, and every word containing Han characters also yields its
 *            toneless pinyin ("中国" -> "zhongguo") and its initials ("zg"),
 *            at the same position, so both spellings find it
 *
 * An analyzer holds ICU objects that are not thread-safe: one per thread. */
#ifndef TISFS_ANALYSIS_H
#define TISFS_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tisfs/spec.h"

#define LIKE_MIN_GRAM_DEFAULT 1
#define LIKE_MAX_GRAM_DEFAULT 3
/* Terms longer than this many bytes are cut (LMDB keys are bounded). */
#define TERM_MAX_BYTES 400

struct analyzer;

struct analyzer *analyzer_new(char *err, size_t errlen);
void analyzer_free(struct analyzer *a);

/* Receives each token: bytes (UTF-8, not NUL-terminated) and its position
 * (tokens from one position share it). Return non-zero to stop. */
typedef int (*token_fn)(void *arg, const char *term, size_t len, uint32_t pos);

struct analysis_opts {
    int min_gram, max_gram; /* like: 0 = default */
};

/* Tokenizes text with tok (never TOK_DEFAULT). Returns the number of
 * positions (the field length used by BM25). */
uint32_t analyze(struct analyzer *a, enum tis_token tok, const struct analysis_opts *o,
                 const char *text, size_t len, token_fn fn, void *arg);

/* For tests: analyse ASCII through ICU too (the fast path is off). */
void analysis_icu_only(struct analyzer *a, bool on);

/* NFKC case folding of text without splitting it (query-side prefixes and
 * wildcards of folded fields). Returns a malloc'd string. */
char *analysis_fold(struct analyzer *a, const char *text, size_t len);

/* Whether tok folds case (ik, like, pinyin) so query terms must be folded. */
bool token_folds(enum tis_token tok);

/* The like recheck: does the folded value contain the folded needle? */
bool like_contains(struct analyzer *a, const char *value, size_t vlen, const char *needle,
                   size_t nlen);

#endif
