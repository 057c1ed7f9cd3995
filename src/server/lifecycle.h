/* The server's life-cycle worker: an actor, owned by the server actor, that does every piece of
 * device work that can take long (opening a camera, starting it, stopping it and joining its
 * threads, closing it) and watches for lost devices coming back. The server actor only sends
 * it requests and reads its results from the actor pipe, so it keeps answering `ping` and
 * `who` however slowly a camera opens or closes. Private to libsk2.
 *
 * Requests (server actor -> worker), sent with zsock_send:
 *   "CONFIG" "sbii"  address (sk2_address_t bytes), queue_frames, jpeg_quality: for devices
 *                    added from now on, and for lost ones that come back
 *   "ADD"    "spi"   device (ownership passes), verdict: 0 to open (if needed) and serve it,
 *                    or an error the server actor already found, to destroy it and answer that
 *   "RETIRE" "spii"  pipeline (ownership passes), tag, is_lost: destroy it; if lost, keep a
 *                    closed replacement to try opening now and then
 *   "FORGET" "ss"    device id: stop waiting for this lost device
 *   "STOP"   "s"     forget every lost device and answer STOPPED (then only $TERM follows)
 *
 * Results (worker -> server actor), read with zsock_recv:
 *   "ADDED"   "sip"  rc, pipeline (NULL unless rc is 0; ownership passes): one per ADD
 *   "BACK"    "sp"   pipeline of a lost device that opened again (ownership passes)
 *   "RETIRED" "sib"  tag of the RETIRE, the pipeline's final counters (sk2_server_stats_t)
 *   "FORGOT"  "si"   rc: 0, or SK2_ENOTFOUND if no lost device has that id
 *   "STOPPED" "s"
 *
 * The pipe is ordered both ways, so results come back in the order of their requests. */
#ifndef SK2_SERVER_LIFECYCLE_H
#define SK2_SERVER_LIFECYCLE_H

#include <czmq.h>

/* The worker's actor function, for zactor_new(sk2_lifecycle_actor, cap): every pipeline it
 * makes shares the server's cap on encoded streams (a sk2_stream_cap_t that outlives the
 * worker and its pipelines, or NULL for none). */
void sk2_lifecycle_actor(zsock_t *pipe, void *arg);

#endif
