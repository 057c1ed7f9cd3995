/* The `me` payload: what a server says about itself and its devices. Built by the server,
 * parsed (with limits) by the client. Private to libsk2. */
#ifndef SK2_PROTO_ME_H
#define SK2_PROTO_ME_H

#include <stddef.h>

#include <jansson.h>

/* Limits on a parsed `me`: more devices, or longer strings, are a protocol error. */
#define SK2_ME_MAX_DEVICES   256
#define SK2_ME_MAX_STRING    1024
#define SK2_ME_MAX_ENDPOINTS 64

typedef struct {
    const char *id;    /* borrowed from the payload */
    json_t *endpoints; /* the device's endpoint map (borrowed): name -> address string */
} sk2_me_device_t;

typedef struct {
    json_t *payload;          /* the whole payload (one reference held) */
    const char *name;         /* server name */
    const char *control;      /* control endpoint as the server sees it, or NULL */
    size_t device_count;      /* entries in devices */
    sk2_me_device_t *devices; /* in the server's order */
} sk2_me_t;

/* Checks and indexes a `me` payload (one new reference is taken). Returns 0 and a new *me,
 * SK2_EPROTO (missing or ill-typed fields, duplicate ids, version not the number 1) or
 * SK2_ELIMIT, with a reason in why. */
int sk2_me_parse(json_t *payload, sk2_me_t **me, char *why, size_t why_size);

/* Frees; sets *me_p to NULL. Safe on NULL. */
void sk2_me_destroy(sk2_me_t **me_p);

/* The device with this id, or NULL. */
const sk2_me_device_t *sk2_me_find(const sk2_me_t *me, const char *id);

/* An endpoint of a device by name, or NULL. */
const char *sk2_me_endpoint(const sk2_me_device_t *device, const char *name);

/* The name a server or a relay goes by: `name`, or when it is NULL "<what> on <host name>"
 * written into buf. NULL if the name is empty, longer than SK2_SERVER_NAME_MAX bytes or not
 * UTF-8. */
const char *sk2_me_own_name(const char *name, const char *what, char *buf, size_t size);

#endif
