/* check.h — the few assertions the C unit tests share. Each test program
 * ends with check_summary(), which prints "N passed, M failed" and returns the
 * exit status.
 *
 * The check_*_() functions take the caller's file and line, so that helpers
 * of a test (a parse that must succeed, a round trip) report where they were
 * called from; the CHECK_*() macros pass their own. */
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

/* got equals want (a NULL got never does); on failure both are printed. */
static inline int check_str_(const char *got, const char *want, const char *file, int line,
                             const char *what)
{
    int ok = got && strcmp(got, want) == 0;
    if (!check_(ok, file, line, what))
        printf("    got:  %s\n    want: %s\n", got ? got : "(null)", want);
    return ok;
}

/* got contains needle (a NULL got never does). */
static inline int check_has_(const char *got, const char *needle, const char *file, int line,
                             const char *what)
{
    int ok = got && strstr(got, needle) != NULL;
    if (!check_(ok, file, line, what))
        printf("    got:  %s\n    want it to contain: %s\n", got ? got : "(null)", needle);
    return ok;
}

/* got does not contain needle (a NULL got fails all the same). */
static inline int check_lacks_(const char *got, const char *needle, const char *file, int line,
                               const char *what)
{
    int ok = got && strstr(got, needle) == NULL;
    if (!check_(ok, file, line, what))
        printf("    got:  %s\n    want it not to contain: %s\n", got ? got : "(null)", needle);
    return ok;
}

/* Two integers equal; on failure both are printed. */
static inline int check_int_(long long got, long long want, const char *file, int line,
                             const char *what)
{
    int ok = got == want;
    if (!check_(ok, file, line, what))
        printf("    got:  %lld\n    want: %lld\n", got, want);
    return ok;
}

#define CHECK(c) check_(!!(c), __FILE__, __LINE__, #c)
#define CHECK_STR(got, want) check_str_((got), (want), __FILE__, __LINE__, #got " == " #want)
#define CHECK_HAS(got, needle) check_has_((got), (needle), __FILE__, __LINE__, #got " has " #needle)
#define CHECK_LACKS(got, needle) \
    check_lacks_((got), (needle), __FILE__, __LINE__, #got " lacks " #needle)
#define CHECK_INT(got, want) check_int_((got), (want), __FILE__, __LINE__, #got " == " #want)

static inline int check_summary(void)
{
    printf("%d passed, %d failed\n", checks_passed, checks_failed);
    return checks_failed ? 1 : 0;
}

#endif
