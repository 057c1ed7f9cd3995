/* Keyed commands. A client names a key of a device and a value; the server checks both against
 * one table of keys, applies the value through the device's pipeline (which hands work that
 * touches the camera to the pipeline thread, so the control loop never waits on a device) and
 * answers with what it applied, or with a reason and a code saying what was wrong.
 *
 * Exactly once: a client resends a command it has no answer for, under the same id, until
 * the command's time-to-live runs out. The first copy to arrive is applied and its answer kept
 * here under the id for twice the time-to-live; every later copy is answered with that same
 * answer and changes nothing. The table is global (ids carry 64 random bits from the client),
 * a ring in order of arrival, bounded by SK2_COMMAND_CACHE_MAX. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <czmq.h>

#include "core/log_internal.h"
#include "device/device_impl.h"
#include "proto/msg.h"
#include "proto/pose.h"
#include "server/command.h"
#include "sk2/error.h"

/* The longest a kept answer outlives its command's arrival, microseconds. */
#define S_KEEP_MAX_US (1200LL * 1000000)

typedef struct {
    char id[SK2_MSG_COMMAND_ID_MAX + 1];
    json_t *reply;      /* the answer sent the first time; NULL: free slot */
    int64_t expires_us; /* monotonic time after which the id may be applied again */
} s_entry_t;

typedef struct {
    char id[SK2_DEVICE_ID_MAX + 1];
    char label[SK2_COMMAND_LABEL_MAX + 1];
    char location[SK2_COMMAND_LOCATION_MAX + 1];
    char recording[SK2_COMMAND_RECORD_NAME_MAX + 6]; /* file name in the record folder */
    bool has_pose;   /* a pose was set (command, --pose or the state file) */
    sk2_pose_t pose; /* then: depth optical frame to the rig's world */
} s_meta_t;

/* Metadata is kept by device id, so a device that is lost and comes back keeps its label. */
#define S_META_MAX 256

struct sk2_commands {
    s_entry_t cache[SK2_COMMAND_CACHE_MAX]; /* ring, oldest at head */
    size_t head;                            /* index of the oldest entry */
    size_t used;                            /* entries in the ring */
    s_meta_t meta[S_META_MAX];              /* labels and locations set so far */
    size_t meta_count;
    sk2_command_stats_t stats;
    char *record_dir; /* where `record` may write (sk2 serve --record-dir), NULL: nowhere */
    char *state_path; /* where labels, locations and poses persist (--state), NULL: nowhere */
};

/* The value types of keys, as `list` names them. */
typedef enum { S_BOOL, S_NUMBER, S_INTEGER, S_TEXT } s_type_t;

/* What a per-stream key sets of its stream. */
typedef enum { S_ROLE_DEVICE, S_ROLE_ON, S_ROLE_SIZE, S_ROLE_CODEC } s_role_t;

/* What a key applies to; per-stream keys (`stream.<kind>`, `resolution.<kind>`,
 * `codec.<kind>`) carry their kind. */
typedef struct {
    const char *key;
    s_type_t type;
    bool is_settable;
    sk2_stream_kind_t kind; /* per-stream keys only */
    s_role_t role;
    const char *help; /* one line for `list` and for refusals */
} s_key_t;

static const s_key_t s_keys[] = {
    {"running", S_BOOL, true, 0, 0, "true: the device captures; false: it is stopped"},
    {"stream.depth", S_BOOL, true, SK2_STREAM_DEPTH, S_ROLE_ON,
     "false: no depth frames, whoever subscribes; true: as subscribers ask"},
    {"stream.ir", S_BOOL, true, SK2_STREAM_IR, S_ROLE_ON,
     "false: no IR frames, whoever subscribes; true: as subscribers ask"},
    {"stream.color", S_BOOL, true, SK2_STREAM_COLOR, S_ROLE_ON,
     "false: no colour frames, whoever subscribes; true: as subscribers ask"},
    {"fps", S_NUMBER, true, 0, 0,
     "frames per second, 0..1000 (0: as fast as possible); devices whose backend chooses its "
     "rate (mock) only"},
    {"jpeg_quality", S_INTEGER, true, 0, 0, "quality of colour frames sent as jpeg, 1..100"},
    {"label", S_TEXT, true, 0, 0, "a name for people, up to 64 bytes; \"\" clears it"},
    {"location", S_TEXT, true, 0, 0, "where the device is, up to 128 bytes; \"\" clears it"},
    {"pose", S_TEXT, true, 0, 0,
     "where the device is in the rig: JSON {\"rotation\": 9 numbers (row-major) or a "
     "quaternion w,x,y,z, \"translation\": 3 numbers (metres)}, depth optical frame to "
     "world; \"\" clears it"},
    {"record", S_TEXT, true, 0, 0,
     "record the depth stream (rvl) into NAME.sk2r in the server's --record-dir; \"\" stops"},
    {"resolution", S_TEXT, false, 0, 0,
     "every stream's size; set one with resolution.depth, resolution.ir or resolution.color"},
    {"resolution.depth", S_TEXT, true, SK2_STREAM_DEPTH, S_ROLE_SIZE,
     "the depth stream's size, WxH (the mock: 256x212, 512x424, 1024x848)"},
    {"resolution.ir", S_TEXT, true, SK2_STREAM_IR, S_ROLE_SIZE,
     "the IR stream's size, WxH (the mock: 256x212, 512x424, 1024x848)"},
    {"resolution.color", S_TEXT, true, SK2_STREAM_COLOR, S_ROLE_SIZE,
     "the colour stream's size, WxH (the mock: even sizes 16x16..1920x1080)"},
    {"codec", S_TEXT, false, 0, 0,
     "the codecs offered per stream; set a stream's default with codec.depth, codec.ir or "
     "codec.color"},
    {"codec.depth", S_TEXT, true, SK2_STREAM_DEPTH, S_ROLE_CODEC,
     "the depth stream's default codec, for clients that do not choose one; one it offers"},
    {"codec.ir", S_TEXT, true, SK2_STREAM_IR, S_ROLE_CODEC,
     "the IR stream's default codec, for clients that do not choose one; one it offers"},
    {"codec.color", S_TEXT, true, SK2_STREAM_COLOR, S_ROLE_CODEC,
     "the colour stream's default codec, for clients that do not choose one; one it offers"},
};

#define S_KEY_COUNT (sizeof s_keys / sizeof s_keys[0])

static const char *s_type_name(s_type_t type)
{
    return type == S_BOOL      ? "bool"
           : type == S_NUMBER  ? "number"
           : type == S_INTEGER ? "integer"
                               : "string";
}

sk2_commands_t *sk2_commands_new(void)
{
    return calloc(1, sizeof(sk2_commands_t));
}

void sk2_commands_destroy(sk2_commands_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sk2_commands_t *self = *self_p;
    for (size_t i = 0; i < SK2_COMMAND_CACHE_MAX; i++)
        json_decref(self->cache[i].reply);
    free(self->record_dir);
    free(self->state_path);
    free(self);
    *self_p = NULL;
}

int sk2_commands_set_record_dir(sk2_commands_t *self, const char *dir)
{
    char *copy = dir ? strdup(dir) : NULL;
    if (dir && !copy)
        return SK2_ENOMEM;
    free(self->record_dir);
    self->record_dir = copy;
    return 0;
}

void sk2_commands_stats(const sk2_commands_t *self, sk2_command_stats_t *stats)
{
    *stats = self->stats;
}

/* ---- The cache of answers ------------------------------------------------------------------ */

static const s_entry_t *s_cached(const sk2_commands_t *self, const char *id, int64_t now_us)
{
    for (size_t i = 0; i < self->used; i++) {
        const s_entry_t *entry = &self->cache[(self->head + i) % SK2_COMMAND_CACHE_MAX];
        if (entry->expires_us > now_us && streq(entry->id, id))
            return entry;
    }
    return NULL;
}

static void s_keep(sk2_commands_t *self, const char *id, json_t *reply, int64_t keep_us,
                   int64_t now_us)
{
    /* Expired entries leave from the head; a full ring forgets its oldest regardless. */
    while (self->used > 0 &&
           (self->cache[self->head].expires_us <= now_us || self->used == SK2_COMMAND_CACHE_MAX)) {
        s_entry_t *oldest = &self->cache[self->head];
        if (oldest->expires_us > now_us) {
            static sk2_ratelimit_t limit;
            uint64_t held = 0;
            if (sk2_ratelimit_pass(&limit, 5000000, &held))
                SK2_WARN("server",
                         "more than %d commands within their time-to-live: the oldest id is "
                         "forgotten early and could be applied again (%llu more not logged)",
                         SK2_COMMAND_CACHE_MAX, (unsigned long long)held);
        }
        json_decref(oldest->reply);
        oldest->reply = NULL;
        self->head = (self->head + 1) % SK2_COMMAND_CACHE_MAX;
        self->used--;
    }
    s_entry_t *entry = &self->cache[(self->head + self->used++) % SK2_COMMAND_CACHE_MAX];
    snprintf(entry->id, sizeof entry->id, "%s", id);
    entry->reply = json_incref(reply);
    entry->expires_us = now_us + keep_us;
}

/* ---- Metadata -------------------------------------------------------------------------------- */

static s_meta_t *s_meta(const sk2_commands_t *self, const char *device_id)
{
    for (size_t i = 0; i < self->meta_count; i++)
        if (streq(self->meta[i].id, device_id))
            return (s_meta_t *)&self->meta[i];
    return NULL;
}

/* The device's metadata record, made if needed; NULL when the table is full of other devices'
 * records and none of them is served any more (it then forgets one that is not served). */
static s_meta_t *s_meta_make(sk2_commands_t *self, const char *device_id,
                             sk2_pipeline_t *const *pipelines, size_t count)
{
    s_meta_t *meta = s_meta(self, device_id);
    if (meta)
        return meta;
    if (self->meta_count == S_META_MAX) {
        for (size_t i = 0; i < self->meta_count && self->meta_count == S_META_MAX; i++) {
            bool is_served = false;
            for (size_t p = 0; p < count && !is_served; p++)
                is_served = streq(sk2_pipeline_device_id(pipelines[p]), self->meta[i].id);
            if (!is_served)
                self->meta[i] = self->meta[--self->meta_count];
        }
        if (self->meta_count == S_META_MAX)
            return NULL;
    }
    meta = &self->meta[self->meta_count++];
    memset(meta, 0, sizeof *meta);
    snprintf(meta->id, sizeof meta->id, "%s", device_id);
    return meta;
}

json_t *sk2_commands_describe(const sk2_commands_t *self, const sk2_pipeline_t *pipeline)
{
    json_t *description = sk2_pipeline_description(pipeline);
    const s_meta_t *meta = s_meta(self, sk2_pipeline_device_id(pipeline));
    if (!meta || (!meta->label[0] && !meta->location[0] && !meta->has_pose))
        return json_incref(description);
    json_t *copy = json_copy(description); /* shallow: shares the streams with the original */
    if (copy && meta->label[0])
        json_object_set_new(copy, "label", json_string(meta->label));
    if (copy && meta->location[0])
        json_object_set_new(copy, "location", json_string(meta->location));
    /* The pose set here wins over the device's own (a replay's recorded one). */
    if (copy && meta->has_pose)
        json_object_set_new(copy, "pose",
                            sk2_rigid_to_json(meta->pose.rotation, meta->pose.translation));
    return copy;
}

/* The pose the server serves for a device: one set here, else the device's own. */
static bool s_served_pose(const sk2_commands_t *self, const sk2_pipeline_t *pipeline,
                          sk2_pose_t *pose)
{
    const s_meta_t *meta = s_meta(self, sk2_pipeline_device_id(pipeline));
    if (meta && meta->has_pose) {
        *pose = meta->pose;
        return true;
    }
    return sk2_device_pose(sk2_pipeline_device(pipeline), pose) == 0;
}

static bool s_is_clean_text(const char *text);

/* ---- The state file ------------------------------------------------------------------------
 * Labels, locations and poses outlive the server in one JSON file (sk2 serve --state):
 * {"version": 1, "devices": {"ID": {"label": ..., "location": ..., "pose": {...}}}}. It is
 * written whole after every change, to a temporary file in the same folder that is flushed
 * and renamed over the old one, so a crash leaves the old state or the new, never half. */

#define S_STATE_MAX_BYTES (1024 * 1024)

static int s_save(const sk2_commands_t *self)
{
    if (!self->state_path)
        return 0;
    json_t *devices = json_object();
    for (size_t i = 0; devices && i < self->meta_count; i++) {
        const s_meta_t *meta = &self->meta[i];
        if (!meta->label[0] && !meta->location[0] && !meta->has_pose)
            continue;
        json_t *entry = json_object();
        if (entry && meta->label[0])
            json_object_set_new(entry, "label", json_string(meta->label));
        if (entry && meta->location[0])
            json_object_set_new(entry, "location", json_string(meta->location));
        if (entry && meta->has_pose)
            json_object_set_new(entry, "pose",
                                sk2_rigid_to_json(meta->pose.rotation, meta->pose.translation));
        json_object_set_new(devices, meta->id, entry);
    }
    json_t *root = devices ? json_pack("{s:i, s:o}", "version", 1, "devices", devices) : NULL;
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(root);
    if (!text)
        return SK2_ENOMEM;
    size_t length = strlen(text);
    char temporary[4200];
    int n = snprintf(temporary, sizeof temporary, "%s.tmp%ld", self->state_path, (long)getpid());
    int rc = SK2_ESYS;
    FILE *out = n > 0 && (size_t)n < sizeof temporary ? fopen(temporary, "w") : NULL;
    if (out) {
        bool is_written = fwrite(text, 1, length, out) == length && fputc('\n', out) != EOF &&
                          fflush(out) == 0 && fsync(fileno(out)) == 0;
        if (fclose(out) == 0 && is_written && rename(temporary, self->state_path) == 0)
            rc = 0;
        else
            unlink(temporary);
    }
    if (rc != 0)
        SK2_WARN("server", "cannot write the state file %s", self->state_path);
    free(text);
    return rc;
}

/* One device's entry of a state file into meta; false if malformed. */
static bool s_load_entry(const char *id, const json_t *entry, s_meta_t *meta, char *why,
                         size_t why_size)
{
    memset(meta, 0, sizeof *meta);
    if (strlen(id) == 0 || strlen(id) > SK2_DEVICE_ID_MAX || !json_is_object(entry)) {
        snprintf(why, why_size, "a device entry needs an id of 1..%d bytes and an object",
                 SK2_DEVICE_ID_MAX);
        return false;
    }
    snprintf(meta->id, sizeof meta->id, "%s", id);
    const char *name;
    const json_t *value;
    json_object_foreach((json_t *)entry, name, value)
    {
        bool is_label = streq(name, "label"), is_location = streq(name, "location");
        if (is_label || is_location) {
            size_t max = is_label ? SK2_COMMAND_LABEL_MAX : SK2_COMMAND_LOCATION_MAX;
            const char *text = json_string_value(value);
            if (!text || strlen(text) > max || !s_is_clean_text(text)) {
                snprintf(why, why_size, "device %.64s: %s must be text of at most %zu bytes", id,
                         name, max);
                return false;
            }
            snprintf(is_label ? meta->label : meta->location, max + 1, "%s", text);
        } else if (streq(name, "pose")) {
            char pose_why[200];
            if (sk2_rigid_from_json(value, SK2_POSE_TRANSLATION_MAX_M, meta->pose.rotation,
                                    meta->pose.translation, pose_why, sizeof pose_why) != 0) {
                snprintf(why, why_size, "device %.64s: pose: %s", id, pose_why);
                return false;
            }
            meta->has_pose = true;
        } else {
            snprintf(why, why_size, "device %.64s: unknown member \"%.32s\"", id, name);
            return false;
        }
    }
    return true;
}

int sk2_commands_set_state_file(sk2_commands_t *self, const char *path, char *why, size_t why_size)
{
    if (!path || !path[0] || strlen(path) > 4096) {
        snprintf(why, why_size, "no state file path, or one over 4096 bytes");
        return SK2_EINVAL;
    }
    struct stat info;
    json_t *root = NULL;
    int rc = SK2_ECORRUPT;
    s_meta_t *loaded = calloc(S_META_MAX, sizeof *loaded);
    size_t count = 0;
    if (!loaded)
        return SK2_ENOMEM;
    if (stat(path, &info) != 0) {
        rc = 0; /* no file yet: it is written at the first change */
        goto out;
    }
    if (!S_ISREG(info.st_mode) || info.st_size > S_STATE_MAX_BYTES) {
        snprintf(why, why_size, "%s is not a file of at most %d bytes", path, S_STATE_MAX_BYTES);
        goto out;
    }
    json_error_t error;
    root = json_load_file(path, JSON_REJECT_DUPLICATES, &error);
    json_t *devices = json_object_get(root, "devices");
    if (!root || !json_is_object(root) ||
        json_integer_value(json_object_get(root, "version")) != 1 || !json_is_object(devices) ||
        json_object_size(root) != 2) {
        snprintf(why, why_size, "%s is not a state file: %s", path,
                 root ? "want {\"version\": 1, \"devices\": {...}}" : error.text);
        goto out;
    }
    if (json_object_size(devices) > S_META_MAX) {
        snprintf(why, why_size, "%s: more than %d devices", path, S_META_MAX);
        goto out;
    }
    const char *id;
    const json_t *entry;
    json_object_foreach(devices, id, entry)
    {
        if (!s_load_entry(id, entry, &loaded[count], why, why_size))
            goto out;
        count++;
    }
    rc = 0;
out:
    json_decref(root);
    if (rc == 0) {
        char *copy = strdup(path);
        if (!copy) {
            free(loaded);
            return SK2_ENOMEM;
        }
        free(self->state_path);
        self->state_path = copy;
        /* What the file says replaces labels, locations and poses set so far. */
        for (size_t i = 0; i < count; i++) {
            s_meta_t *meta = (s_meta_t *)s_meta(self, loaded[i].id);
            if (!meta && self->meta_count < S_META_MAX)
                meta = &self->meta[self->meta_count++];
            if (meta)
                *meta = loaded[i];
        }
    }
    free(loaded);
    return rc;
}

int sk2_commands_set_pose(sk2_commands_t *self, const char *device_id, const sk2_pose_t *pose,
                          sk2_pipeline_t *const *pipelines, size_t count)
{
    if (!device_id || (pose && sk2_pose_check(pose, NULL, 0) != 0))
        return SK2_EINVAL;
    s_meta_t *meta = s_meta_make(self, device_id, pipelines, count);
    if (!meta)
        return SK2_ELIMIT;
    s_meta_t before = *meta;
    meta->has_pose = pose != NULL;
    if (pose)
        meta->pose = *pose;
    int rc = s_save(self);
    if (rc != 0)
        *meta = before;
    return rc;
}

/* ---- Keys ------------------------------------------------------------------------------------ */

static const s_key_t *s_find_key(const char *name)
{
    for (size_t i = 0; i < S_KEY_COUNT; i++)
        if (streq(s_keys[i].key, name))
            return &s_keys[i];
    return NULL;
}

/* A boolean from true/false, or from the words a command line gives. */
static bool s_parse_bool(const json_t *value, bool *out)
{
    if (json_is_boolean(value)) {
        *out = json_is_true(value);
        return true;
    }
    const char *text = json_string_value(value);
    if (!text)
        return false;
    static const char *const yes[] = {"true", "on", "1", "yes"};
    static const char *const no[] = {"false", "off", "0", "no"};
    for (size_t i = 0; i < 4; i++) {
        if (streq(text, yes[i]) || streq(text, no[i])) {
            *out = streq(text, yes[i]);
            return true;
        }
    }
    return false;
}

/* A finite number from a JSON number, or from a string that is one number and nothing else. */
static bool s_parse_number(const json_t *value, double *out)
{
    if (json_is_number(value)) {
        *out = json_number_value(value);
        return isfinite(*out);
    }
    const char *text = json_string_value(value);
    if (!text || !text[0])
        return false;
    char *end = NULL;
    *out = strtod(text, &end);
    return end && *end == '\0' && isfinite(*out);
}

/* Text fit for a label: no control characters (it is shown in terminals and logs). */
static bool s_is_clean_text(const char *text)
{
    for (const unsigned char *c = (const unsigned char *)text; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return false;
    return true;
}

/* The key's current value on a device, for `list` and replies. A new reference. */
static json_t *s_current(const sk2_commands_t *self, const s_key_t *key, sk2_pipeline_t *pipeline)
{
    const s_meta_t *meta = s_meta(self, sk2_pipeline_device_id(pipeline));
    if (streq(key->key, "running"))
        return json_boolean(sk2_pipeline_is_running(pipeline));
    if (key->role == S_ROLE_ON)
        return json_boolean(!sk2_pipeline_is_stream_held(pipeline, key->kind));
    if (key->role == S_ROLE_SIZE) {
        const sk2_stream_info_t *info = sk2_pipeline_stream_info(pipeline, key->kind);
        char text[32];
        snprintf(text, sizeof text, "%ux%u", info ? info->width : 0, info ? info->height : 0);
        return json_string(text);
    }
    if (key->role == S_ROLE_CODEC) {
        const char *codec = sk2_pipeline_codec(pipeline, key->kind);
        return json_string(codec ? codec : "");
    }
    if (streq(key->key, "fps"))
        return json_real(sk2_pipeline_fps(pipeline));
    if (streq(key->key, "jpeg_quality"))
        return json_integer(sk2_pipeline_quality(pipeline));
    if (streq(key->key, "label"))
        return json_string(meta ? meta->label : "");
    if (streq(key->key, "location"))
        return json_string(meta ? meta->location : "");
    if (streq(key->key, "record"))
        return json_string(meta && sk2_pipeline_is_recording(pipeline) ? meta->recording : "");
    if (streq(key->key, "pose")) {
        sk2_pose_t pose;
        return s_served_pose(self, pipeline, &pose)
                   ? sk2_rigid_to_json(pose.rotation, pose.translation)
                   : json_string("");
    }
    /* resolution and codec, per stream: what the device gives and the codecs offered. */
    json_t *per_stream = json_object();
    json_t *streams = json_object_get(sk2_pipeline_description(pipeline), "streams");
    size_t i;
    json_t *stream;
    json_array_foreach(streams, i, stream)
    {
        const char *kind = json_string_value(json_object_get(stream, "kind"));
        if (!kind)
            continue;
        if (streq(key->key, "resolution")) {
            char text[32];
            snprintf(text, sizeof text, "%lldx%lld",
                     (long long)json_integer_value(json_object_get(stream, "width")),
                     (long long)json_integer_value(json_object_get(stream, "height")));
            json_object_set_new(per_stream, kind, json_string(text));
        } else {
            json_object_set(per_stream, kind, json_object_get(stream, "codecs"));
        }
    }
    return per_stream;
}

static json_t *s_list_device(const sk2_commands_t *self, sk2_pipeline_t *pipeline)
{
    json_t *keys = json_array();
    for (size_t i = 0; i < S_KEY_COUNT; i++) {
        const s_key_t *key = &s_keys[i];
        if (key->kind != 0 && !sk2_pipeline_has_stream(pipeline, key->kind))
            continue;
        bool is_settable = key->is_settable;
        if (streq(key->key, "fps") && !sk2_device_can_set_fps(sk2_pipeline_device(pipeline)))
            is_settable = false;
        json_array_append_new(keys, json_pack("{s:s, s:s, s:o, s:b, s:s}", "key", key->key, "type",
                                              s_type_name(key->type), "value",
                                              s_current(self, key, pipeline), "settable",
                                              is_settable, "help", key->help));
    }
    return json_pack("{s:s, s:o}", "id", sk2_pipeline_device_id(pipeline), "keys", keys);
}

/* A refusal: {"id", "ok": false, "code", "error"}. */
static json_t *s_refuse(const char *id, const char *code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static json_t *s_refuse(const char *id, const char *code, const char *format, ...)
{
    char text[512];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    json_t *reason = json_string(text);
    if (!reason)
        reason = json_string("refused");
    return json_pack("{s:s, s:b, s:s, s:o}", "id", id, "ok", false, "code", code, "error", reason);
}

/* A recording's file name: 1..SK2_COMMAND_RECORD_NAME_MAX letters, digits, '.', '_' or '-',
 * not starting with '.', so that it can only name a new file directly in the record folder. */
static bool s_is_file_name(const char *name)
{
    size_t length = strlen(name);
    if (length == 0 || length > SK2_COMMAND_RECORD_NAME_MAX || name[0] == '.')
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-'))
            return false;
    return true;
}

/* The `record` key: starts recording into a new file of the record folder, or stops. The
 * server never writes where a client names: only a plain file name is taken, inside the folder
 * the server's operator allowed, and never over an existing file. */
static json_t *s_record(sk2_commands_t *self, const char *id, const char *name,
                        sk2_pipeline_t *pipeline, sk2_pipeline_t *const *pipelines, size_t count,
                        bool *is_applied)
{
    const char *device_id = sk2_pipeline_device_id(pipeline);
    if (!self->record_dir)
        return s_refuse(id, "unsupported",
                        "this server records nothing: it was not started with --record-dir");
    if (!name)
        return s_refuse(id, "bad-value", "record takes a file name, or \"\" to stop");
    s_meta_t *meta = s_meta_make(self, device_id, pipelines, count);
    if (!meta)
        return s_refuse(id, "failed", "too many devices with metadata");
    char path[4096] = "";
    if (name[0]) {
        if (!s_is_file_name(name))
            return s_refuse(id, "bad-value",
                            "record takes a file name of 1..%d letters, digits, '.', '_' or '-' "
                            "(not starting with '.'), written in the server's record folder",
                            SK2_COMMAND_RECORD_NAME_MAX);
        size_t length = strlen(name);
        bool has_suffix = length > 5 && streq(name + length - 5, ".sk2r");
        int n = snprintf(path, sizeof path, "%s/%s%s", self->record_dir, name,
                         has_suffix ? "" : ".sk2r");
        struct stat info;
        if (n < 0 || (size_t)n >= sizeof path)
            return s_refuse(id, "bad-value", "the recording's path is too long");
        if (lstat(path, &info) == 0)
            return s_refuse(id, "bad-value", "%s%s exists already in the record folder", name,
                            has_suffix ? "" : ".sk2r");
        snprintf(meta->recording, sizeof meta->recording, "%s%s", name, has_suffix ? "" : ".sk2r");
    }
    sk2_pose_t pose;
    bool has_pose = s_served_pose(self, pipeline, &pose);
    int rc = sk2_pipeline_set_recording(pipeline, name[0] ? path : NULL, has_pose ? &pose : NULL);
    if (rc == SK2_EUNSUPPORTED)
        return s_refuse(id, "unsupported", "device %s has no depth stream to record", device_id);
    if (rc != 0)
        return s_refuse(id, "failed", "cannot record: %s", sk2_strerror(rc));
    if (!name[0])
        meta->recording[0] = '\0';
    *is_applied = true;
    SK2_INFO("server", "command %s: device %s record %s", id, device_id,
             name[0] ? meta->recording : "stopped");
    return json_pack("{s:s, s:b, s:s, s:s, s:s}", "id", id, "ok", true, "device", device_id, "key",
                     "record", "value", meta->recording);
}

/* "WxH" with each side 1..65535 written as decimal digits and nothing else. */
static bool s_parse_size(const char *text, uint32_t *width, uint32_t *height)
{
    uint32_t sides[2] = {0, 0};
    const char *c = text;
    for (int side = 0; side < 2; side++) {
        int digits = 0;
        for (; *c >= '0' && *c <= '9'; c++, digits++) {
            if (digits == 5)
                return false;
            sides[side] = sides[side] * 10 + (uint32_t)(*c - '0');
        }
        if (digits == 0 || sides[side] == 0 || sides[side] > 65535 ||
            *c != (side == 0 ? 'x' : '\0'))
            return false;
        c++;
    }
    *width = sides[0];
    *height = sides[1];
    return true;
}

/* `resolution.KIND`: the device gives the stream another size from now on. The device is asked
 * whether it can before anything is touched, so a refusal changes nothing. */
static json_t *s_resolution(const char *id, const s_key_t *key, const char *text,
                            sk2_pipeline_t *pipeline, bool *is_applied, bool *me_changed)
{
    const char *device_id = sk2_pipeline_device_id(pipeline);
    const char *kind = sk2_stream_kind_name(key->kind);
    const sk2_stream_info_t *info = sk2_pipeline_stream_info(pipeline, key->kind);
    const char *sizes = sk2_pipeline_stream_sizes(pipeline, key->kind);
    uint32_t width = 0, height = 0;
    if (!text || !s_parse_size(text, &width, &height))
        return s_refuse(id, "bad-value", "%s takes a size WxH, such as %ux%u", key->key,
                        info->width, info->height);
    int rc = sk2_pipeline_check_size(pipeline, key->kind, width, height);
    if (rc == SK2_EUNSUPPORTED)
        return s_refuse(id, "unsupported",
                        "the %s backend of device %s cannot change the size of its %s stream: "
                        "it is %ux%u only",
                        sk2_device_backend(sk2_pipeline_device(pipeline)), device_id, kind,
                        info->width, info->height);
    if (rc == SK2_EINVAL)
        return s_refuse(id, "bad-value", "device %s's %s stream cannot be %ux%u: it can be %s",
                        device_id, kind, width, height, sizes ? sizes : "its current size only");
    if (rc != 0)
        return s_refuse(id, "failed", "cannot check the size of device %s's %s stream: %s",
                        device_id, kind, sk2_strerror(rc));
    if (sk2_pipeline_is_recording(pipeline) && key->kind == SK2_STREAM_DEPTH)
        return s_refuse(id, "failed",
                        "device %s records its depth stream: a recording keeps one size, stop "
                        "it (record \"\") before changing the size",
                        device_id);
    rc = sk2_pipeline_set_size(pipeline, key->kind, width, height);
    /* Past the check the pipeline rebuilds its record whatever happens (the device may even
     * have failed to start again), so `me` is rebuilt too. */
    *me_changed = true;
    if (rc != 0)
        return s_refuse(id, "failed", "cannot give device %s's %s stream the size %ux%u: %s",
                        device_id, kind, width, height, sk2_strerror(rc));
    *is_applied = true;
    char applied[32];
    snprintf(applied, sizeof applied, "%ux%u", width, height);
    SK2_INFO("server", "command %s: device %s %s = %s", id, device_id, key->key, applied);
    return json_pack("{s:s, s:b, s:s, s:s, s:s}", "id", id, "ok", true, "device", device_id, "key",
                     key->key, "value", applied);
}

/* `codec.KIND`: the codec `me` names as the stream's default. Each subscription still names its
 * own codec; this is the one clients that leave the choice to the server subscribe with. */
static json_t *s_codec(const char *id, const s_key_t *key, const char *text,
                       sk2_pipeline_t *pipeline, bool *is_applied, bool *me_changed)
{
    const char *device_id = sk2_pipeline_device_id(pipeline);
    int rc = text ? sk2_pipeline_set_codec(pipeline, key->kind, text) : SK2_EUNSUPPORTED;
    if (rc == SK2_EUNSUPPORTED) {
        char offered[256] = "";
        const json_t *streams = json_object_get(sk2_pipeline_description(pipeline), "streams");
        size_t i, c;
        const json_t *stream, *name;
        json_array_foreach(streams, i, stream)
        {
            if (!streq(json_string_value(json_object_get(stream, "kind")),
                       sk2_stream_kind_name(key->kind)))
                continue;
            json_array_foreach(json_object_get(stream, "codecs"), c, name)
            {
                snprintf(offered + strlen(offered), sizeof offered - strlen(offered), "%s%s",
                         offered[0] ? ", " : "", json_string_value(name));
            }
        }
        return s_refuse(id, "bad-value", "device %s offers its %s stream in %s only", device_id,
                        sk2_stream_kind_name(key->kind), offered);
    }
    if (rc != 0)
        return s_refuse(id, "failed", "cannot set %s: %s", key->key, sk2_strerror(rc));
    *is_applied = true;
    *me_changed = true;
    SK2_INFO("server", "command %s: device %s %s = %s", id, device_id, key->key, text);
    return json_pack("{s:s, s:b, s:s, s:s, s:s}", "id", id, "ok", true, "device", device_id, "key",
                     key->key, "value", sk2_pipeline_codec(pipeline, key->kind));
}

/* `pose`: JSON text of a pose, or "" to clear the one set here. Checked whole before anything
 * changes; kept by device id like a label, and in the state file when there is one. */
static json_t *s_pose(sk2_commands_t *self, const char *id, const char *text,
                      sk2_pipeline_t *pipeline, sk2_pipeline_t *const *pipelines, size_t count,
                      bool *is_applied, bool *me_changed)
{
    const char *device_id = sk2_pipeline_device_id(pipeline);
    sk2_pose_t pose;
    char why[256];
    if (!text)
        return s_refuse(id, "bad-value", "pose takes JSON text as a string, or \"\" to clear it");
    if (text[0] && sk2_pose_parse(text, strlen(text), &pose, why, sizeof why) != 0)
        return s_refuse(id, "bad-value", "pose refused: %s", why);
    int rc = sk2_commands_set_pose(self, device_id, text[0] ? &pose : NULL, pipelines, count);
    if (rc == SK2_ELIMIT)
        return s_refuse(id, "failed", "too many devices with metadata");
    if (rc != 0)
        return s_refuse(id, "failed", "cannot write the server's state file: pose unchanged");
    *is_applied = true;
    *me_changed = true;
    SK2_INFO("server", "command %s: device %s pose %s", id, device_id, text[0] ? "set" : "cleared");
    sk2_pose_t served;
    json_t *value = s_served_pose(self, pipeline, &served)
                        ? sk2_rigid_to_json(served.rotation, served.translation)
                        : json_string("");
    return json_pack("{s:s, s:b, s:s, s:s, s:o}", "id", id, "ok", true, "device", device_id, "key",
                     "pose", "value", value);
}

/* Applies key = value on one device. Returns the answer; sets *is_applied when a setting
 * changed hands to the pipeline (or the metadata). */
static json_t *s_set(sk2_commands_t *self, const char *id, const s_key_t *key, const json_t *value,
                     sk2_pipeline_t *pipeline, sk2_pipeline_t *const *pipelines, size_t count,
                     bool *is_applied, bool *me_changed)
{
    const char *device_id = sk2_pipeline_device_id(pipeline);
    if (!key->is_settable)
        return s_refuse(id, "read-only", "%s cannot be set: %s", key->key, key->help);
    if (!value || json_is_null(value))
        return s_refuse(id, "bad-value", "%s needs a value (%s: %s)", key->key,
                        s_type_name(key->type), key->help);
    bool flag = false;
    double number = 0;
    const char *text = json_string_value(value);
    json_t *applied = NULL;
    int rc = 0;
    if (key->type == S_BOOL) {
        if (!s_parse_bool(value, &flag))
            return s_refuse(id, "bad-value", "%s takes true or false, not that value", key->key);
        applied = json_boolean(flag);
        if (key->kind != 0)
            rc = sk2_pipeline_set_stream_held(pipeline, key->kind, !flag);
        else
            rc = sk2_pipeline_set_running(pipeline, flag);
    } else if (key->type == S_NUMBER || key->type == S_INTEGER) {
        bool is_fps = streq(key->key, "fps");
        double low = is_fps ? 0 : 1, high = is_fps ? 1000 : 100;
        if (!s_parse_number(value, &number) || number < low || number > high ||
            (key->type == S_INTEGER && number != floor(number)))
            return s_refuse(id, "bad-value", "%s takes %s %g..%g", key->key,
                            key->type == S_INTEGER ? "an integer" : "a number", low, high);
        if (is_fps) {
            rc = sk2_pipeline_set_fps(pipeline, number);
            if (rc == SK2_EUNSUPPORTED)
                return s_refuse(id, "unsupported",
                                "the %s backend of device %s runs at its own rate: fps cannot "
                                "be set",
                                sk2_device_backend(sk2_pipeline_device(pipeline)), device_id);
            *me_changed = rc == 0;
            applied = json_real(number);
        } else {
            rc = sk2_pipeline_set_quality(pipeline, (int)number);
            applied = json_integer((json_int_t)number);
        }
    } else if (streq(key->key, "record")) {
        return s_record(self, id, text, pipeline, pipelines, count, is_applied);
    } else if (key->role == S_ROLE_SIZE) {
        return s_resolution(id, key, text, pipeline, is_applied, me_changed);
    } else if (key->role == S_ROLE_CODEC) {
        return s_codec(id, key, text, pipeline, is_applied, me_changed);
    } else if (streq(key->key, "pose")) {
        return s_pose(self, id, text, pipeline, pipelines, count, is_applied, me_changed);
    } else {
        bool is_label = streq(key->key, "label");
        size_t max = is_label ? SK2_COMMAND_LABEL_MAX : SK2_COMMAND_LOCATION_MAX;
        if (!text || strlen(text) > max || !s_is_clean_text(text))
            return s_refuse(id, "bad-value",
                            "%s takes text of at most %zu bytes, without control "
                            "characters",
                            key->key, max);
        s_meta_t *meta = s_meta_make(self, device_id, pipelines, count);
        if (!meta)
            return s_refuse(id, "failed", "too many devices with metadata");
        s_meta_t before = *meta;
        snprintf(is_label ? meta->label : meta->location, max + 1, "%s", text);
        if (s_save(self) != 0) {
            *meta = before;
            return s_refuse(id, "failed", "cannot write the server's state file: %s unchanged",
                            key->key);
        }
        *me_changed = true;
        applied = json_string(text);
    }
    if (rc != 0) {
        json_decref(applied);
        return s_refuse(id, "failed", "cannot set %s: %s", key->key, sk2_strerror(rc));
    }
    *is_applied = true;
    SK2_INFO("server", "command %s: device %s %s set", id, device_id, key->key);
    return json_pack("{s:s, s:b, s:s, s:s, s:o}", "id", id, "ok", true, "device", device_id, "key",
                     key->key, "value", applied);
}

/* Finds the device a command names, or the only one. */
static sk2_pipeline_t *s_find_device(const json_t *device, sk2_pipeline_t *const *pipelines,
                                     size_t count)
{
    if (!device)
        return count == 1 ? pipelines[0] : NULL;
    for (size_t i = 0; i < count; i++)
        if (streq(sk2_pipeline_device_id(pipelines[i]), json_string_value(device)))
            return pipelines[i];
    return NULL;
}

static json_t *s_execute(sk2_commands_t *self, const char *id, const json_t *payload,
                         sk2_pipeline_t *const *pipelines, size_t count, bool *is_applied,
                         bool *me_changed)
{
    const char *key_name = json_string_value(json_object_get(payload, "key"));
    const json_t *device = json_object_get(payload, "device");
    if (streq(key_name, "list")) {
        json_t *devices = json_array();
        for (size_t i = 0; i < count; i++)
            if (!device || streq(sk2_pipeline_device_id(pipelines[i]), json_string_value(device)))
                json_array_append_new(devices, s_list_device(self, pipelines[i]));
        if (device && json_array_size(devices) == 0) {
            json_decref(devices);
            return s_refuse(id, "unknown-device", "no device %s on this server",
                            json_string_value(device));
        }
        return json_pack("{s:s, s:b, s:s, s:{s:o}}", "id", id, "ok", true, "key", "list", "value",
                         "devices", devices);
    }
    const s_key_t *key = s_find_key(key_name);
    if (!key) {
        char names[512] = "list";
        for (size_t i = 0; i < S_KEY_COUNT; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), ", %s", s_keys[i].key);
        return s_refuse(id, "unknown-key", "unknown key \"%s\" (keys: %s)", key_name, names);
    }
    sk2_pipeline_t *pipeline = s_find_device(device, pipelines, count);
    if (!pipeline)
        return device ? s_refuse(id, "unknown-device", "no device %s on this server",
                                 json_string_value(device))
               : count == 0
                   ? s_refuse(id, "unknown-device", "this server has no devices")
                   : s_refuse(id, "unknown-device", "this server has %zu devices: name one", count);
    if (key->kind != 0 && !sk2_pipeline_has_stream(pipeline, key->kind))
        return s_refuse(id, "unknown-key", "device %s has no %s stream",
                        sk2_pipeline_device_id(pipeline), sk2_stream_kind_name(key->kind));
    return s_set(self, id, key, json_object_get(payload, "value"), pipeline, pipelines, count,
                 is_applied, me_changed);
}

json_t *sk2_commands_answer(sk2_commands_t *self, const json_t *payload,
                            sk2_pipeline_t *const *pipelines, size_t count, int *type,
                            bool *me_changed)
{
    *me_changed = false;
    *type = SK2_MSG_COMMAND_REPLY;
    self->stats.received++;
    char why[256];
    bool id_ok = false;
    int rc = sk2_msg_command_check(payload, &id_ok, why, sizeof why);
    if (!id_ok) {
        self->stats.refused++;
        *type = SK2_MSG_ERROR;
        return sk2_msg_error_payload(why);
    }
    const char *id = json_string_value(json_object_get(payload, "id"));
    int64_t now_us = sk2_clock_mono_us();
    const s_entry_t *seen = s_cached(self, id, now_us);
    if (seen) {
        self->stats.repeated++;
        SK2_DEBUG("server", "command %s repeated: answered again, not applied", id);
        return json_incref(seen->reply);
    }
    bool is_applied = false;
    json_t *reply = rc != 0
                        ? s_refuse(id, "malformed", "%s", why)
                        : s_execute(self, id, payload, pipelines, count, &is_applied, me_changed);
    if (!reply)
        return NULL;
    self->stats.applied += is_applied;
    self->stats.refused += json_is_false(json_object_get(reply, "ok"));
    const json_t *ttl = json_object_get(payload, "ttl_ms");
    int64_t ttl_us =
        (json_is_integer(ttl) ? json_integer_value(ttl) : SK2_COMMAND_TTL_DEFAULT_MS) * 1000;
    int64_t keep_us = 2 * ttl_us < S_KEEP_MAX_US ? 2 * ttl_us : S_KEEP_MAX_US;
    s_keep(self, id, reply, keep_us, now_us);
    return reply;
}
