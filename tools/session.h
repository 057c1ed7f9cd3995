/* A client session: the loop of a verb that follows one server (stream, record) until its goal
 * is met, its time is up, Ctrl-C, or the server is lost for longer than --give-up-after. The
 * session keeps the clocks (how long to wait for the first `me`, when to stop, when the next
 * status line is due), turns on the client's reconnection, says when the link is lost and when
 * it is back (with the gap), and reports a failing server; the verb handles the other events
 * (RECONNECTING and RECONNECTED too, to note the gap) and prints its status lines. */
#ifndef SK2_TOOLS_SESSION_H
#define SK2_TOOLS_SESSION_H

#include "cli.h"

typedef struct {
    const char *verb;                /* for messages: "sk2 VERB: ..." */
    sk2_client_t *client;            /* owned */
    char endpoint[CLI_ENDPOINT_MAX]; /* normalised, for messages */
    cli_status_t status;             /* where status lines and notes go */
    int timeout_ms;                  /* wait for the first `me`; the client's response timeout */
    bool is_connected;               /* the first `me` arrived */
    bool is_done;                    /* set by the verb when its goal is met */
    int end_rc;                      /* exit code the loop ended with (server lost, ...), else 0 */
    int64_t connect_until_us;        /* give up waiting for `me` then */
    int64_t connected_us;            /* when the first `me` arrived */
    int64_t stop_us;                 /* the verb's --seconds after connecting, or CLI_NEVER */
    int64_t status_step_us;          /* between status lines */
    int64_t next_status_us;          /* when the next status line is due */
    int64_t last_status_us;          /* when the previous one was printed */
    double give_up_s;                /* --give-up-after, 0: retry forever */
    bool is_down;                    /* between RECONNECTING and RECONNECTED */
    uint64_t outages;                /* RECONNECTED events so far */
    int64_t outage_us;               /* their durations added up */
} cli_session_t;

/* --give-up-after S of the verbs that follow a server: 0.1 .. a year, or 0 for never (the
 * default). CLI_CONTINUE or a usage error. */
int cli_apply_give_up_after(const char *verb, const char *arg, double *seconds);
#define CLI_GIVE_UP_HELP                                                                           \
    "  --give-up-after S     when the server is lost, keep reconnecting for at most S seconds,\n"  \
    "                        then exit 3 (default 0: retry until stopped)\n"

/* What a verb does with its session's events and status ticks. */
typedef struct {
    /* Every event but DISCONNECTED and ERROR, which the session reports itself. */
    void (*on_event)(void *verb, const sk2_event_t *event);
    /* A status line is due; interval_us since the previous one. */
    void (*on_status)(void *verb, int64_t interval_us);
} cli_session_hooks_t;

/* Connects to target (an endpoint, a server name, or NULL for the only server) like every
 * client verb, with status lines to status_out. Returns CLI_CONTINUE or an exit code. */
int cli_session_open(cli_session_t *self, const char *verb, const char *target, int timeout_ms,
                     int browse_ms, FILE *status_out, bool has_status);
/* Sets how long a lost server is retried (0: forever); after open. */
void cli_session_give_up_after(cli_session_t *self, double seconds);

/* Starts the clocks once the first `me` arrived: stop seconds later (0: never), status lines
 * every status_interval_s. */
void cli_session_connected(cli_session_t *self, double seconds, double status_interval_s);

/* One turn: checks the clocks, prints a due status line, then waits for and handles at most one
 * event. Returns false when the loop must end (self->end_rc says how). */
bool cli_session_step(cli_session_t *self, const cli_session_hooks_t *hooks, void *verb);

/* Seconds since the first `me`, 0 if it never came. */
double cli_session_seconds(const cli_session_t *self);

/* Ends the status line and destroys the client. */
void cli_session_close(cli_session_t *self);

#endif
