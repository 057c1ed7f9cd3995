/* Shots and blobs: what the gateway's two threads share.
 *
 * A blob is a reference-counted byte buffer with room for libwebsockets' header in front, so
 * that one encoded image can be written to many connections without a copy. A shot is one
 * decoded frame with its metadata, reference-counted the same way: the client thread makes it
 * and publishes it as the newest of its stream; the web thread takes references while it
 * writes. The images made from a shot (lazily, on the web thread only) hang off the shot and go
 * when its last reference goes. Private to libsk2. */
#ifndef SK2_GATEWAY_SHOT_H
#define SK2_GATEWAY_SHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sk2/device.h"
#include "sk2/frame.h"

/* Longest device key: "s<server number>:<device id>", unique in one gateway even when two
 * servers serve devices with the same id. */
#define GW_KEY_MAX (SK2_DEVICE_ID_MAX + 16)

/* Bytes kept free in front of every blob's data (libwebsockets needs LWS_PRE there). */
#define GW_BLOB_PRE 64

typedef struct {
    atomic_int refs; /* owners; freed at 0 */
    size_t len;      /* bytes of data */
    size_t cap;      /* bytes allocated after the headroom */
    uint8_t *data;   /* base + GW_BLOB_PRE */
    uint8_t *base;   /* the allocation */
} gw_blob_t;

/* A blob of cap bytes (len 0) with one reference, or NULL. */
gw_blob_t *gw_blob_new(size_t cap);
/* Makes room for at least cap bytes, keeping the content; 0 or -1 (out of memory). */
int gw_blob_reserve(gw_blob_t *self, size_t cap);
gw_blob_t *gw_blob_ref(gw_blob_t *self);
/* Drops one reference (freeing at the last) and sets *self_p to NULL. Safe on NULL. */
void gw_blob_unref(gw_blob_t **self_p);

/* What the web thread has made of a shot, each made at most once. */
typedef enum {
    GW_IMAGE_WS = 0,   /* the WebSocket message (header + pixels or JPEG) */
    GW_IMAGE_PNG = 1,  /* lossless PNG: 16-bit grey for depth and IR, RGB for colour */
    GW_IMAGE_VIEW = 2, /* colour-mapped PNG of the frame's own range */
    GW_IMAGE_JPEG = 3, /* colour-mapped JPEG of the frame's own range */
    /* The payload exactly as the server sent it, kept only for JPEG colour (the client thread
     * sets it before the shot is published), so that Foxglove gets the JPEG unchanged. */
    GW_IMAGE_ENCODED = 4,
    GW_IMAGE_FOX_IMAGE = 5,     /* Foxglove message data: the Image or CompressedImage */
    GW_IMAGE_FOX_INFO = 6,      /* Foxglove message data: the CameraInfo */
    GW_IMAGE_FOX_POINTS = 7,    /* Foxglove message data: the PointCloud2 */
    GW_IMAGE_FOX_DEPTH_PNG = 8, /* Foxglove message data: depth as compressedDepth png */
    GW_IMAGE_COUNT = 9,
} gw_image_t;

typedef struct {
    atomic_int refs;                   /* owners; freed at 0 */
    sk2_frame_t *frame;                /* the decoded frame, owned */
    char key[GW_KEY_MAX + 1];          /* the device's key in the gateway, "s0:ID" */
    sk2_stream_kind_t kind;            /* the stream */
    double depth_unit_m;               /* metres per depth value; 0 unknown or not depth */
    bool has_intrinsics;               /* the server gave the stream's intrinsics */
    sk2_intrinsics_t intrinsics;       /* then: as the server gave them (point clouds) */
    int64_t received_us;               /* when the gateway had it decoded (monotonic) */
    int64_t latency_us;                /* capture to decoded, -1 when unknown */
    size_t wire_bytes;                 /* encoded size it arrived in */
    const char *codec;                 /* codec it arrived in, static */
    gw_blob_t *images[GW_IMAGE_COUNT]; /* made lazily by the web thread */
} gw_shot_t;

/* A shot that owns *frame_p (taken, NULL afterwards), with one reference; NULL on out of memory
 * (the frame is destroyed). */
gw_shot_t *gw_shot_new(sk2_frame_t **frame_p, const char *key);
gw_shot_t *gw_shot_ref(gw_shot_t *self);
void gw_shot_unref(gw_shot_t **self_p);

#endif
