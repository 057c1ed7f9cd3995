/* The server child: its process, its pipes and the short binary messages on them.
 *
 * Two pipes per child. On the command pipe the parent writes one s_go_t to start, then closes
 * it to stop: EOF is a signal no crash can forget to send, and a parent that dies stops its
 * children the same way. On the answer pipe the child writes one s_hello_t once it serves (or
 * failed to) and one s_bye_t with the final counters. Messages are fixed-size structs below
 * PIPE_BUF, so each write is atomic; both sides run on one host and one binary. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server_child.h"
#include "sk2/sk2.h"
#include "stamp_device.h"

/* Parent -> child: start the scenario. */
typedef struct {
    double fps;          /* stamp device rate, 0 = as fast as possible */
    int32_t lifetime_ms; /* the child stops by itself after this long */
} s_go_t;

/* Child -> parent, once serving or failed. */
typedef struct {
    int32_t rc;         /* 0 or the SK2_E* code of the step that failed */
    char endpoint[240]; /* control endpoint, NUL-terminated */
} s_hello_t;

/* Child -> parent, after stop. */
typedef struct {
    int32_t rc;               /* 0 or the SK2_E* code of sk2_server_stats */
    sk2_server_stats_t stats; /* final counters, taken after the device was removed */
} s_bye_t;

/* Waits up to the monotonic deadline for fd to become readable. 1, 0 (timeout) or -1. */
static int s_poll_in(int fd, int64_t deadline_us)
{
    for (;;) {
        int64_t left_ms = (deadline_us - sk2_clock_mono_us() + 999) / 1000;
        if (left_ms <= 0)
            return 0;
        struct pollfd item = {.fd = fd, .events = POLLIN};
        int ready = poll(&item, 1, left_ms > INT32_MAX ? INT32_MAX : (int)left_ms);
        if (ready >= 0 || errno != EINTR)
            return ready > 0 ? 1 : ready;
    }
}

/* Reads exactly `size` bytes within timeout_ms. Returns 0, or -1 on timeout, EOF or error. */
static int s_read_exact(int fd, void *buf, size_t size, int timeout_ms)
{
    int64_t deadline_us = sk2_clock_mono_us() + (int64_t)timeout_ms * 1000;
    size_t got = 0;
    while (got < size) {
        if (s_poll_in(fd, deadline_us) <= 0)
            return -1;
        ssize_t n = read(fd, (char *)buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

/* Waits up to timeout_ms for the other end of fd to close, discarding anything it sends. */
static int s_wait_eof(int fd, int timeout_ms)
{
    char discard[64];
    int64_t deadline_us = sk2_clock_mono_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        if (s_poll_in(fd, deadline_us) <= 0)
            return -1;
        ssize_t n = read(fd, discard, sizeof discard);
        if (n == 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

static int s_write_all(int fd, const void *buf, size_t size)
{
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, (const char *)buf + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

/* The child's whole life: wait for a scenario, serve until told to stop, report, exit. */
static int s_child_main(int commands, int answers, int go_timeout_ms)
{
    s_go_t go;
    if (s_read_exact(commands, &go, sizeof go, go_timeout_ms) != 0)
        return 0; /* its scenario never came: the parent finished early */

    /* Drops when the stamp device outruns the encoder are expected at "max" and counted in
     * the table; a warning per scenario would only clutter the output. */
    sk2_log_set_level(SK2_LOG_ERROR);
    s_hello_t hello = {.rc = SK2_ENOMEM};
    s_bye_t bye = {.rc = SK2_ESTATE};
    char id[SK2_DEVICE_ID_MAX + 1] = "";
    sk2_server_t *server = sk2_server_new("bench_core");
    sk2_device_t *device = stamp_device_new(go.fps);
    if (server && device) {
        snprintf(id, sizeof id, "%s", sk2_device_id(device));
        hello.rc = sk2_server_bind(server, "127.0.0.1", 0);
    }
    if (hello.rc == 0)
        hello.rc = sk2_server_add_device(server, &device);
    if (hello.rc == 0)
        snprintf(hello.endpoint, sizeof hello.endpoint, "%s", sk2_server_endpoint(server));
    if (s_write_all(answers, &hello, sizeof hello) == 0 && hello.rc == 0) {
        s_wait_eof(commands, go.lifetime_ms);
        /* Removing the device first stops it and folds its counters in exactly
         * (produced = encoded + dropped), with no frame left on its way. */
        sk2_server_remove_device(server, id);
        bye.rc = sk2_server_stats(server, &bye.stats);
        s_write_all(answers, &bye, sizeof bye);
    }
    sk2_device_destroy(&device);
    sk2_server_destroy(&server);
    return hello.rc == 0 && bye.rc == 0 ? 0 : 1;
}

int server_child_spawn(server_child_t *children, size_t n, int go_timeout_ms)
{
    for (size_t i = 0; i < n; i++)
        children[i] = (server_child_t){.pid = 0, .to_child = -1, .from_child = -1};
    fflush(NULL); /* nothing buffered may be written twice */
    for (size_t i = 0; i < n; i++) {
        int commands[2];
        int answers[2];
        if (pipe(commands) != 0)
            return -1;
        if (pipe(answers) != 0) {
            close(commands[0]);
            close(commands[1]);
            return -1;
        }
        pid_t pid = fork();
        if (pid == 0) {
            /* Only its own pipe ends: the parent closing a command pipe must be seen as EOF
             * by exactly one child, which needs every other copy of that end gone. */
            for (size_t j = 0; j < i; j++) {
                close(children[j].to_child);
                close(children[j].from_child);
            }
            close(commands[1]);
            close(answers[0]);
            exit(s_child_main(commands[0], answers[1], go_timeout_ms));
        }
        close(commands[0]);
        close(answers[1]);
        if (pid < 0) {
            close(commands[1]);
            close(answers[0]);
            return -1;
        }
        children[i] =
            (server_child_t){.pid = pid, .to_child = commands[1], .from_child = answers[0]};
    }
    return 0;
}

int server_child_start(server_child_t *child, double fps, int lifetime_ms, char *endpoint,
                       size_t endpoint_size, char *err, size_t err_size)
{
    s_go_t go = {.fps = fps, .lifetime_ms = lifetime_ms};
    s_hello_t hello;
    if (child->pid <= 0) {
        snprintf(err, err_size, "no server child");
        return -1;
    }
    if (s_write_all(child->to_child, &go, sizeof go) != 0 ||
        s_read_exact(child->from_child, &hello, sizeof hello, SERVER_CHILD_TIMEOUT_MS) != 0) {
        snprintf(err, err_size, "server child %d did not answer within %d ms; killed",
                 (int)child->pid, SERVER_CHILD_TIMEOUT_MS);
        kill(child->pid, SIGKILL);
        server_child_finish(child, NULL, NULL);
        return -1;
    }
    if (hello.rc != 0) {
        snprintf(err, err_size, "server child: %s", sk2_strerror(hello.rc));
        server_child_finish(child, NULL, NULL);
        return -1;
    }
    hello.endpoint[sizeof hello.endpoint - 1] = '\0';
    snprintf(endpoint, endpoint_size, "%s", hello.endpoint);
    return 0;
}

int server_child_finish(server_child_t *child, sk2_server_stats_t *stats, struct rusage *usage)
{
    if (child->pid <= 0)
        return -1;
    if (child->to_child >= 0)
        close(child->to_child);
    child->to_child = -1;
    int rc = 0;
    s_bye_t bye;
    if (stats) {
        if (s_read_exact(child->from_child, &bye, sizeof bye, SERVER_CHILD_TIMEOUT_MS) == 0 &&
            bye.rc == 0)
            *stats = bye.stats;
        else
            rc = -1;
    }
    /* The answer pipe closes when the child's process ends: wait4 below is then immediate. */
    if (s_wait_eof(child->from_child, SERVER_CHILD_TIMEOUT_MS) != 0) {
        kill(child->pid, SIGKILL);
        rc = -1;
    }
    int status = 0;
    struct rusage ignored;
    while (wait4(child->pid, &status, 0, usage ? usage : &ignored) < 0 && errno == EINTR)
        ;
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        rc = -1;
    close(child->from_child);
    child->from_child = -1;
    child->pid = 0;
    return rc;
}
