/* Test helper: a throwaway redis-server for C unit tests.
 *
 *   test_redis_t s;
 *   const char *extra[] = { "--requirepass", "secret", NULL };   // or NULL
 *   if (test_redis_start(&s, extra) != 0) ...                      // free port, temp dir
 *   ... connect to 127.0.0.1:s.port ...
 *   test_redis_kill(&s);      // SIGKILL, as a crash would
 *   test_redis_restart(&s);   // same port, same arguments
 *   test_redis_stop(&s);      // kill if running, remove the temp dir
 *
 * The server binds 127.0.0.1 only, keeps nothing on disk, allows DEBUG, and
 * dies with the test process (PR_SET_PDEATHSIG) even if the test crashes.
 * SLUICE_REDIS_SERVER overrides the binary (default: redis-server on PATH).
 * Header-only so any test can include it without build changes.
 */
#ifndef SLUICE_TEST_REDIS_SERVER_H
#define SLUICE_TEST_REDIS_SERVER_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TEST_REDIS_MAX_EXTRA 16

typedef struct test_redis {
    pid_t pid;                 /* 0 while not running */
    int port;
    char dir[64];
    char *extra[TEST_REDIS_MAX_EXTRA + 1];
} test_redis_t;

static inline int test_redis_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static inline long long test_redis_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Any answer to PING (PONG, NOAUTH, LOADING) means it is serving. */
static inline int test_redis_answers(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        send(fd, "PING\r\n", 6, MSG_NOSIGNAL) == 6) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        char c;
        ok = poll(&p, 1, 500) == 1 && recv(fd, &c, 1, 0) == 1;
    }
    close(fd);
    return ok;
}

static inline int test_redis_spawn(test_redis_t *s)
{
    char port[16], log[96];
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(log, sizeof log, "%s/redis.log", s->dir);
    const char *bin = getenv("SLUICE_REDIS_SERVER");
    const char *argv[32 + TEST_REDIS_MAX_EXTRA] = {
        bin && *bin ? bin : "redis-server", "--port", port, "--bind", "127.0.0.1",
        "--dir", s->dir, "--logfile", log, "--save", "", "--appendonly", "no",
        "--daemonize", "no", "--enable-debug-command", "yes",
    };
    int n = 17;
    for (int i = 0; s->extra[i]; i++)
        argv[n++] = s->extra[i];
    argv[n] = NULL;

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDOUT_FILENO);
            dup2(devnull, STDERR_FILENO);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    long long deadline = test_redis_now_ms() + 5000;
    while (test_redis_now_ms() < deadline) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            s->pid = 0;
            return -1;
        }
        if (test_redis_answers(s->port))
            return 0;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    s->pid = 0;
    return -1;
}

static inline void test_redis_kill(test_redis_t *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    s->pid = 0;
}

static inline void test_redis_stop(test_redis_t *s)
{
    test_redis_kill(s);
    for (int i = 0; s->extra[i]; i++) {
        free(s->extra[i]);
        s->extra[i] = NULL;
    }
    if (!s->dir[0])
        return;
    DIR *d = opendir(s->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char path[sizeof s->dir + 300];
            snprintf(path, sizeof path, "%s/%s", s->dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(s->dir);
    s->dir[0] = '\0';
}

/* 0 when the server answers; -1 (and nothing left behind) otherwise. */
static inline int test_redis_start(test_redis_t *s, const char *const *extra)
{
    memset(s, 0, sizeof *s);
    int n = 0;
    for (; extra && extra[n]; n++) {
        if (n == TEST_REDIS_MAX_EXTRA || !(s->extra[n] = strdup(extra[n]))) {
            test_redis_stop(s);
            return -1;
        }
    }
    snprintf(s->dir, sizeof s->dir, "/tmp/sluice-redis-XXXXXX");
    if (!mkdtemp(s->dir)) {
        s->dir[0] = '\0';
        test_redis_stop(s);
        return -1;
    }
    /* Another process may take the port between our probe and redis' bind. */
    for (int tries = 0; tries < 5; tries++) {
        s->port = test_redis_free_port();
        if (s->port > 0 && test_redis_spawn(s) == 0)
            return 0;
    }
    test_redis_stop(s);
    return -1;
}

static inline int test_redis_restart(test_redis_t *s)
{
    if (s->pid > 0)
        return 0;
    return test_redis_spawn(s);
}

#endif
