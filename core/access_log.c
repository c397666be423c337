#include "access_log.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"

struct sl_access_log {
    int fd;          /* -1 = off */
    bool owned;
};

sl_access_log_t *sl_access_log_open(const char *where, char *err, size_t errlen)
{
    sl_access_log_t *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->fd = -1;
    if (strcmp(where, "off") == 0)
        return l;
    if (strcmp(where, "stdout") == 0) {
        l->fd = STDOUT_FILENO;
        return l;
    }
    l->fd = open(where, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (l->fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", where, strerror(errno));
        free(l);
        return NULL;
    }
    l->owned = true;
    return l;
}

void sl_access_log_close(sl_access_log_t *l)
{
    if (l->owned)
        close(l->fd);
    free(l);
}

/* JSON string body with the escapes RFC 8259 requires; bytes >= 0x80 are
 * passed through (paths are ASCII after parsing; header-derived ids too). */
static size_t put_str(char *out, size_t cap, size_t pos, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (pos < cap)
        out[pos] = '"';
    pos++;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[6];
        size_t k = 0;
        if (ch == '"' || ch == '\\') {
            esc[k++] = '\\';
            esc[k++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f || ch >= 0x80) {
            esc[k++] = '\\';
            esc[k++] = 'u';
            esc[k++] = '0';
            esc[k++] = '0';
            esc[k++] = hex[ch >> 4];
            esc[k++] = hex[ch & 0xf];
        } else {
            esc[k++] = (char)ch;
        }
        for (size_t j = 0; j < k; j++, pos++)
            if (pos < cap)
                out[pos] = esc[j];
    }
    if (pos < cap)
        out[pos] = '"';
    return pos + 1;
}

static size_t put_raw(char *out, size_t cap, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t put_raw(char *out, size_t cap, size_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(pos < cap ? out + pos : NULL, pos < cap ? cap - pos : 0, fmt, ap);
    va_end(ap);
    return pos + (n > 0 ? (size_t)n : 0);
}

void sl_access_log_write(sl_access_log_t *l, const sl_request_t *r, int status_override)
{
    if (!l || l->fd < 0)
        return;
    char line[4096];
    size_t cap = sizeof line - 1, p = 0;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    p = put_raw(line, cap, p, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"request_id\":",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                ts.tv_nsec / 1000000);
    p = put_str(line, cap, p, r->request_id, strlen(r->request_id));
    p = put_raw(line, cap, p, ",\"route\":");
    if (r->route)
        p = put_str(line, cap, p, r->route->name, strlen(r->route->name));
    else
        p = put_raw(line, cap, p, "null");
    p = put_raw(line, cap, p, ",\"method\":");
    p = put_str(line, cap, p, r->head.method ? r->head.method : "-",
                r->head.method ? r->head.method_len : 1);
    p = put_raw(line, cap, p, ",\"path\":");
    if (r->head.path)
        p = put_str(line, cap, p, r->head.path, r->head.path_len);
    else
        p = put_raw(line, cap, p, "null");
    int status = status_override ? status_override : r->status;
    p = put_raw(line, cap, p, ",\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu,\"upstream\":",
                status, (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out);
    if (r->upstream_name)
        p = put_str(line, cap, p, r->upstream_name, strlen(r->upstream_name));
    else
        p = put_raw(line, cap, p, "null");
    int64_t total = sl_now_us() - r->t_start_us;
    if (r->upstream_name)
        p = put_raw(line, cap, p, ",\"upstream_ms\":%.3f", (double)r->upstream_us / 1000.0);
    else
        p = put_raw(line, cap, p, ",\"upstream_ms\":null");
    p = put_raw(line, cap, p, ",\"total_ms\":%.3f,\"retries\":%d,\"client_ip\":",
                (double)total / 1000.0, r->retries);
    p = put_str(line, cap, p, r->conn->client_ip, strlen(r->conn->client_ip));
    if (r->error_code) {
        p = put_raw(line, cap, p, ",\"error\":");
        p = put_str(line, cap, p, r->error_code, strlen(r->error_code));
    }
    p = put_raw(line, cap, p, "}\n");
    if (p > cap) {   /* truncated: keep it one valid line rather than a broken one */
        p = (size_t)snprintf(line, sizeof line, "{\"request_id\":\"%s\",\"status\":%d,\"truncated\":true}\n",
                             r->request_id, status);
    }
    ssize_t w = write(l->fd, line, p);
    (void)w;
}
