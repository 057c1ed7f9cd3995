/* The benchmark's server process: an sk2 server with one stamp device, run in a child so that
 * the parent can measure what it costs (wait4: CPU time, peak RSS) apart from the clients.
 *
 * Children are forked idle, before the parent touches ZeroMQ or sk2, and each waits on its
 * command pipe for one scenario. Every wait on either side is bounded. */
#ifndef SK2_BENCH_SERVER_CHILD_H
#define SK2_BENCH_SERVER_CHILD_H

#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "sk2/server.h"

/* How long the parent waits for a child to answer before killing it. */
#define SERVER_CHILD_TIMEOUT_MS 10000

typedef struct {
    pid_t pid;      /* 0 when there is no child (never forked, or reaped) */
    int to_child;   /* write end of the command pipe, -1 once closed */
    int from_child; /* read end of the answer pipe, -1 once closed */
} server_child_t;

/* Forks n idle children. A child that gets no scenario within go_timeout_ms, or sees its
 * command pipe close first, exits without touching sk2. Call while single-threaded and before
 * any ZeroMQ or sk2 object exists. Returns 0, or -1 with errno set (children already forked
 * stay in the array, to be finished). */
int server_child_spawn(server_child_t *children, size_t n, int go_timeout_ms);

/* Starts the child's server on 127.0.0.1 with one stamp device at `fps` (0: as fast as
 * possible); the child stops by itself after lifetime_ms. Writes the control endpoint into
 * endpoint. Returns 0, or -1 with a message in err (the child is then killed and reaped). */
int server_child_start(server_child_t *child, double fps, int lifetime_ms, char *endpoint,
                       size_t endpoint_size, char *err, size_t err_size);

/* Stops the child (closes its command pipe), reads its final counters into *stats (if not
 * NULL: only for a started child), reaps it and fills *usage (if not NULL). A child that does
 * not report and exit within SERVER_CHILD_TIMEOUT_MS is killed by its pid. Returns 0 if it
 * reported and exited cleanly, -1 otherwise. Safe on a child already finished. */
int server_child_finish(server_child_t *child, sk2_server_stats_t *stats, struct rusage *usage);

#endif
