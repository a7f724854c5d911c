/* check.h — the few assertions the C unit tests share. Each test program
 * ends with check_summary(), which prints "N passed, M failed" and returns the
 * exit status. */
#ifndef TISFS_TEST_CHECK_H
#define TISFS_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int checks_passed, checks_failed;

static inline int check_(int ok, const char *file, int line, const char *what)
{
    if (ok)
        checks_passed++;
    else {
        checks_failed++;
        printf("%s:%d: FAILED: %s\n", file, line, what);
    }
    return ok;
}

#define CHECK(c) check_(!!(c), __FILE__, __LINE__, #c)
#define CHECK_STR(got, want)                                                                  \
    do {                                                                                      \
        const char *g_ = (got), *w_ = (want);                                                 \
        if (!check_(g_ && strcmp(g_, w_) == 0, __FILE__, __LINE__, #got " == " #want))        \
            printf("    got:  %s\n    want: %s\n", g_ ? g_ : "(null)", w_);                   \
    } while (0)

static inline int check_summary(void)
{
    printf("%d passed, %d failed\n", checks_passed, checks_failed);
    return checks_failed ? 1 : 0;
}

#endif
