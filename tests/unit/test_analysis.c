/* Unit tests for the analyzers (src/analysis.c) on fixed inputs: English,
 * Chinese, mixed, full-width, emoji, empty; every token kind. */
#include "tisfs/analysis.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tisfs/util.h"

static struct analyzer *an;

static int join_token(void *arg, const char *t, size_t len, uint32_t pos)
{
    struct tbuf *b = arg;
    tbuf_printf(b, "%s%u:%.*s", b->len ? " " : "", pos, (int)len, t);
    return 0;
}

/* "pos:term pos:term ..." for text under tok. */
static char *tokens(enum tis_token tok, const char *text, int min, int max)
{
    static struct tbuf b;
    struct analysis_opts o = {min, max};
    tbuf_reset(&b);
    tbuf_add(&b, "", 0);
    analyze(an, tok, &o, text, strlen(text), join_token, &b);
    return b.data;
}

static void test_ik(void)
{
    CHECK_STR(tokens(TOK_IK, "Hello, World! It's e-mail.", 0, 0),
              "0:hello 1:world 2:it's 2:it 3:s 4:e 5:mail");
    CHECK_STR(tokens(TOK_IK, "ＦＵＬＬ ｗｉｄｔｈ １２３", 0, 0), "0:full 1:width 2:123");
    CHECK_STR(tokens(TOK_IK, "我爱北京天安门", 0, 0), "0:我 1:爱 2:北京 3:天安门");
    CHECK_STR(tokens(TOK_IK, "Mixed 中文 and English", 0, 0),
              "0:mixed 1:中文 2:and 3:english");
    CHECK_STR(tokens(TOK_IK, "emoji 😀 🎉 ok", 0, 0), "0:emoji 1:ok");
    CHECK_STR(tokens(TOK_IK, "", 0, 0), "");
    CHECK_STR(tokens(TOK_IK, "  ,;!  ", 0, 0), "");
    CHECK_STR(tokens(TOK_IK, "Straße ΣΊΣΥΦΟΣ", 0, 0), "0:strasse 1:σίσυφοσ");
    CHECK_STR(tokens(TOK_IK, "x86_64 3.14", 0, 0), "0:x86_64 0:x 1:86 2:64 3:3.14");
    /* Words as users expect: joined words also give their parts. */
    CHECK_STR(tokens(TOK_IK, "Boost.Python for python3", 0, 0),
              "0:boost.python 0:boost 1:python 2:for 3:python3 3:python 4:3");
    CHECK_STR(tokens(TOK_IK, "Python's foo_bar", 0, 0),
              "0:python's 0:python 1:s 2:foo_bar 2:foo 3:bar");
}

static void test_string_and_ws(void)
{
    CHECK_STR(tokens(TOK_STRING, "Foo Bar/Baz", 0, 0), "0:Foo Bar/Baz");
    CHECK_STR(tokens(TOK_TEXT_WS, "  Foo\tbar,  BAZ\n", 0, 0), "0:Foo 1:bar, 2:BAZ");
    CHECK_STR(tokens(TOK_TEXT_WS, "", 0, 0), "");
    CHECK_STR(tokens(TOK_TEXT_WS, "中文 字", 0, 0), "0:中文 1:字");
}

static void test_like(void)
{
    CHECK_STR(tokens(TOK_LIKE, "AbC", 0, 0), "0:a 0:ab 0:abc 1:b 1:bc 2:c");
    CHECK_STR(tokens(TOK_LIKE, "北京市", 2, 2), "0:北京 1:京市");
    CHECK_STR(tokens(TOK_LIKE, "ＡＢ", 1, 1), "0:a 1:b");
    CHECK_STR(tokens(TOK_LIKE, "", 0, 0), "");
    CHECK(like_contains(an, "Hello World", 11, "LO WO", 5));
    CHECK(!like_contains(an, "Hello World", 11, "low", 3));
    CHECK(like_contains(an, "北京天安门", strlen("北京天安门"), "天安", strlen("天安")));
}

static void test_pinyin(void)
{
    CHECK_STR(tokens(TOK_PINYIN, "中国", 0, 0), "0:中国 0:zhongguo 0:zg");
    CHECK_STR(tokens(TOK_PINYIN, "我爱北京", 0, 0), "0:我 0:wo 1:爱 1:ai 2:北京 2:beijing 2:bj");
    CHECK_STR(tokens(TOK_PINYIN, "Hello 世界", 0, 0), "0:hello 1:世界 1:shijie 1:sj");
}

static void test_fold(void)
{
    char *f = analysis_fold(an, "ＬＩＢ", strlen("ＬＩＢ"));
    CHECK_STR(f, "lib");
    free(f);
    CHECK(token_folds(TOK_IK) && token_folds(TOK_LIKE) && token_folds(TOK_PINYIN));
    CHECK(!token_folds(TOK_STRING) && !token_folds(TOK_TEXT_WS));
}

static void test_long_terms_are_cut(void)
{
    char big[1000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    char *t = tokens(TOK_STRING, big, 0, 0);
    CHECK(strlen(t) == 2 + TERM_MAX_BYTES);
}

/* The ASCII fast path gives exactly ICU's tokens and positions. */
static bool same_as_icu(enum tis_token tok, const char *text)
{
    char *fast = xstrdup(tokens(tok, text, 0, 0));
    analysis_icu_only(an, true);
    char *icu = tokens(tok, text, 0, 0);
    analysis_icu_only(an, false);
    bool same = strcmp(fast, icu) == 0;
    if (!same)
        printf("    %s: fast path [%s], ICU [%s]\n", text, fast, icu);
    free(fast);
    return same;
}

/* A text of min + (0..spread-1) random characters of alphabet into out. */
static void random_text(char *out, size_t min, size_t spread, const char *alphabet,
                        unsigned *seed)
{
    size_t na = strlen(alphabet), len = min + (*seed = *seed * 1103515245 + 12345) % spread;
    for (size_t k = 0; k < len; k++)
        out[k] = alphabet[((*seed = *seed * 1103515245 + 12345) >> 16) % na];
    out[len] = 0;
}

static void test_ascii_fast_path_is_icu(void)
{
    /* Every string of up to 4 characters over the classes that matter
     * (letters, digits, '_', the mid characters, space, others), then
     * longer random ones and real sentences. */
    static const char alphabet[] = "aZ1_.,;:' -@\n";
    size_t na = sizeof alphabet - 1, bad = 0, tried = 0;
    char text[16];
    for (size_t len = 1; len <= 4; len++) {
        size_t total = 1;
        for (size_t k = 0; k < len; k++)
            total *= na;
        for (size_t code = 0; code < total && bad < 5; code++, tried++) {
            size_t c = code;
            for (size_t k = 0; k < len; k++, c /= na)
                text[k] = alphabet[c % na];
            text[len] = 0;
            bad += !same_as_icu(TOK_IK, text);
        }
    }
    unsigned seed = 12345;
    for (int i = 0; i < 20000 && bad < 5; i++, tried++) {
        random_text(text, 5, 10, alphabet, &seed);
        bad += !same_as_icu(TOK_IK, text);
    }
    /* Longer ones: the fast path works on blocks of 64 characters, and a
     * word, or a '.' joining two, may straddle two blocks. */
    char longer[400];
    for (int i = 0; i < 3000 && bad < 5; i++, tried++) {
        random_text(longer, 60, 300, alphabet, &seed);
        bad += !same_as_icu(TOK_IK, longer);
    }
    static const char joins[] = "Boost.Python 1,000 it's a_b x86_64 3.14 e.g. a'b";
    for (size_t shift = 0; shift < 130 && bad < 5; shift++, tried++) {
        memset(longer, 'a', shift);
        longer[shift] = '\0';
        for (size_t k = 0; k < shift; k += 7)
            longer[k] = ' ';
        strcat(longer, joins);
        bad += !same_as_icu(TOK_IK, longer);
    }
    static const char *real[] = {
        "Boost.Python is a C++ library (version 1.74.0) for e-mail, python3 & foo_bar.",
        "It's 3.14; 1,000,000 users' data: x86_64 -- see http://example.org/a_b?c=d#e",
        "GTK+ 3.0 C# .NET node.js O'Reilly's 'quoted' \"double\" __init__ ___ _x x_",
        "tab\tnew\nline\r\ncarriage 12.34.56 a.b.c 1.a a.1 1_a a_1 1'2 a'b' 'a",
    };
    for (size_t i = 0; i < sizeof real / sizeof *real; i++, tried++) {
        bad += !same_as_icu(TOK_IK, real[i]);
        bad += !same_as_icu(TOK_PINYIN, real[i]);
    }
    CHECK(bad == 0);
    CHECK(tried > 40000);
}

int main(void)
{
    char err[256];
    an = analyzer_new(err, sizeof err);
    if (!CHECK(an != NULL)) {
        printf("%s\n", err);
        return check_summary();
    }
    test_ik();
    test_string_and_ws();
    test_like();
    test_pinyin();
    test_fold();
    test_long_terms_are_cut();
    test_ascii_fast_path_is_icu();
    analyzer_free(an);
    return check_summary();
}
