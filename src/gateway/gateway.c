/* The gateway's front end: settings, bind, start and stop of its two threads, counters. The
 * work happens in upstream.c (the client thread) and web.c (the web thread); see
 * gateway_impl.h for what they share and how they wake each other. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log_internal.h"
#include "gateway/gateway_impl.h"
#include "sk2/client.h"
#include "sk2/error.h"
#include "sk2/limits.h"

sk2_gateway_t *sk2_gateway_new(void)
{
    sk2_gateway_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->refresh_ms = 1000;
    self->max_connections = SK2_GATEWAY_MAX_CONNECTIONS;
    self->max_frame_bytes = SK2_LIMIT_FRAME_BYTES;
    self->wake_pipe[0] = self->wake_pipe[1] = -1;
    if (pthread_mutex_init(&self->lock, NULL) != 0) {
        free(self);
        return NULL;
    }
    if (pipe(self->wake_pipe) != 0) {
        pthread_mutex_destroy(&self->lock);
        free(self);
        return NULL;
    }
    /* The web thread must never block on its wake-up pipe, so a pipe that cannot be made
     * non-blocking is no gateway at all. */
    bool is_ready = true;
    for (int i = 0; i < 2 && is_ready; i++) {
        int flags = fcntl(self->wake_pipe[i], F_GETFL);
        is_ready = flags >= 0 && fcntl(self->wake_pipe[i], F_SETFL, flags | O_NONBLOCK) == 0 &&
                   fcntl(self->wake_pipe[i], F_SETFD, FD_CLOEXEC) == 0;
    }
    if (!is_ready) {
        close(self->wake_pipe[0]);
        close(self->wake_pipe[1]);
        pthread_mutex_destroy(&self->lock);
        free(self);
        return NULL;
    }
    atomic_init(&self->should_stop, false);
    return self;
}

void sk2_gateway_destroy(sk2_gateway_t **self_p)
{
    sk2_gateway_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    atomic_store(&self->should_stop, true);
    gw_wake_upstream(self);
    if (self->has_client_thread)
        pthread_join(self->client_thread, NULL);
    if (self->has_web_thread) {
        gw_web_wake(self);
        pthread_join(self->web_thread, NULL);
    }
    gw_web_destroy(self);
    for (size_t i = 0; i < self->slot_count; i++)
        gw_shot_unref(&self->slots[i].latest);
    free(self->slots);
    for (size_t i = 0; i < GW_COMMANDS_MAX; i++)
        gw_command_clear(&self->commands[i]);
    memset(self->token, 0, sizeof self->token);
    json_decref(self->state);
    json_decref(self->stats);
    for (size_t i = 0; i < self->endpoint_count; i++)
        free(self->endpoints[i]);
    free(self->keys);
    free(self->server_key);
    close(self->wake_pipe[0]);
    close(self->wake_pipe[1]);
    pthread_mutex_destroy(&self->lock);
    free(self);
}

int sk2_gateway_add_server(sk2_gateway_t *self, const char *endpoint)
{
    if (!self || !endpoint || !*endpoint || strlen(endpoint) >= GW_ENDPOINT_MAX - 6)
        return SK2_EINVAL;
    if (self->is_started)
        return SK2_ESTATE;
    if (self->endpoint_count >= SK2_GATEWAY_SERVERS_MAX)
        return SK2_ELIMIT;
    char *copy = strdup(endpoint);
    if (!copy)
        return SK2_ENOMEM;
    self->endpoints[self->endpoint_count++] = copy;
    return 0;
}

int sk2_gateway_use_browser(sk2_gateway_t *self, bool is_browsing)
{
    if (!self)
        return SK2_EINVAL;
    if (self->is_started)
        return SK2_ESTATE;
    self->is_browsing = is_browsing;
    return 0;
}

int sk2_gateway_set_refresh_ms(sk2_gateway_t *self, int interval_ms)
{
    if (!self || interval_ms < 100 || interval_ms > 60000)
        return SK2_EINVAL;
    if (self->is_started)
        return SK2_ESTATE;
    self->refresh_ms = interval_ms;
    return 0;
}

int sk2_gateway_set_give_up_after_ms(sk2_gateway_t *self, int64_t give_up_after_ms)
{
    if (!self || give_up_after_ms < 0 || (give_up_after_ms > 0 && give_up_after_ms < 100) ||
        give_up_after_ms > INT32_MAX)
        return SK2_EINVAL;
    if (self->is_started)
        return SK2_ESTATE;
    self->give_up_after_ms = give_up_after_ms;
    return 0;
}

int sk2_gateway_links(sk2_gateway_t *self, uint32_t *lost, uint32_t *given_up)
{
    if (!self)
        return SK2_EINVAL;
    if (lost)
        *lost = atomic_load_explicit(&self->counters.servers_lost, memory_order_relaxed);
    if (given_up)
        *given_up = atomic_load_explicit(&self->counters.servers_given_up, memory_order_relaxed);
    return 0;
}

int sk2_gateway_set_max_age_ms(sk2_gateway_t *self, int max_age_ms)
{
    if (!self || (max_age_ms != 0 && (max_age_ms < 100 || max_age_ms > 3600000)))
        return SK2_EINVAL;
    if (self->is_started)
        return SK2_ESTATE;
    self->max_age_ms = max_age_ms;
    return 0;
}

int sk2_gateway_set_max_frame_bytes(sk2_gateway_t *self, size_t max_frame_bytes)
{
    if (!self || max_frame_bytes < SK2_LIMIT_FRAME_BYTES_MIN ||
        max_frame_bytes > SK2_LIMIT_FRAME_BYTES_MAX)
        return SK2_EINVAL;
    if (self->is_started)
        return SK2_ESTATE;
    self->max_frame_bytes = max_frame_bytes;
    return 0;
}

int sk2_gateway_set_security(sk2_gateway_t *self, const char *keys, const char *server_key)
{
    if (!self || !keys || !server_key)
        return SK2_EINVAL;
    if (self->is_started)
        return SK2_ESTATE;
    /* Checked on a throwaway client, so that a bad path is refused here and not at every
     * reconnection. */
    sk2_client_t *probe = sk2_client_new();
    int rc = probe ? sk2_client_set_security(probe, keys, server_key) : SK2_ENOMEM;
    sk2_client_destroy(&probe);
    if (rc != 0)
        return rc;
    free(self->keys);
    free(self->server_key);
    self->keys = strdup(keys);
    self->server_key = strdup(server_key);
    return self->keys && self->server_key ? 0 : SK2_ENOMEM;
}

int sk2_gateway_set_token(sk2_gateway_t *self, const char *token)
{
    if (!self || (token && !gw_token_is_valid(token)))
        return SK2_EINVAL;
    if (self->lws)
        return SK2_ESTATE;
    memset(self->token, 0, sizeof self->token);
    self->has_token = token != NULL;
    if (token)
        memcpy(self->token, token, strlen(token));
    return 0;
}

int sk2_gateway_generate_token(sk2_gateway_t *self)
{
    if (!self)
        return SK2_EINVAL;
    if (self->lws)
        return SK2_ESTATE;
    char token[GW_TOKEN_MAX + 1];
    int rc = gw_token_generate(token, sizeof token);
    if (rc == 0)
        rc = sk2_gateway_set_token(self, token);
    memset(token, 0, sizeof token);
    return rc;
}

const char *sk2_gateway_token(const sk2_gateway_t *self)
{
    return self && self->has_token ? self->token : NULL;
}

int sk2_gateway_set_insecure(sk2_gateway_t *self, bool is_insecure)
{
    if (!self)
        return SK2_EINVAL;
    if (self->lws)
        return SK2_ESTATE;
    self->is_insecure = is_insecure;
    return 0;
}

int sk2_gateway_set_max_connections(sk2_gateway_t *self, int max_connections)
{
    if (!self || max_connections < SK2_GATEWAY_MAX_CONNECTIONS_MIN ||
        max_connections > SK2_GATEWAY_MAX_CONNECTIONS_MAX)
        return SK2_EINVAL;
    if (self->lws)
        return SK2_ESTATE;
    self->max_connections = max_connections;
    return 0;
}

int sk2_gateway_bind(sk2_gateway_t *self, const char *address, uint16_t port)
{
    if (!self || !address || !*address || strlen(address) > 64)
        return SK2_EINVAL;
    if (self->lws)
        return SK2_ESTATE;
    /* Frames are what a rig is for: a gateway that anyone on the network could watch must be
     * asked for in so many words. */
    if (!gw_address_is_loopback(address) && !self->has_token && !self->is_insecure)
        return SK2_EINSECURE;
    int rc = gw_web_bind(self, address, port);
    if (rc != 0)
        return rc;
    bool is_v6 = strchr(address, ':') != NULL;
    snprintf(self->url, sizeof self->url, "http://%s%s%s:%u/", is_v6 ? "[" : "", address,
             is_v6 ? "]" : "", (unsigned)self->port);
    return 0;
}

uint16_t sk2_gateway_port(const sk2_gateway_t *self)
{
    return self ? self->port : 0;
}

const char *sk2_gateway_url(const sk2_gateway_t *self)
{
    return self && self->lws ? self->url : NULL;
}

int sk2_gateway_start(sk2_gateway_t *self)
{
    if (!self)
        return SK2_EINVAL;
    if (!self->lws || self->is_started)
        return SK2_ESTATE;
    self->is_started = true;
    /* Signals belong to the application: the threads block them all. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = 0;
    if (pthread_create(&self->web_thread, NULL, gw_web_thread, self) != 0)
        rc = SK2_ESYS;
    else
        self->has_web_thread = true;
    if (rc == 0) {
        if (pthread_create(&self->client_thread, NULL, gw_upstream_thread, self) != 0)
            rc = SK2_ESYS;
        else
            self->has_client_thread = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int sk2_gateway_stats(sk2_gateway_t *self, sk2_gateway_stats_t *stats)
{
    if (!self || !stats)
        return SK2_EINVAL;
    const gw_counters_t *c = &self->counters;
    *stats = (sk2_gateway_stats_t){
        .servers = atomic_load_explicit(&c->servers, memory_order_relaxed),
        .devices = atomic_load_explicit(&c->devices, memory_order_relaxed),
        .websockets = atomic_load_explicit(&c->websockets, memory_order_relaxed),
        .frames_received = atomic_load_explicit(&c->frames_received, memory_order_relaxed),
        .frames_sent = atomic_load_explicit(&c->frames_sent, memory_order_relaxed),
        .frames_skipped = atomic_load_explicit(&c->frames_skipped, memory_order_relaxed),
        .frames_rejected = atomic_load_explicit(&c->frames_rejected, memory_order_relaxed),
        .http_requests = atomic_load_explicit(&c->http_requests, memory_order_relaxed),
        .http_client_errors = atomic_load_explicit(&c->http_client_errors, memory_order_relaxed),
        .http_connections = atomic_load_explicit(&c->http_connections, memory_order_relaxed),
        .http_evicted = atomic_load_explicit(&c->http_evicted, memory_order_relaxed),
        .http_refused = atomic_load_explicit(&c->http_refused, memory_order_relaxed),
        .http_timed_out = atomic_load_explicit(&c->http_timed_out, memory_order_relaxed),
        .http_unauthorized = atomic_load_explicit(&c->http_unauthorized, memory_order_relaxed),
    };
    return 0;
}

gw_slot_t *gw_slot_find(sk2_gateway_t *gw, const char *key, sk2_stream_kind_t kind)
{
    for (size_t i = 0; i < gw->slot_count; i++)
        if (gw->slots[i].kind == kind && strcmp(gw->slots[i].key, key) == 0)
            return &gw->slots[i];
    return NULL;
}

void gw_command_clear(gw_command_t *command)
{
    free(command->value_json);
    free(command->answer);
    memset(command, 0, sizeof *command);
}

void gw_wake_upstream(sk2_gateway_t *gw)
{
    /* A full pipe already means "wake up": nothing is lost when this write fails. */
    char byte = 1;
    ssize_t n = write(gw->wake_pipe[1], &byte, 1);
    (void)n;
}

sk2_stream_kind_t gw_kind_from_name(const char *name, size_t len)
{
    static const sk2_stream_kind_t kinds[] = {SK2_STREAM_DEPTH, SK2_STREAM_IR, SK2_STREAM_COLOR};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const char *k = sk2_stream_kind_name(kinds[i]);
        if (strlen(k) == len && memcmp(k, name, len) == 0)
            return kinds[i];
    }
    return (sk2_stream_kind_t)0;
}
