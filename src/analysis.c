/* analysis — tokenizers over ICU (normalisation, word break, transliteration). */
#define _GNU_SOURCE
#include "tisfs/analysis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <unicode/ubrk.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/uscript.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>
#include <unicode/utf8.h>
#include <unicode/utrans.h>

#include "tisfs/util.h"

/* A growable UTF-16 buffer. */
struct ubuf {
    UChar *p;
    int32_t len, cap;
};

static void ubuf_reserve(struct ubuf *b, int32_t n)
{
    if (n <= b->cap)
        return;
    b->cap = n + n / 2 + 16;
    b->p = xrealloc(b->p, (size_t)b->cap * sizeof(UChar));
}

struct py_slot {
    UChar32 c;
    uint32_t off;
    uint8_t len;
    bool used;
};

struct analyzer {
    const UNormalizer2 *fold;
    UBreakIterator *words;
    UTransliterator *pinyin;
    struct ubuf raw, folded, tmp;
    struct tbuf utf8, py_full, py_init;
    struct tbuf masks; /* the ASCII fast path's word masks (ascii_scan) */
    struct py_slot *py_tab; /* syllable_cached */
    size_t py_cap, py_used;
    struct tbuf py_syl;
    bool icu_only; /* analysis_icu_only: no ASCII fast path */
};

struct analyzer *analyzer_new(char *err, size_t errlen)
{
    UErrorCode st = U_ZERO_ERROR;
    struct analyzer *a = xcalloc(1, sizeof *a);
    a->fold = unorm2_getNFKCCasefoldInstance(&st);
    if (U_SUCCESS(st))
        a->words = ubrk_open(UBRK_WORD, "zh", NULL, 0, &st);
    if (U_FAILURE(st)) {
        snprintf(err, errlen, "ICU: %s", u_errorName(st));
        analyzer_free(a);
        return NULL;
    }
    return a;
}

void analyzer_free(struct analyzer *a)
{
    if (!a)
        return;
    if (a->words)
        ubrk_close(a->words);
    if (a->pinyin)
        utrans_close(a->pinyin);
    free(a->raw.p);
    free(a->folded.p);
    free(a->tmp.p);
    tbuf_free(&a->utf8);
    tbuf_free(&a->masks);
    tbuf_free(&a->py_full);
    tbuf_free(&a->py_init);
    tbuf_free(&a->py_syl);
    free(a->py_tab);
    free(a);
}

bool token_folds(enum tis_token tok)
{
    return tok == TOK_IK || tok == TOK_LIKE || tok == TOK_PINYIN;
}

/* UTF-8 -> UTF-16 (invalid bytes become U+FFFD) -> NFKC casefold, into
 * a->folded. */
static bool fold16(struct analyzer *a, const char *text, size_t len)
{
    UErrorCode st = U_ZERO_ERROR;
    int32_t n = 0;
    if (len > INT32_MAX / 4)
        return false;
    ubuf_reserve(&a->raw, (int32_t)len + 1);
    u_strFromUTF8WithSub(a->raw.p, a->raw.cap, &n, text, (int32_t)len, 0xFFFD, NULL, &st);
    a->raw.len = n;
    st = U_ZERO_ERROR;
    ubuf_reserve(&a->folded, n * 3 + 16);
    a->folded.len = unorm2_normalize(a->fold, a->raw.p, n, a->folded.p, a->folded.cap, &st);
    if (st == U_BUFFER_OVERFLOW_ERROR) {
        st = U_ZERO_ERROR;
        ubuf_reserve(&a->folded, a->folded.len + 1);
        a->folded.len = unorm2_normalize(a->fold, a->raw.p, n, a->folded.p, a->folded.cap, &st);
    }
    return U_SUCCESS(st);
}

/* UTF-16 -> UTF-8 into a->utf8. */
static void to_utf8(struct analyzer *a, const UChar *s, int32_t n)
{
    UErrorCode st = U_ZERO_ERROR;
    int32_t out = 0;
    tbuf_reset(&a->utf8);
    tbuf_reserve(&a->utf8, (size_t)n * 3 + 1);
    u_strToUTF8WithSub(a->utf8.data, (int32_t)a->utf8.cap, &out, s, n, 0xFFFD, NULL, &st);
    a->utf8.len = U_SUCCESS(st) ? (size_t)out : 0;
}

static int emit(token_fn fn, void *arg, const char *p, size_t n, uint32_t pos)
{
    if (n > TERM_MAX_BYTES) {
        n = TERM_MAX_BYTES;
        while (n > 0 && ((unsigned char)p[n] & 0xC0) == 0x80) /* keep whole characters */
            n--;
    }
    return n ? fn(arg, p, n, pos) : 0;
}

static bool has_han(const UChar *s, int32_t n)
{
    for (int32_t i = 0; i < n;) {
        UChar32 c;
        U16_NEXT(s, i, n, c);
        UErrorCode st = U_ZERO_ERROR;
        if (uscript_getScript(c, &st) == USCRIPT_HAN)
            return true;
    }
    return false;
}

/* The transliterator is opened on first use: it costs more than the rest of
 * the analyzer together, and only pinyin fields need it. */
static bool pinyin_open(struct analyzer *a)
{
    if (!a->pinyin) {
        /* Latin-ASCII drops the tone marks: zhōng -> zhong. */
        static const UChar id[] = u"Han-Latin; Latin-ASCII";
        UErrorCode st = U_ZERO_ERROR;
        a->pinyin = utrans_openU(id, -1, UTRANS_FORWARD, NULL, 0, NULL, &st);
        if (U_FAILURE(st))
            a->pinyin = NULL;
    }
    return a->pinyin != NULL;
}

/* The toneless pinyin of one character (ASCII letters and digits, may be
 * empty) into a->utf8. */
static void syllable_of(struct analyzer *a, const UChar *s, int32_t n)
{
    UErrorCode st = U_ZERO_ERROR;
    ubuf_reserve(&a->tmp, 32);
    a->tmp.len = n;
    memcpy(a->tmp.p, s, (size_t)n * sizeof(UChar));
    int32_t limit = n;
    utrans_transUChars(a->pinyin, a->tmp.p, &a->tmp.len, a->tmp.cap, 0, &limit, &st);
    to_utf8(a, a->tmp.p, U_SUCCESS(st) ? a->tmp.len : 0);
    size_t k = 0;
    for (size_t i = 0; i < a->utf8.len; i++) {
        char ch = a->utf8.data[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
            a->utf8.data[k++] = ch;
    }
    a->utf8.len = k;
}

/* Each character is transliterated once per analyzer: a table of code
 * point -> syllable (offset and length into py_syl). */
static const char *syllable_cached(struct analyzer *a, const UChar *s, int32_t n, UChar32 c,
                                   size_t *len)
{
    if (a->py_used * 2 >= a->py_cap) {
        size_t cap = a->py_cap ? a->py_cap * 2 : 4096;
        struct py_slot *t = xcalloc(cap, sizeof *t);
        for (size_t i = 0; i < a->py_cap; i++)
            if (a->py_tab[i].used) {
                size_t h = (uint32_t)a->py_tab[i].c * 2654435761u & (cap - 1);
                while (t[h].used)
                    h = (h + 1) & (cap - 1);
                t[h] = a->py_tab[i];
            }
        free(a->py_tab);
        a->py_tab = t;
        a->py_cap = cap;
    }
    size_t h = (uint32_t)c * 2654435761u & (a->py_cap - 1);
    for (; a->py_tab[h].used; h = (h + 1) & (a->py_cap - 1))
        if (a->py_tab[h].c == c) {
            *len = a->py_tab[h].len;
            return a->py_syl.data + a->py_tab[h].off;
        }
    syllable_of(a, s, n);
    a->py_tab[h] = (struct py_slot){c, (uint32_t)a->py_syl.len, (uint8_t)a->utf8.len, true};
    tbuf_add(&a->py_syl, a->utf8.data, (uint8_t)a->utf8.len);
    a->py_used++;
    *len = (uint8_t)a->utf8.len;
    return a->py_syl.data + a->py_tab[h].off;
}

/* Pinyin of one word, syllable by syllable, into a->py_full and a->py_init. */
static void pinyin_of(struct analyzer *a, const UChar *s, int32_t n)
{
    tbuf_reset(&a->py_full);
    tbuf_reset(&a->py_init);
    if (!pinyin_open(a))
        return;
    for (int32_t i = 0; i < n;) {
        int32_t start = i;
        UChar32 c;
        U16_NEXT(s, i, n, c);
        size_t len;
        const char *syl = syllable_cached(a, s + start, i - start, c, &len);
        tbuf_add(&a->py_full, syl, len);
        if (len)
            tbuf_add(&a->py_init, syl, 1);
    }
}

/* Letters, digits, anything else (a joiner inside a word). */
static int char_class(UChar32 c)
{
    return u_isalpha(c) ? 1 : u_isdigit(c) ? 2 : 0;
}

/* The letter and digit runs of a word ("boost.python": boost, python;
 * "python3": python, 3; "python's": python, s), fed one character at a
 * time (the ICU path by code point in UTF-16, the ASCII one by byte), so
 * that both split words by one rule. */
#define MAX_PARTS 16
struct parts {
    int32_t starts[MAX_PARTS], ends[MAX_PARTS];
    int n, prev;
    bool letters, too_many;
};

/* The character at [at, end) of class cls (char_class) comes next. */
static void parts_add(struct parts *p, int cls, int32_t at, int32_t end)
{
    p->letters |= cls == 1;
    if (cls && cls == p->prev && p->n)
        p->ends[p->n - 1] = end;
    else if (cls && p->n < MAX_PARTS) {
        p->starts[p->n] = at;
        p->ends[p->n++] = end;
    } else if (cls)
        p->too_many = true;
    p->prev = cls;
}

/* The parts a word adds, 0 when it stays whole: a single run, a number
 * (3.14, 1,000), or too many parts to be a compound. */
static int parts_count(const struct parts *p)
{
    return p->too_many || p->n < 2 || !p->letters ? 0 : p->n;
}

/* A word joined by `.`, `'`, `_`, a letter/digit change...: as IK Analyzer's
 * fine-grained mode and Solr's word delimiter (preserveOriginal), the whole
 * word at pos and each part at pos, pos + 1, ... so that a phrase of parts
 * ("boost python") and the whole ("boost.python") both match. Returns the
 * positions used, 0 when the word has no parts to add. */
static uint32_t emit_parts(struct analyzer *a, const UChar *w, int32_t wn, uint32_t pos,
                           token_fn fn, void *arg, bool *stop)
{
    struct parts p = {0};
    for (int32_t i = 0; i < wn;) {
        int32_t at = i;
        UChar32 c;
        U16_NEXT(w, i, wn, c);
        parts_add(&p, char_class(c), at, i);
    }
    int np = parts_count(&p);
    for (int i = 0; i < np && !*stop; i++) {
        to_utf8(a, w + p.starts[i], p.ends[i] - p.starts[i]);
        *stop = emit(fn, arg, a->utf8.data, a->utf8.len, pos + (uint32_t)i) != 0;
    }
    return (uint32_t)np;
}

/* ---- the ASCII fast path ----
 * Most text of most tables is ASCII, where ICU's word rules (UAX #29 as ICU
 * tailors it) come down to a few classes and NFKC case folding to A-Z ->
 * a-z; ICU's iterator and normaliser cost more than everything else in a
 * build. For an all-ASCII value this gives exactly ICU's tokens (the unit
 * test compares the two on every short string of the classes below and on
 * real text; a fuzz target on random ones). */
enum wclass { W_OTHER, W_LETTER, W_DIGIT, W_EXTEND, W_MIDLETTER, W_MIDNUM, W_MIDNUMLET };

static inline enum wclass ascii_class_of(unsigned char c) /* (the scalar path's) */
{
    if (((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '@') /* ICU's ALetter has '@' */
        return W_LETTER;
    if (c >= '0' && c <= '9')
        return W_DIGIT;
    switch (c) {
    case '_':
        return W_EXTEND; /* ExtendNumLet */
    case '.': case '\'':
        return W_MIDNUMLET; /* MidNumLet, Single_Quote */
    case ',': case ';':
        return W_MIDNUM;
    default: /* ':' is MidLetter in UAX #29, but ICU's rules leave it out */
        return W_OTHER;
    }
}

static bool is_ascii(const char *p, size_t n)
{
    size_t i = 0;
    for (uint64_t x, any = 0; i + 8 <= n; i += 8) { /* 8 bytes at a time */
        memcpy(&x, p + i, 8);
        if ((any |= x) & 0x8080808080808080ULL)
            return false;
    }
    for (; i < n; i++)
        if ((unsigned char)p[i] >= 0x80)
            return false;
    return true;
}

/* ---- the ASCII fast path's word bounds, 64 characters at a time ----
 * The word rules come down to masks: a letter, digit or '_' is in a word
 * (WB5, 8-10, 13a/b), and so is a mid character between two letters
 * ('.', '\'': WB6/7) or two digits ('.', '\'', ',', ';': WB11/12). A
 * character-by-character loop mispredicted a branch at every word's end
 * (a fifth of the channel's decoding); with the masks a word is found by
 * bit scans. */
struct ascii_masks {
    uint64_t letter, digit, extend, midnumlet, midnum;
    uint64_t az; /* the letters but '@' */
};

#ifdef __SSE2__
/* Bit i of the result: byte i of the 16 is in [lo, lo + n) (n < 128). */
static inline unsigned byte_range16(__m128i c, unsigned char lo, unsigned char n)
{
    __m128i x = _mm_sub_epi8(c, _mm_set1_epi8((char)(lo + 128)));
    return (unsigned)_mm_movemask_epi8(_mm_cmplt_epi8(x, _mm_set1_epi8((char)(-128 + n))));
}

static inline unsigned byte_eq16(__m128i c, char ch)
{
    return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(c, _mm_set1_epi8(ch)));
}
#endif

/* The classes of s[0..64) (all ASCII) and the same bytes case-folded into
 * out. */
static void ascii_block(const unsigned char *s, unsigned char *out, struct ascii_masks *m)
{
    *m = (struct ascii_masks){0};
#ifdef __SSE2__
    for (int k = 0; k < 4; k++) {
        __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(s + 16 * k));
        __m128i up = _mm_cmplt_epi8(_mm_sub_epi8(c, _mm_set1_epi8((char)('A' + 128))),
                                    _mm_set1_epi8((char)(-128 + 26)));
        unsigned upper = (unsigned)_mm_movemask_epi8(up);
        _mm_storeu_si128((__m128i *)(void *)(out + 16 * k),
                         _mm_or_si128(c, _mm_and_si128(up, _mm_set1_epi8(0x20))));
        uint64_t at = 16 * (unsigned)k;
        uint64_t az = upper | byte_range16(c, 'a', 26);
        m->az |= az << at;
        m->letter |= (az | byte_eq16(c, '@')) << at;
        m->digit |= (uint64_t)byte_range16(c, '0', 10) << at;
        m->extend |= (uint64_t)byte_eq16(c, '_') << at;
        m->midnumlet |= (uint64_t)(byte_eq16(c, '.') | byte_eq16(c, '\'')) << at;
        m->midnum |= (uint64_t)(byte_eq16(c, ',') | byte_eq16(c, ';')) << at;
    }
#else
    for (unsigned i = 0; i < 64; i++) {
        enum wclass c = ascii_class_of(s[i]);
        uint64_t bit = 1ULL << i;
        out[i] = s[i] >= 'A' && s[i] <= 'Z' ? s[i] | 0x20 : s[i];
        m->letter |= c == W_LETTER ? bit : 0;
        m->az |= c == W_LETTER && s[i] != '@' ? bit : 0;
        m->digit |= c == W_DIGIT ? bit : 0;
        m->extend |= c == W_EXTEND ? bit : 0;
        m->midnumlet |= c == W_MIDNUMLET ? bit : 0;
        m->midnum |= c == W_MIDNUM ? bit : 0;
    }
#endif
}

/* Block b of text (zero past len: no class), folded, into a->utf8 and m. */
static void ascii_block_at(struct analyzer *a, const char *text, size_t len, size_t b,
                           struct ascii_masks *m)
{
    const unsigned char *s = (const unsigned char *)text + 64 * b;
    unsigned char *out = (unsigned char *)a->utf8.data + 64 * b, pad[64];
    if (len - 64 * b < 64) {
        memset(pad, 0, sizeof pad);
        memcpy(pad, s, len - 64 * b);
        s = pad;
    }
    ascii_block(s, out, m);
}

/* The folded text into a->utf8 (64-byte blocks, zero-padded) and, per
 * block, the mask of characters in words and after them (nb on) the mask
 * of those among them that are not letters a-z (a word of only a-z has no
 * parts). */
static size_t ascii_scan(struct analyzer *a, const char *text, size_t len)
{
    size_t nb = (len + 63) / 64;
    tbuf_reset(&a->utf8);
    tbuf_reserve(&a->utf8, nb * 64);
    tbuf_reset(&a->masks);
    tbuf_reserve(&a->masks, nb * 2 * sizeof(uint64_t));
    uint64_t *in = (uint64_t *)(void *)a->masks.data, *nl = in + nb;
    struct ascii_masks prev = {0}, cur, next = {0};
    if (nb)
        ascii_block_at(a, text, len, 0, &cur);
    for (size_t b = 0; b < nb; b++) {
        if (b + 1 < nb)
            ascii_block_at(a, text, len, b + 1, &next);
        else
            next = (struct ascii_masks){0};
        uint64_t lp = cur.letter << 1 | prev.letter >> 63, ln = cur.letter >> 1 | next.letter << 63;
        uint64_t dp = cur.digit << 1 | prev.digit >> 63, dn = cur.digit >> 1 | next.digit << 63;
        uint64_t join = (cur.midnumlet & ((lp & ln) | (dp & dn))) | (cur.midnum & dp & dn);
        in[b] = cur.letter | cur.digit | cur.extend | join;
        nl[b] = in[b] & ~cur.az;
        prev = cur;
        cur = next;
    }
    a->utf8.len = len;
    return nb;
}

/* The first i' >= i whose bit in bits[0..nb) is set (or clear, as set
 * says); 64 * nb when none is. */
static size_t bit_next(const uint64_t *bits, size_t nb, size_t i, bool set)
{
    size_t w = i / 64;
    if (w >= nb)
        return 64 * nb;
    uint64_t x = (set ? bits[w] : ~bits[w]) & (~0ULL << (i % 64));
    while (!x) {
        if (++w == nb)
            return 64 * nb;
        x = set ? bits[w] : ~bits[w];
    }
    return 64 * w + (size_t)__builtin_ctzll(x);
}

/* As emit_parts, on folded ASCII (bytes are characters; u_isalpha and
 * u_isdigit are a-z and 0-9 there). */
static uint32_t ascii_parts(const char *w, size_t n, uint32_t pos, token_fn fn, void *arg,
                            bool *stop)
{
    struct parts p = {0};
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)w[i];
        parts_add(&p, ch >= 'a' && ch <= 'z' ? 1 : ch >= '0' && ch <= '9' ? 2 : 0, (int32_t)i,
                  (int32_t)i + 1);
    }
    int np = parts_count(&p);
    for (int i = 0; i < np && !*stop; i++)
        *stop = emit(fn, arg, w + p.starts[i], (size_t)(p.ends[i] - p.starts[i]),
                     pos + (uint32_t)i) != 0;
    return (uint32_t)np;
}

static uint32_t analyze_ascii(struct analyzer *a, const char *text, size_t len, token_fn fn,
                              void *arg)
{
    size_t nb = ascii_scan(a, text, len);
    const uint64_t *in = (const uint64_t *)(const void *)a->masks.data, *nl = in + nb;
    const char *folded = a->utf8.data;
    uint32_t pos = 0;
    for (size_t i = bit_next(in, nb, 0, true); i < len; i = bit_next(in, nb, i, true)) {
        size_t end = bit_next(in, nb, i, false);
        const char *w = folded + i;
        size_t n = end - i;
        bool letters = bit_next(nl, nb, i, true) >= end; /* only letters: one part, none to add */
        i = end;
        if (n == 1 && w[0] == '_')
            continue; /* ICU: a lone '_' has no word status, "__" has */
        if (emit(fn, arg, w, n, pos))
            return pos + 1;
        if (letters) {
            pos++;
            continue;
        }
        bool stop = false;
        uint32_t parts = ascii_parts(w, n, pos, fn, arg, &stop);
        if (stop)
            return pos + parts;
        pos += parts ? parts : 1;
    }
    return pos;
}

void analysis_icu_only(struct analyzer *a, bool on)
{
    a->icu_only = on;
}

static uint32_t analyze_words(struct analyzer *a, bool pinyin, const char *text, size_t len,
                              token_fn fn, void *arg)
{
    if (!a->icu_only && is_ascii(text, len))
        return analyze_ascii(a, text, len, fn, arg);
    UErrorCode st = U_ZERO_ERROR;
    uint32_t pos = 0;
    if (!fold16(a, text, len))
        return 0;
    ubrk_setText(a->words, a->folded.p, a->folded.len, &st);
    if (U_FAILURE(st))
        return 0;
    int32_t start = ubrk_first(a->words);
    for (int32_t end = ubrk_next(a->words); end != UBRK_DONE;
         start = end, end = ubrk_next(a->words)) {
        if (ubrk_getRuleStatus(a->words) < UBRK_WORD_NONE_LIMIT)
            continue; /* spaces, punctuation, symbols, emoji */
        const UChar *w = a->folded.p + start;
        int32_t wn = end - start;
        to_utf8(a, w, wn);
        if (emit(fn, arg, a->utf8.data, a->utf8.len, pos))
            return pos + 1;
        if (pinyin && has_han(w, wn)) {
            pinyin_of(a, w, wn);
            if (emit(fn, arg, a->py_full.data, a->py_full.len, pos) ||
                (a->py_init.len > 1 && emit(fn, arg, a->py_init.data, a->py_init.len, pos)))
                return pos + 1;
        }
        bool stop = false;
        uint32_t parts = emit_parts(a, w, wn, pos, fn, arg, &stop);
        if (stop)
            return pos + parts;
        pos += parts ? parts : 1;
    }
    return pos;
}

static uint32_t analyze_grams(struct analyzer *a, const struct analysis_opts *o, const char *text,
                              size_t len, token_fn fn, void *arg)
{
    int lo = o && o->min_gram ? o->min_gram : LIKE_MIN_GRAM_DEFAULT;
    int hi = o && o->max_gram ? o->max_gram : LIKE_MAX_GRAM_DEFAULT;
    if (!fold16(a, text, len))
        return 0;
    to_utf8(a, a->folded.p, a->folded.len);
    /* Byte offsets of each character's start in the folded UTF-8. */
    const char *s = a->utf8.data;
    size_t n = a->utf8.len;
    uint32_t pos = 0;
    for (size_t i = 0; i < n; pos++) {
        size_t j = i;
        for (int g = 1; g <= hi && j < n; g++) {
            j++;
            while (j < n && ((unsigned char)s[j] & 0xC0) == 0x80)
                j++;
            if (g >= lo && fn(arg, s + i, j - i, pos))
                return pos + 1;
        }
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
    }
    return pos;
}

static uint32_t analyze_ws(const char *text, size_t len, token_fn fn, void *arg)
{
    uint32_t pos = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && strchr(" \t\n\r\f\v", text[i]))
            i++;
        size_t j = i;
        while (j < len && !strchr(" \t\n\r\f\v", text[j]))
            j++;
        if (j > i && emit(fn, arg, text + i, j - i, pos++))
            return pos;
        i = j;
    }
    return pos;
}

uint32_t analyze(struct analyzer *a, enum tis_token tok, const struct analysis_opts *o,
                 const char *text, size_t len, token_fn fn, void *arg)
{
    switch (tok) {
    case TOK_STRING:
        return emit(fn, arg, text, len, 0), 1;
    case TOK_TEXT_WS:
        return analyze_ws(text, len, fn, arg);
    case TOK_LIKE:
        return analyze_grams(a, o, text, len, fn, arg);
    case TOK_PINYIN:
        return analyze_words(a, true, text, len, fn, arg);
    case TOK_IK:
    default:
        return analyze_words(a, false, text, len, fn, arg);
    }
}

char *analysis_fold(struct analyzer *a, const char *text, size_t len)
{
    if (!fold16(a, text, len))
        return xstrndup(text, len);
    to_utf8(a, a->folded.p, a->folded.len);
    return xstrndup(a->utf8.data, a->utf8.len);
}

bool like_contains(struct analyzer *a, const char *value, size_t vlen, const char *needle,
                   size_t nlen)
{
    char *v = analysis_fold(a, value, vlen), *n = analysis_fold(a, needle, nlen);
    bool r = memmem(v, strlen(v), n, strlen(n)) != NULL;
    free(v);
    free(n);
    return r;
}
