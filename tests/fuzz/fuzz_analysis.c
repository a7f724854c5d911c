/* libFuzzer target for the analyzers (src/analysis.c): any bytes go through
 * every tokenizer without a crash, and for ASCII input the fast path of ik
 * and pinyin gives exactly the tokens and positions ICU gives. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tisfs/analysis.h"
#include "tisfs/util.h"

static int join(void *arg, const char *t, size_t len, uint32_t pos)
{
    struct tbuf *b = arg;
    tbuf_printf(b, "%u:%.*s|", pos, (int)len, t);
    return 0;
}

static void check(struct analyzer *an, const char *text, size_t size)
{
    struct analysis_opts o = {1, 3};
    static const enum tis_token all[] = {TOK_STRING, TOK_IK, TOK_LIKE, TOK_TEXT_WS, TOK_PINYIN};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        struct tbuf fast = {0}, icu = {0};
        uint32_t nf = analyze(an, all[i], &o, text, size, join, &fast);
        analysis_icu_only(an, true);
        uint32_t ni = analyze(an, all[i], &o, text, size, join, &icu);
        analysis_icu_only(an, false);
        if (nf != ni || fast.len != icu.len || (fast.len && memcmp(fast.data, icu.data, fast.len))) {
            fprintf(stderr, "fast path [%.*s] (%u) != ICU [%.*s] (%u)\n", (int)fast.len,
                    fast.data ? fast.data : "", nf, (int)icu.len, icu.data ? icu.data : "", ni);
            abort();
        }
        tbuf_free(&fast);
        tbuf_free(&icu);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct analyzer *an;
    char err[256];
    if (!an && !(an = analyzer_new(err, sizeof err)))
        abort();
    check(an, (const char *)data, size);
    char *ascii = malloc(size + 1); /* the same bytes made ASCII: the fast path */
    for (size_t i = 0; i < size; i++)
        ascii[i] = (char)(data[i] & 0x7F);
    check(an, ascii, size);
    free(ascii);
    return 0;
}
