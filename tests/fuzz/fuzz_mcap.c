/* Fuzzes MCAP reading: the MCAP reader (src/ros2/mcap_read.c: records, chunks and their
 * decompression, CRCs, cut-off files), the CDR decoders (src/ros2/cdr_decode.c) on every message
 * it finds, and MCAP as a recording (src/record/mcap_source.c: topics into devices, frames
 * decoded), as `sk2 import` and `serve --replay` meet a file from anywhere. The input goes into a
 * memory file (memfd), read through the same pread path as a disk file. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "record/reader_impl.h"
#include "ros2/cdr_decode.h"
#include "ros2/mcap_read.h"
#include "sk2/sk2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int s_memfd(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz_mcap", MFD_CLOEXEC);
    if (fd >= 0 && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Every decoder on one message's bytes, and the conversion of what decodes. */
static void s_decode(const uint8_t *msg, size_t size)
{
    char why[128];
    sk2_ros2_image_in_t image;
    if (sk2_ros2_image_decode(msg, size, &image, why, sizeof why) == 0) {
        if (image.data + image.size > msg + size)
            __builtin_trap(); /* the pixels must lie inside the message */
        for (int kind = SK2_STREAM_DEPTH; kind <= SK2_STREAM_IR; kind++) {
            sk2_frame_t *frame = NULL;
            if (image.width <= 256 && image.height <= 256 &&
                sk2_ros2_image_to_frame(&image, (sk2_stream_kind_t)kind, &frame, why, sizeof why) ==
                    0 &&
                (sk2_frame_width(frame) != image.width || sk2_frame_height(frame) != image.height))
                __builtin_trap();
            sk2_frame_destroy(&frame);
        }
    }
    sk2_ros2_compressed_in_t packed;
    if (sk2_ros2_compressed_image_decode(msg, size, &packed, why, sizeof why) == 0 &&
        packed.data + packed.size > msg + size)
        __builtin_trap();
    sk2_ros2_camera_info_in_t info;
    sk2_intrinsics_t k;
    bool is_partial;
    if (sk2_ros2_camera_info_decode(msg, size, &info, why, sizeof why) == 0)
        sk2_ros2_camera_info_intrinsics(&info, &k, &is_partial);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = s_memfd(data, size);
    if (fd < 0)
        return 0;
    sk2_mcap_reader_t *mcap = sk2_mcap_reader_new();
    if (sk2_mcap_reader_open_fd(mcap, fd) == 0) {
        size_t count = sk2_mcap_reader_message_count(mcap);
        for (size_t i = 0; i < count && i < 64; i++) {
            const uint8_t *msg;
            size_t msg_size;
            if (sk2_mcap_reader_read(mcap, i, &msg, &msg_size) == 0) {
                if (msg_size != sk2_mcap_reader_message_at(mcap, i)->size)
                    __builtin_trap();
                s_decode(msg, msg_size);
            }
        }
    }
    sk2_mcap_reader_destroy(&mcap);
    /* The raw input as one message too: the decoders alone, without an MCAP around them. */
    s_decode(data, size);

    fd = s_memfd(data, size);
    if (fd < 0)
        return 0;
    sk2_recording_reader_t *reader = sk2_recording_reader_new();
    if (sk2_recording_reader_open_fd(reader, fd) == 0) {
        size_t devices = sk2_recording_reader_device_count(reader);
        if (devices == 0 || devices > SK2_RECORDING_MAX_DEVICES)
            __builtin_trap();
        size_t frames = sk2_recording_reader_frame_count(reader);
        int64_t last = INT64_MIN;
        for (size_t i = 0; i < frames && i < 16; i++) {
            sk2_recording_frame_info_t info;
            if (sk2_recording_reader_frame_info(reader, i, &info) != 0 || info.device >= devices ||
                info.capture_time_us < last)
                __builtin_trap(); /* frames are sorted by time */
            last = info.capture_time_us;
            sk2_frame_t *frame = NULL;
            if (sk2_recording_reader_read_frame(reader, i, &frame) == 0 &&
                (sk2_frame_width(frame) != info.width || sk2_frame_height(frame) != info.height))
                __builtin_trap();
            sk2_frame_destroy(&frame);
        }
    }
    sk2_recording_reader_destroy(&reader);
    return 0;
}
