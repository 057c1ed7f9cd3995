/* sk2: stream depth cameras over the network, speaking the streamkinect2 protocol.
 * The umbrella header: include this one. */
#ifndef SK2_H
#define SK2_H

#include "export.h"
#include "error.h"
#include "log.h"
#include "frame.h"
#include "limits.h"
#include "codec.h"
#include "device.h"
#include "security.h"
#include "server.h"
#include "relay.h"
#include "client.h"
#include "frameset.h"
#include "browser.h"
#include "gateway.h"
#include "image.h"
#include "recording.h"
#include "mcap.h"
#include "cloud.h"
#include "registration.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "MAJOR.MINOR.PATCH". */
SK2_EXPORT const char *sk2_version(void);

/* The streamkinect2 protocol version this library speaks on the control endpoint. */
#define SK2_PROTOCOL_VERSION 1

#ifdef __cplusplus
}
#endif
#endif
