/* The client loop stream and record share; see session.h. Every wait is bounded by the next
 * status line, the stop time or the connection deadline, and sliced to 250 ms so that a signal
 * landing on a library thread still ends the loop soon. */
#include "session.h"

#include <string.h>

int cli_session_open(cli_session_t *self, const char *verb, const char *target, int timeout_ms,
                     int browse_ms, FILE *status_out, bool has_status)
{
    memset(self, 0, sizeof *self);
    self->verb = verb;
    self->timeout_ms = timeout_ms;
    self->stop_us = CLI_NEVER;
    self->next_status_us = CLI_NEVER;
    int rc = cli_client_open(verb, target, timeout_ms, browse_ms, self->endpoint, &self->client);
    if (rc != CLI_CONTINUE)
        return rc;
    cli_status_init(&self->status, status_out, has_status);
    /* A verb that follows a server outlives its restarts: the client retries on its own. */
    sk2_client_set_reconnect(self->client, true);
    self->connect_until_us = sk2_clock_mono_us() + (int64_t)timeout_ms * 1000;
    return CLI_CONTINUE;
}

void cli_session_give_up_after(cli_session_t *self, double seconds)
{
    self->give_up_s = seconds;
    sk2_client_set_give_up_after_ms(self->client, (int64_t)(seconds * 1000.0 + 0.5));
}

int cli_apply_give_up_after(const char *verb, const char *arg, double *seconds)
{
    if (cli_parse_double(arg, 0.0, 31536000.0, seconds) != 0 || (*seconds > 0 && *seconds < 0.1))
        return cli_usage_error(verb,
                               "--give-up-after must be 0 (never) or 0.1..31536000 seconds, "
                               "not '%s'",
                               arg);
    return CLI_CONTINUE;
}

void cli_session_connected(cli_session_t *self, double seconds, double status_interval_s)
{
    int64_t now_us = sk2_clock_mono_us();
    self->is_connected = true;
    self->connected_us = now_us;
    self->last_status_us = now_us;
    self->status_step_us = (int64_t)(status_interval_s * 1e6);
    self->next_status_us = now_us + self->status_step_us;
    if (seconds > 0)
        self->stop_us = now_us + (int64_t)(seconds * 1e6);
}

static void s_status_due(cli_session_t *self, const cli_session_hooks_t *hooks, void *verb,
                         int64_t now_us)
{
    hooks->on_status(verb, now_us - self->last_status_us);
    self->last_status_us = now_us;
    self->next_status_us += self->status_step_us;
    if (self->next_status_us <= now_us)
        self->next_status_us = now_us + self->status_step_us;
}

/* The session's own events: a lost server ends the loop, a refused request is reported. */
static void s_handle(cli_session_t *self, const cli_session_hooks_t *hooks, void *verb,
                     const sk2_event_t *event)
{
    char reason[256];
    switch (sk2_event_type(event)) {
    case SK2_EVENT_DISCONNECTED:
        cli_status_close(&self->status);
        if (self->is_down)
            fprintf(stderr, "sk2 %s: gave up on %s: no answer for %.1f s (--give-up-after)\n",
                    self->verb, self->endpoint, self->give_up_s);
        self->end_rc = self->is_down
                           ? CLI_EXIT_LOST
                           : cli_report_lost(self->verb, self->endpoint, event, self->timeout_ms);
        self->is_done = true;
        break;
    case SK2_EVENT_RECONNECTING:
        self->is_down = true;
        if (self->is_connected) {
            cli_status_close(&self->status);
            fprintf(stderr, "sk2 %s: lost %s: %s; reconnecting\n", self->verb, self->endpoint,
                    cli_event_reason(event, reason, sizeof reason));
        }
        hooks->on_event(verb, event);
        break;
    case SK2_EVENT_RECONNECTED:
        self->is_down = false;
        self->outages++;
        self->outage_us += sk2_event_outage_us(event);
        cli_status_close(&self->status);
        fprintf(stderr, "sk2 %s: %s back after %.1f s\n", self->verb, self->endpoint,
                (double)sk2_event_outage_us(event) / 1e6);
        hooks->on_event(verb, event);
        break;
    case SK2_EVENT_ERROR:
        cli_status_close(&self->status);
        fprintf(stderr, "sk2 %s: %s answered with an error: %s\n", self->verb, self->endpoint,
                cli_event_reason(event, reason, sizeof reason));
        break;
    default:
        hooks->on_event(verb, event);
        break;
    }
}

bool cli_session_step(cli_session_t *self, const cli_session_hooks_t *hooks, void *verb)
{
    if (self->is_done || cli_is_interrupted())
        return false;
    int64_t now_us = sk2_clock_mono_us();
    if (!self->is_connected && now_us >= self->connect_until_us) {
        self->end_rc = cli_report_lost(self->verb, self->endpoint, NULL, self->timeout_ms);
        return false;
    }
    if (self->is_connected && now_us >= self->stop_us)
        return false;
    if (self->is_connected && now_us >= self->next_status_us)
        s_status_due(self, hooks, verb, now_us);
    int64_t deadline = !self->is_connected                    ? self->connect_until_us
                       : self->stop_us < self->next_status_us ? self->stop_us
                                                              : self->next_status_us;
    sk2_event_t *event = NULL;
    int rc = sk2_client_recv(self->client, &event, cli_wait_ms(now_us, deadline, 250));
    if (rc == SK2_ETIMEDOUT || rc == SK2_EINTR)
        return true;
    if (rc == SK2_ESTATE) {
        cli_status_close(&self->status);
        self->end_rc = cli_report_lost(self->verb, self->endpoint, NULL, self->timeout_ms);
        return false;
    }
    if (rc != 0) {
        cli_status_close(&self->status);
        fprintf(stderr, "sk2 %s: %s\n", self->verb, sk2_strerror(rc));
        self->end_rc = CLI_EXIT_FAILURE;
        return false;
    }
    s_handle(self, hooks, verb, event);
    sk2_event_destroy(&event);
    return true;
}

double cli_session_seconds(const cli_session_t *self)
{
    return self->is_connected ? (double)(sk2_clock_mono_us() - self->connected_us) / 1e6 : 0.0;
}

void cli_session_close(cli_session_t *self)
{
    cli_status_close(&self->status);
    sk2_client_destroy(&self->client);
}
