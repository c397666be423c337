#include "redact.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct out {
    char *s;
    size_t len, cap;
    bool failed;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *p = realloc(o->s, cap);
        if (!p) {
            o->failed = true;
            return;
        }
        o->s = p;
        o->cap = cap;
    }
    memcpy(o->s + o->len, s, n);
    o->len += n;
    o->s[o->len] = '\0';
}

static void put_str(out_t *o, const char *s) { put(o, s, strlen(s)); }

/* ASCII classes on purpose: the text is UTF-8 and the C library's classes
 * would depend on the locale. */
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_alnum(char c) { return is_digit(c) || is_alpha(c); }

/* ------------------------------------------------------------ e-mail */

static bool is_local_char(char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static bool is_domain_char(char c) { return is_alnum(c) || c == '.' || c == '-'; }

/* Labels joined by dots, at least two, none empty, the last one 2+ letters. */
static bool domain_ok(const char *d, size_t n)
{
    if (n == 0 || d[0] == '.' || d[0] == '-')
        return false;
    size_t dots = 0, label_start = 0;
    for (size_t i = 0; i < n; i++) {
        if (d[i] != '.')
            continue;
        if (i == label_start)
            return false;
        dots++;
        label_start = i + 1;
    }
    if (dots == 0 || n - label_start < 2)
        return false;
    for (size_t i = label_start; i < n; i++)
        if (!is_alpha(d[i]))
            return false;
    return true;
}

static int pass_email(const char *t, size_t n, out_t *o)
{
    int count = 0;
    size_t verbatim_from = 0;   /* output since here is a 1:1 copy of input */
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '@') {
            size_t s = i;
            while (s > verbatim_from && is_local_char(t[s - 1]))
                s--;
            size_t e = i + 1;
            while (e < n && is_domain_char(t[e]))
                e++;
            while (e > i + 1 && (t[e - 1] == '.' || t[e - 1] == '-'))
                e--;   /* "write to a@b.com." ends the sentence, not the address */
            if (s < i && domain_ok(t + i + 1, e - i - 1)) {
                o->len -= i - s;   /* the local part went out already */
                put_str(o, REDACTED_EMAIL);
                count++;
                verbatim_from = e;
                i = e - 1;
                continue;
            }
        }
        put(o, t + i, 1);
    }
    return count;
}

/* ------------------------------------------------------------ cards */

int redact_luhn_ok(const char *digits, size_t n)
{
    int sum = 0;
    for (size_t k = 0; k < n; k++) {
        int d = digits[n - 1 - k] - '0';
        if (k % 2 == 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return sum % 10 == 0;
}

static bool is_card_sep(char c) { return c == ' ' || c == '-'; }

/* Where the next group of a run starts (after one separator), or 0. */
static size_t next_group(const char *t, size_t n, size_t group_end)
{
    if (group_end + 1 < n && is_card_sep(t[group_end]) && is_digit(t[group_end + 1]))
        return group_end + 1;
    return 0;
}

/* The end of the longest stretch of whole groups starting at g that holds
 * 13 to 19 digits and passes Luhn; 0 when there is none. */
static size_t card_at(const char *t, size_t n, size_t g)
{
    char digits[19];
    size_t count = 0, ends[20] = {0}, counts[20] = {0};
    int found = 0;
    for (;;) {
        size_t e = g;
        while (e < n && is_digit(t[e])) {
            if (count == sizeof digits)
                goto done;   /* past 19 digits: no longer stretch can be a card */
            digits[count++] = t[e++];
        }
        if (count >= 13) {
            ends[found] = e;
            counts[found] = count;
            found++;
        }
        g = next_group(t, n, e);
        if (!g)
            break;
    }
done:
    for (int k = found - 1; k >= 0; k--)
        if (redact_luhn_ok(digits, counts[k]))
            return ends[k];
    return 0;
}

static int pass_card(const char *t, size_t n, out_t *o)
{
    int count = 0;
    size_t i = 0;
    while (i < n) {
        if (!is_digit(t[i])) {
            put(o, t + i, 1);
            i++;
            continue;
        }
        /* "+44 20 7946 0958 123" is a phone number, whatever Luhn says */
        bool after_plus = i > 0 && t[i - 1] == '+';
        size_t g = i;
        for (;;) {
            size_t card_end = after_plus ? 0 : card_at(t, n, g);
            size_t resume;
            if (card_end) {
                put_str(o, REDACTED_CARD);
                count++;
                resume = card_end;
            } else {
                resume = g;
                while (resume < n && is_digit(t[resume]))
                    resume++;
                put(o, t + g, resume - g);
            }
            size_t next = next_group(t, n, resume);
            if (!next) {
                i = resume;
                break;
            }
            put(o, t + resume, 1);
            g = next;
        }
    }
    return count;
}

/* ------------------------------------------------------------ phones */

static bool is_phone_sep(char c) { return c == ' ' || c == '-' || c == '.'; }

static size_t digits_at(const char *t, size_t n, size_t j)
{
    size_t e = j;
    while (e < n && is_digit(t[e]))
        e++;
    return e - j;
}

/* "+" then groups of digits or "(digits)", separated by at most one space,
 * dash or dot; 8 to 15 digits in all. The end, or 0. */
static size_t intl_phone(const char *t, size_t n, size_t i)
{
    size_t j = i + 1, digits = 0, end = 0;
    if (j >= n || !is_digit(t[j]))
        return 0;
    for (;;) {
        size_t k = digits_at(t, n, j);
        if (k) {
            digits += k;
            j += k;
        } else if (t[j] == '(' && (k = digits_at(t, n, j + 1)) > 0 && j + 1 + k < n && t[j + 1 + k] == ')') {
            digits += k;
            j += k + 2;
        } else {
            break;
        }
        end = j;
        if (digits > 15)
            return 0;
        if (j < n && is_phone_sep(t[j]) && j + 1 < n && (is_digit(t[j + 1]) || t[j + 1] == '('))
            j++;
        else if (!(j < n && (t[j] == '(' || is_digit(t[j]))))
            break;
    }
    return digits >= 8 ? end : 0;
}

/* North American style: [1 sep] (ddd) or ddd, sep, ddd, sep, dddd, where
 * sep is one space, dash or dot (optional after the parenthesis), or ten
 * digits in a row. The end, or 0. */
static size_t national_phone(const char *t, size_t n, size_t i)
{
    size_t j = i;
    if (t[j] == '1' && j + 2 < n && is_phone_sep(t[j + 1]) && (is_digit(t[j + 2]) || t[j + 2] == '('))
        j += 2;
    if (t[j] == '(') {
        if (digits_at(t, n, j + 1) != 3 || j + 4 >= n || t[j + 4] != ')')
            return 0;
        j += 5;
        if (j < n && (t[j] == ' ' || t[j] == '-'))
            j++;
    } else {
        size_t k = digits_at(t, n, j);
        if (k == 10)
            return j + 10;
        if (k != 3 || j + 3 >= n || !is_phone_sep(t[j + 3]))
            return 0;
        j += 4;
    }
    if (digits_at(t, n, j) != 3 || j + 3 >= n || !is_phone_sep(t[j + 3]))
        return 0;
    j += 4;
    if (digits_at(t, n, j) != 4)
        return 0;
    return j + 4;
}

static int pass_phone(const char *t, size_t n, out_t *o)
{
    int count = 0;
    size_t i = 0;
    while (i < n) {
        bool starts_word = i == 0 || !is_alnum(t[i - 1]);
        size_t end = 0;
        if (starts_word && t[i] == '+')
            end = intl_phone(t, n, i);
        else if (starts_word && (is_digit(t[i]) || t[i] == '(') && !(i > 0 && t[i - 1] == '+'))
            end = national_phone(t, n, i);
        if (end) {
            put_str(o, REDACTED_PHONE);
            count++;
            i = end;
        } else {
            put(o, t + i, 1);
            i++;
        }
    }
    return count;
}

/* ------------------------------------------------------------ all of it */

typedef int (*pass_fn)(const char *t, size_t n, out_t *o);

char *redact_text(const char *text, size_t len, unsigned kinds, size_t *out_len, int *failed)
{
    static const struct {
        unsigned kind;
        pass_fn run;
    } passes[] = {{REDACT_EMAIL, pass_email}, {REDACT_CARD, pass_card}, {REDACT_PHONE, pass_phone}};
    *failed = 0;
    char *cur = NULL;   /* NULL: nothing replaced yet, the input is current */
    size_t cur_len = len;
    for (size_t p = 0; p < sizeof passes / sizeof passes[0]; p++) {
        if (!(kinds & passes[p].kind))
            continue;
        out_t o = {0};
        int replaced = passes[p].run(cur ? cur : text, cur_len, &o);
        if (o.failed) {
            free(o.s);
            free(cur);
            *failed = 1;
            return NULL;
        }
        if (replaced == 0) {
            free(o.s);
            continue;
        }
        free(cur);
        cur = o.s;
        cur_len = o.len;
    }
    if (cur && out_len)
        *out_len = cur_len;
    return cur;
}
