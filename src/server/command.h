/* Keyed commands (docs/protocol.md, "The `command` request"): the server actor's table of keys
 * it lets clients set on its devices, the metadata they set (label, location), and the cache
 * of recent command ids that makes every command apply at most once however often a client
 * sends it again. Owned and called by the server actor alone. Private to libsk2. */
#ifndef SK2_SERVER_COMMAND_H
#define SK2_SERVER_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "server/pipeline.h"

/* Ids remembered at once; beyond this the oldest is forgotten (with a warning) even if its
 * time-to-live has not run out. */
#define SK2_COMMAND_CACHE_MAX 1024
/* Time-to-live of a command that does not say (ttl_ms), milliseconds. */
#define SK2_COMMAND_TTL_DEFAULT_MS 5000
/* Longest label and location, bytes of UTF-8. */
#define SK2_COMMAND_LABEL_MAX    64
#define SK2_COMMAND_LOCATION_MAX 128
/* Longest file name `record` takes (the ".sk2r" it may append included). */
#define SK2_COMMAND_RECORD_NAME_MAX 64

typedef struct sk2_commands sk2_commands_t;

typedef struct {
    uint64_t received; /* command messages, repeats included */
    uint64_t applied;  /* settings changed (a repeat or a list changes nothing) */
    uint64_t repeated; /* answered from the cache without applying again */
    uint64_t refused;  /* answered ok: false the first time */
} sk2_command_stats_t;

/* A new, empty table; NULL on out of memory. */
sk2_commands_t *sk2_commands_new(void);
void sk2_commands_destroy(sk2_commands_t **self_p);

/* Answers one command (its parsed payload) on the devices being served. Returns the payload of
 * the answer (a new reference) and sets *type to SK2_MSG_COMMAND_REPLY, or to SK2_MSG_ERROR
 * when the command has no usable id (nothing to answer by). *me_changed says that `me` must be
 * built again (label, location or frame rate changed). NULL on out of memory. */
json_t *sk2_commands_answer(sk2_commands_t *self, const json_t *payload,
                            sk2_pipeline_t *const *pipelines, size_t count, int *type,
                            bool *me_changed);

/* The device's record for `me`: the pipeline's description with the label and location set
 * by commands, if any. A new reference. */
json_t *sk2_commands_describe(const sk2_commands_t *self, const sk2_pipeline_t *pipeline);

/* The folder `record` writes new files into (a copy is kept), or NULL: `record` is refused.
 * Returns 0 or SK2_ENOMEM. */
int sk2_commands_set_record_dir(sk2_commands_t *self, const char *dir);

/* Labels, locations and poses persist in this file from now on: reads it (a missing file is an
 * empty state, written at the first change) and replaces what was set with what it holds.
 * Returns 0, SK2_EINVAL (bad path), SK2_ECORRUPT (not a state file, with why; nothing changed)
 * or SK2_ENOMEM. */
int sk2_commands_set_state_file(sk2_commands_t *self, const char *path, char *why, size_t why_size);

/* Sets (or with NULL clears) the pose served for a device id, saved to the state file. Returns
 * 0, SK2_EINVAL (pose refused by sk2_pose_check), SK2_ELIMIT (too many devices with metadata)
 * or SK2_ESYS (the state file could not be written; nothing changed). */
int sk2_commands_set_pose(sk2_commands_t *self, const char *device_id, const sk2_pose_t *pose,
                          sk2_pipeline_t *const *pipelines, size_t count);

void sk2_commands_stats(const sk2_commands_t *self, sk2_command_stats_t *stats);

#endif
