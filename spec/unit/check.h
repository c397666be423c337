/* check.h: the assertion kit of the C unit tests in spec/unit.
 *
 * Each test is one .c file built into its own executable, so the counters
 * below are file-static: include this header from exactly that one file.
 * A check never stops the test; it counts a pass or a failure, and a failure
 * prints one line to stderr:
 *
 *     spec/unit/test_x.c:42: [case] what: expected E, got A
 *
 * "[case] " appears while current_case is a non-empty string. main() ends
 * with `return check_summary();`, which prints "N passed, M failed".
 *
 * Macros (each counts exactly one check):
 *   CHECK_INT(expected, actual)   integers, compared as long long
 *   CHECK(expected, actual)       the same as CHECK_INT; the short name the
 *                                 HTTP tests use at hundreds of call sites
 *   CHECK_U64(expected, actual)   unsigned 64-bit, printed in hex (hashes)
 *   CHECK_RANGE(lo, hi, actual)   lo <= actual <= hi (timings)
 *   CHECK_TRUE(cond)              cond is true (non-zero)
 *   CHECK_PTR(expected, actual)   pointer identity
 *   CHECK_NULL(actual)            actual is a NULL pointer
 *   CHECK_NOT_NULL(actual)        actual is not NULL
 *   CHECK_STR(expected, actual)   NUL-terminated strings; expected NULL
 *                                 means actual must be NULL
 *   CHECK_MEM(expected, ptr, len) the len bytes at ptr are exactly the string
 *                                 expected; expected NULL means ptr is NULL
 *   CHECK_FAIL(fmt, ...)          an unconditional failure, printf-style
 *
 * Helpers that check on behalf of their caller take the caller's file and
 * line and call the check_*() functions directly, so a failure points at the
 * test line rather than into the helper. */
#ifndef SLUICE_SPEC_CHECK_H
#define SLUICE_SPEC_CHECK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

/* A label for the table row or scenario under test, shown in failures so
 * that one CHECK line inside a loop still says which row broke. */
static const char *current_case = "";

/* Where failures go; NULL means stderr. A test that captures its own stderr
 * (test_redis reads the module's log from it) points this elsewhere. */
static FILE *check_output;

/* Strings longer than this are cut in failure lines: a failed check on a
 * 256 KiB body must not bury the rest of the report. */
#define CHECK_SHOW_MAX 1000

static inline FILE *check_fail_start(const char *file, int line)
{
    FILE *out = check_output ? check_output : stderr;
    check_failed++;
    fprintf(out, "%s:%d: ", file, line);
    if (current_case && current_case[0])
        fprintf(out, "[%s] ", current_case);
    return out;
}

/* The one place a check is counted; the message is printed on failure only. */
__attribute__((format(printf, 4, 5)))
static inline bool check_report(const char *file, int line, bool ok, const char *fmt, ...)
{
    if (ok) {
        check_passed++;
        return true;
    }
    FILE *out = check_fail_start(file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
    return false;
}

static inline bool check_true(const char *file, int line, const char *what, bool ok)
{
    return check_report(file, line, ok, "expected true: %s", what);
}

static inline bool check_int(const char *file, int line, const char *what, long long expected,
                             long long actual)
{
    return check_report(file, line, expected == actual, "%s: expected %lld, got %lld", what, expected,
                        actual);
}

static inline bool check_u64(const char *file, int line, const char *what, unsigned long long expected,
                             unsigned long long actual)
{
    return check_report(file, line, expected == actual, "%s: expected 0x%016llx, got 0x%016llx", what,
                        expected, actual);
}

static inline bool check_range(const char *file, int line, const char *what, long long lo, long long hi,
                               long long actual)
{
    return check_report(file, line, actual >= lo && actual <= hi, "%s: expected %lld..%lld, got %lld", what,
                        lo, hi, actual);
}

static inline bool check_ptr(const char *file, int line, const char *what, const void *expected,
                             const void *actual)
{
    return check_report(file, line, expected == actual, "%s: expected %p, got %p", what, expected, actual);
}

/* Control bytes are escaped so that "a\r\n" and "a\n" differ visibly; other
 * bytes (UTF-8 included) are shown as they are. */
static inline void check_show(FILE *out, const char *s, size_t len)
{
    if (!s) {
        fputs("NULL", out);
        return;
    }
    fputc('"', out);
    for (size_t i = 0; i < len && i < CHECK_SHOW_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", out);
        else if (c == '\r')
            fputs("\\r", out);
        else if (c == '\t')
            fputs("\\t", out);
        else if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
    if (len > CHECK_SHOW_MAX)
        fprintf(out, "... (%zu bytes)", len);
}

static inline bool check_mem(const char *file, int line, const char *what, const char *expected,
                             const char *ptr, size_t len)
{
    bool ok = expected ? ptr != NULL && len == strlen(expected) && memcmp(ptr, expected, len) == 0
                       : ptr == NULL;
    if (ok) {
        check_passed++;
        return true;
    }
    FILE *out = check_fail_start(file, line);
    fprintf(out, "%s: expected ", what);
    check_show(out, expected, expected ? strlen(expected) : 0);
    fputs(", got ", out);
    check_show(out, ptr, len);
    fputc('\n', out);
    return false;
}

static inline bool check_str(const char *file, int line, const char *what, const char *expected,
                             const char *actual)
{
    return check_mem(file, line, what, expected, actual, actual ? strlen(actual) : 0);
}

/* Prints the totals the test runners read and gives main() its exit code. */
static inline int check_summary(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#define CHECK_INT(expected, actual) \
    check_int(__FILE__, __LINE__, #actual, (long long)(expected), (long long)(actual))
#define CHECK(expected, actual) \
    check_int(__FILE__, __LINE__, #actual, (long long)(expected), (long long)(actual))
#define CHECK_U64(expected, actual) check_u64(__FILE__, __LINE__, #actual, (expected), (actual))
#define CHECK_RANGE(lo, hi, actual) \
    check_range(__FILE__, __LINE__, #actual, (long long)(lo), (long long)(hi), (long long)(actual))
#define CHECK_TRUE(cond) check_true(__FILE__, __LINE__, #cond, (cond))
#define CHECK_PTR(expected, actual) check_ptr(__FILE__, __LINE__, #actual, (expected), (actual))
#define CHECK_NULL(actual) check_ptr(__FILE__, __LINE__, #actual, NULL, (actual))
#define CHECK_NOT_NULL(actual) check_true(__FILE__, __LINE__, #actual " != NULL", (actual) != NULL)
#define CHECK_STR(expected, actual) check_str(__FILE__, __LINE__, #actual, (expected), (actual))
#define CHECK_MEM(expected, ptr, len) check_mem(__FILE__, __LINE__, #ptr, (expected), (ptr), (len))
#define CHECK_FAIL(...) check_report(__FILE__, __LINE__, false, __VA_ARGS__)

#endif
