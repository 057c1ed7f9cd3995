/* The Foxglove WebSocket protocol in the gateway: Foxglove and Lichtblick connect to the
 * gateway's own HTTP port (path "/", subprotocol foxglove.websocket.v1 or foxglove.sdk.v1) and
 * see every device's streams as ROS 2 channels (CDR): images, camera models and point clouds.
 * Runs on the web thread only, as a libwebsockets protocol beside the page's own. Private to
 * libsk2; see docs/formats.md, "Foxglove". */
#ifndef SK2_GATEWAY_FOXGLOVE_H
#define SK2_GATEWAY_FOXGLOVE_H

#include <libwebsockets.h>
#include <stdbool.h>

#include "gateway/gateway_impl.h"

/* The subprotocols spoken. Both carry the same messages for what the gateway uses (serverInfo,
 * status, advertise, unadvertise, subscribe, unsubscribe, binary message data); the second is
 * the name newer Foxglove bridges and clients offer. */
#define GW_FOX_PROTOCOL     "foxglove.websocket.v1"
#define GW_FOX_PROTOCOL_SDK "foxglove.sdk.v1"
/* libwebsockets' receive buffer for these connections (client messages are small). */
#define GW_FOX_RX_BUFFER 4096

/* The module's state, one per gateway (hung on gw->fox). NULL on out of memory. */
gw_fox_t *gw_fox_new(sk2_gateway_t *gw);
/* After the libwebsockets context is gone (it closes every connection first). Safe on NULL. */
void gw_fox_destroy(gw_fox_t **self_p);

/* Whether a Sec-WebSocket-Protocol header value (comma-separated) offers a Foxglove protocol. */
bool gw_fox_is_offered(const char *protocols);

/* The libwebsockets callback of both subprotocols; per-session data is one pointer. */
int gw_fox_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len);

#endif
