/* The server's table of client flow states (clients.h). Every `flow` is checked whole before it
 * touches the table, so a malformed one changes nothing; the table is a fixed array scanned
 * linearly (at most SK2_CLIENTS_MAX entries, touched once per client heartbeat), and what it
 * keeps per client is bounded: the paused streams are folded into a count and the set of
 * kinds, so a `stats` reply stays well inside the control payload limit however many clients
 * there are. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/clients.h"
#include "sk2/device.h"
#include "sk2/error.h"
#include "sk2/frame.h"

/* A client that sends no heartbeat period is taken to use the default one (10 s). */
#define S_DEFAULT_HEARTBEAT_MS 10000
/* Exact integers JSON numbers can carry, the most a drop counter may announce. */
#define S_COUNT_MAX ((json_int_t)1 << 53)
/* (device, stream) pairs a client may say it receives. */
#define S_STREAMS_MAX 65536

typedef struct {
    char id[SK2_CLIENTS_ID_MAX + 1]; /* the client's own id; "" marks a free slot */
    size_t paused;                   /* streams it has paused */
    unsigned paused_kinds;           /* bit per sk2_stream_kind_t among them */
    size_t streams;                  /* (device, stream) pairs it receives or has paused */
    unsigned queue_frames;           /* its queue bound, 0: no queue of its own */
    uint64_t dropped;                /* frames its queue dropped so far */
    int heartbeat_ms;                /* its heartbeat period */
    uint64_t updates;                /* `flow` messages heard from it */
    int64_t heard_us;                /* monotonic time of the last one */
} s_client_t;

struct sk2_clients {
    s_client_t clients[SK2_CLIENTS_MAX];
    size_t count;     /* slots in use */
    uint64_t evicted; /* clients replaced because the table was full */
    uint64_t expired; /* clients forgotten because they went silent */
};

sk2_clients_t *sk2_clients_new(void)
{
    return calloc(1, sizeof(sk2_clients_t));
}

void sk2_clients_destroy(sk2_clients_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

size_t sk2_clients_count(const sk2_clients_t *self)
{
    return self ? self->count : 0;
}

static int64_t s_expiry_us(const s_client_t *client)
{
    return (3 * (int64_t)client->heartbeat_ms + 1000) * 1000;
}

/* Ids are shown in stats and logs: printable ASCII without spaces or quotes. */
static bool s_id_ok(const char *id, size_t max)
{
    size_t length = strlen(id);
    if (length < 1 || length > max)
        return false;
    for (size_t i = 0; i < length; i++)
        if ((unsigned char)id[i] < 0x21 || (unsigned char)id[i] > 0x7e || id[i] == '"' ||
            id[i] == '\\')
            return false;
    return true;
}

static sk2_stream_kind_t s_kind(const char *name)
{
    static const sk2_stream_kind_t kinds[] = {SK2_STREAM_DEPTH, SK2_STREAM_COLOR, SK2_STREAM_IR,
                                              SK2_STREAM_BODY};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(name, sk2_stream_kind_name(kinds[i])) == 0)
            return kinds[i];
    return (sk2_stream_kind_t)0;
}

/* An integer field in [min, max]; absent gives fallback when optional. */
static bool s_integer(const json_t *payload, const char *key, json_int_t min, json_int_t max,
                      bool is_optional, json_int_t fallback, json_int_t *value)
{
    json_t *field = json_object_get(payload, key);
    if (!field && is_optional) {
        *value = fallback;
        return true;
    }
    if (!json_is_integer(field) || json_integer_value(field) < min ||
        json_integer_value(field) > max)
        return false;
    *value = json_integer_value(field);
    return true;
}

/* Checks a payload into a record (not yet in the table). Returns false with a reason. */
static bool s_parse(const json_t *payload, s_client_t *client, char *why, size_t why_size)
{
    *client = (s_client_t){0};
    if (!json_is_object(payload)) {
        snprintf(why, why_size,
                 "flow takes an object {\"client\", \"paused\", \"queue_frames\", "
                 "\"dropped\"}");
        return false;
    }
    json_t *id = json_object_get(payload, "client");
    if (!json_is_string(id) || !s_id_ok(json_string_value(id), SK2_CLIENTS_ID_MAX)) {
        snprintf(why, why_size,
                 "flow: \"client\" must be 1 to %d printable characters without spaces or "
                 "quotes",
                 SK2_CLIENTS_ID_MAX);
        return false;
    }
    snprintf(client->id, sizeof client->id, "%s", json_string_value(id));
    json_int_t queue, dropped, streams, heartbeat;
    if (!s_integer(payload, "queue_frames", 0, SK2_CLIENTS_QUEUE_MAX, false, 0, &queue)) {
        snprintf(why, why_size, "flow: \"queue_frames\" must be an integer from 0 to %d",
                 SK2_CLIENTS_QUEUE_MAX);
        return false;
    }
    if (!s_integer(payload, "dropped", 0, S_COUNT_MAX, false, 0, &dropped)) {
        snprintf(why, why_size, "flow: \"dropped\" must be an integer from 0 to 2^53");
        return false;
    }
    if (!s_integer(payload, "streams", 0, S_STREAMS_MAX, true, 0, &streams)) {
        snprintf(why, why_size, "flow: \"streams\" must be an integer from 0 to %d", S_STREAMS_MAX);
        return false;
    }
    if (!s_integer(payload, "heartbeat_ms", 100, 3600000, true, S_DEFAULT_HEARTBEAT_MS,
                   &heartbeat)) {
        snprintf(why, why_size, "flow: \"heartbeat_ms\" must be an integer from 100 to 3600000");
        return false;
    }
    json_t *paused = json_object_get(payload, "paused");
    if (!json_is_array(paused) || json_array_size(paused) > SK2_CLIENTS_PAUSED_MAX) {
        snprintf(why, why_size, "flow: \"paused\" must be a list of at most %d streams",
                 SK2_CLIENTS_PAUSED_MAX);
        return false;
    }
    size_t index;
    json_t *entry;
    json_array_foreach(paused, index, entry)
    {
        json_t *device = json_object_get(entry, "device");
        json_t *kind = json_object_get(entry, "kind");
        sk2_stream_kind_t parsed = json_is_string(kind) ? s_kind(json_string_value(kind)) : 0;
        if (!json_is_object(entry) || !json_is_string(device) ||
            !s_id_ok(json_string_value(device), SK2_DEVICE_ID_MAX) || !parsed) {
            snprintf(why, why_size,
                     "flow: paused stream %zu must be {\"device\": ID, \"kind\": \"depth\", "
                     "\"ir\", \"color\" or \"body\"}",
                     index);
            return false;
        }
        client->paused_kinds |= 1u << parsed;
    }
    client->paused = json_array_size(paused);
    if ((json_int_t)client->paused > streams)
        streams = (json_int_t)client->paused; /* a paused stream is one it receives */
    client->streams = (size_t)streams;
    client->queue_frames = (unsigned)queue;
    client->dropped = (uint64_t)dropped;
    client->heartbeat_ms = (int)heartbeat;
    return true;
}

static s_client_t *s_find(sk2_clients_t *self, const char *id)
{
    for (size_t i = 0; i < SK2_CLIENTS_MAX; i++)
        if (self->clients[i].id[0] && strcmp(self->clients[i].id, id) == 0)
            return &self->clients[i];
    return NULL;
}

/* A slot for a new client: a free one, else the one heard from longest ago. */
static s_client_t *s_slot(sk2_clients_t *self)
{
    s_client_t *oldest = NULL;
    for (size_t i = 0; i < SK2_CLIENTS_MAX; i++) {
        s_client_t *client = &self->clients[i];
        if (!client->id[0])
            return client;
        if (!oldest || client->heard_us < oldest->heard_us)
            oldest = client;
    }
    self->evicted++;
    self->count--;
    return oldest;
}

void sk2_clients_add_sequence(json_t *sequences, const char *device, sk2_stream_kind_t kind,
                              uint64_t sequence)
{
    if (sequences)
        json_array_append_new(sequences,
                              json_pack("{s:s, s:s, s:I}", "device", device, "kind",
                                        sk2_stream_kind_name(kind), "sequence",
                                        (json_int_t)(sequence & (((uint64_t)1 << 53) - 1))));
}

int sk2_clients_update(sk2_clients_t *self, const json_t *payload, int64_t now_us, json_t **reply,
                       char *why, size_t why_size)
{
    *reply = NULL;
    s_client_t parsed;
    if (!s_parse(payload, &parsed, why, why_size))
        return SK2_EPROTO;
    sk2_clients_expire(self, now_us);
    s_client_t *client = s_find(self, parsed.id);
    uint64_t updates = 0;
    if (client) {
        updates = client->updates;
    } else {
        client = s_slot(self);
        self->count++;
    }
    *client = parsed;
    client->updates = updates + 1;
    client->heard_us = now_us;
    *reply = json_pack("{s:s, s:I, s:I}", "client", client->id, "clients", (json_int_t)self->count,
                       "expires_ms", (json_int_t)(s_expiry_us(client) / 1000));
    return 0;
}

void sk2_clients_expire(sk2_clients_t *self, int64_t now_us)
{
    for (size_t i = 0; i < SK2_CLIENTS_MAX; i++) {
        s_client_t *client = &self->clients[i];
        if (client->id[0] && now_us - client->heard_us > s_expiry_us(client)) {
            client->id[0] = '\0';
            self->count--;
            self->expired++;
        }
    }
}

static json_t *s_record_json(const s_client_t *client, int64_t now_us)
{
    json_t *kinds = json_array();
    for (int kind = SK2_STREAM_DEPTH; kind <= SK2_STREAM_BODY; kind++)
        if (client->paused_kinds & (1u << kind))
            json_array_append_new(kinds,
                                  json_string(sk2_stream_kind_name((sk2_stream_kind_t)kind)));
    return json_pack("{s:s, s:I, s:o, s:I, s:I, s:I, s:I, s:I}", "client", client->id, "paused",
                     (json_int_t)client->paused, "paused_kinds", kinds, "streams",
                     (json_int_t)client->streams, "queue_frames", (json_int_t)client->queue_frames,
                     "dropped", (json_int_t)client->dropped, "updates", (json_int_t)client->updates,
                     "heard_ms_ago", (json_int_t)((now_us - client->heard_us) / 1000));
}

json_t *sk2_clients_json(sk2_clients_t *self, int64_t now_us)
{
    sk2_clients_expire(self, now_us);
    json_t *list = json_array();
    size_t paused = 0;
    uint64_t dropped = 0;
    for (size_t i = 0; i < SK2_CLIENTS_MAX; i++) {
        const s_client_t *client = &self->clients[i];
        if (client->id[0]) {
            paused += client->paused > 0;
            dropped += client->dropped;
        }
    }
    /* Paused clients first, then the others, up to SK2_CLIENTS_LISTED: every count above
     * covers them all, the list only has to fit in a reply. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < SK2_CLIENTS_MAX && json_array_size(list) < SK2_CLIENTS_LISTED; i++) {
            const s_client_t *client = &self->clients[i];
            if (client->id[0] && (client->paused > 0) == (pass == 0))
                json_array_append_new(list, s_record_json(client, now_us));
        }
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "count", (json_int_t)self->count,
                     "paused", (json_int_t)paused, "frames_dropped", (json_int_t)dropped, "max",
                     (json_int_t)SK2_CLIENTS_MAX, "evicted", (json_int_t)self->evicted, "expired",
                     (json_int_t)self->expired, "listed", (json_int_t)json_array_size(list), "list",
                     list);
}
