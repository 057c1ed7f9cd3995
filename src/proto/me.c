/* `me` payloads. A client trusts nothing in them: every field is type-checked and bounded
 * before the client acts on it, so a broken or hostile server causes an error event, not a
 * crash or an unbounded allocation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/me.h"
#include "sk2/error.h"
#include "sk2/server.h"

static int s_string_ok(json_t *value, char *why, size_t why_size, const char *what)
{
    if (!json_is_string(value)) {
        snprintf(why, why_size, "%s must be a string", what);
        return SK2_EPROTO;
    }
    if (json_string_length(value) == 0 || json_string_length(value) > SK2_ME_MAX_STRING) {
        snprintf(why, why_size, "%s must be 1 to %d bytes long", what, SK2_ME_MAX_STRING);
        return SK2_ELIMIT;
    }
    if (strlen(json_string_value(value)) != json_string_length(value)) {
        snprintf(why, why_size, "%s contains a NUL byte", what);
        return SK2_EPROTO;
    }
    return 0;
}

static int s_endpoints_ok(json_t *endpoints, char *why, size_t why_size, const char *what)
{
    if (!json_is_object(endpoints)) {
        snprintf(why, why_size, "%s must be an object", what);
        return SK2_EPROTO;
    }
    if (json_object_size(endpoints) > SK2_ME_MAX_ENDPOINTS) {
        snprintf(why, why_size, "%s has more than %d entries", what, SK2_ME_MAX_ENDPOINTS);
        return SK2_ELIMIT;
    }
    const char *key;
    json_t *value;
    json_object_foreach(endpoints, key, value)
    {
        /* Unknown endpoint names are allowed (newer servers add some) but must still be
         * well-formed addresses, or the whole record is suspect. */
        int rc = s_string_ok(value, why, why_size, "an endpoint address");
        if (rc)
            return rc;
    }
    return 0;
}

int sk2_me_parse(json_t *payload, sk2_me_t **me_p, char *why, size_t why_size)
{
    *me_p = NULL;
    if (!json_is_object(payload)) {
        snprintf(why, why_size, "me payload must be a JSON object");
        return SK2_EPROTO;
    }
    json_t *version = json_object_get(payload, "version");
    /* The number 1, as in the original: 1.0 is a number too, "1" is not. */
    if (!json_is_number(version) || json_number_value(version) != 1.0) {
        snprintf(why, why_size, "me has a missing or unsupported version (this client speaks 1)");
        return SK2_EPROTO;
    }
    int rc = s_string_ok(json_object_get(payload, "name"), why, why_size, "me.name");
    if (rc)
        return rc;
    json_t *endpoints = json_object_get(payload, "endpoints");
    rc = s_endpoints_ok(endpoints, why, why_size, "me.endpoints");
    if (rc)
        return rc;
    json_t *devices = json_object_get(payload, "devices");
    if (!json_is_array(devices)) {
        snprintf(why, why_size, "me.devices must be an array");
        return SK2_EPROTO;
    }
    size_t count = json_array_size(devices);
    if (count > SK2_ME_MAX_DEVICES) {
        snprintf(why, why_size, "me lists %zu devices, more than the limit of %d", count,
                 SK2_ME_MAX_DEVICES);
        return SK2_ELIMIT;
    }
    sk2_me_t *me = calloc(1, sizeof *me);
    if (!me)
        return SK2_ENOMEM;
    me->devices = calloc(count ? count : 1, sizeof *me->devices);
    if (!me->devices) {
        free(me);
        return SK2_ENOMEM;
    }
    me->payload = json_incref(payload);
    me->name = json_string_value(json_object_get(payload, "name"));
    json_t *control = json_object_get(endpoints, "control");
    me->control = control ? json_string_value(control) : NULL;
    for (size_t i = 0; i < count && rc == 0; i++) {
        json_t *device = json_array_get(devices, i);
        if (!json_is_object(device)) {
            snprintf(why, why_size, "me.devices[%zu] must be an object", i);
            rc = SK2_EPROTO;
            break;
        }
        json_t *id = json_object_get(device, "id");
        rc = s_string_ok(id, why, why_size, "a device id");
        if (rc == 0)
            rc = s_endpoints_ok(json_object_get(device, "endpoints"), why, why_size,
                                "a device's endpoints");
        if (rc == 0 && sk2_me_find(me, json_string_value(id))) {
            snprintf(why, why_size, "device id \"%s\" is listed twice", json_string_value(id));
            rc = SK2_EPROTO;
        }
        if (rc == 0) {
            me->devices[i].id = json_string_value(id);
            me->devices[i].endpoints = json_object_get(device, "endpoints");
            me->device_count = i + 1;
        }
    }
    if (rc) {
        sk2_me_destroy(&me);
        return rc;
    }
    *me_p = me;
    return 0;
}

void sk2_me_destroy(sk2_me_t **me_p)
{
    if (me_p && *me_p) {
        json_decref((*me_p)->payload);
        free((*me_p)->devices);
        free(*me_p);
        *me_p = NULL;
    }
}

const sk2_me_device_t *sk2_me_find(const sk2_me_t *me, const char *id)
{
    for (size_t i = 0; i < me->device_count; i++)
        if (strcmp(me->devices[i].id, id) == 0)
            return &me->devices[i];
    return NULL;
}

const char *sk2_me_endpoint(const sk2_me_device_t *device, const char *name)
{
    json_t *value = json_object_get(device->endpoints, name);
    return json_is_string(value) ? json_string_value(value) : NULL;
}

const char *sk2_me_own_name(const char *name, const char *what, char *buf, size_t size)
{
    if (!name) {
        char host[256] = "localhost";
        gethostname(host, sizeof host - 1);
        snprintf(buf, size, "%s on %s", what, host);
        name = buf;
    }
    size_t length = strlen(name);
    if (length == 0 || length > SK2_SERVER_NAME_MAX)
        return NULL;
    json_t *check = json_string(name); /* NULL unless valid UTF-8 */
    json_decref(check);
    return check ? name : NULL;
}
