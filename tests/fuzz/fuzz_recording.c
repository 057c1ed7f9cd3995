/* Fuzzes the recording reader with arbitrary files: the file header, the footer and index, the
 * scan that rebuilds a missing index, device descriptions and every frame read and decoded.
 * The input goes into a memory file (memfd), read through the same pread path as a disk file. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "record/reader_impl.h"
#include "sk2/sk2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz_recording", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    sk2_recording_reader_t *reader = sk2_recording_reader_new();
    if (sk2_recording_reader_open_fd(reader, fd) == 0) {
        size_t devices = sk2_recording_reader_device_count(reader);
        if (devices == 0 || devices > SK2_RECORDING_MAX_DEVICES)
            __builtin_trap(); /* an open recording describes 1..64 devices */
        size_t frames = sk2_recording_reader_frame_count(reader);
        if (frames > size / SK2_REC_FRAME_CHUNK_MIN)
            __builtin_trap(); /* more frames than the file can hold */
        for (size_t i = 0; i < frames && i < 16; i++) {
            sk2_recording_frame_info_t info;
            if (sk2_recording_reader_frame_info(reader, i, &info) != 0 || info.device >= devices)
                __builtin_trap();
            sk2_frame_t *frame = NULL;
            if (sk2_recording_reader_read_frame(reader, i, &frame) == 0 &&
                (sk2_frame_width(frame) != info.width || sk2_frame_height(frame) != info.height))
                __builtin_trap();
            sk2_frame_destroy(&frame);
        }
        sk2_recording_reader_find_time(reader, 0);
    }
    sk2_recording_reader_destroy(&reader);
    return 0;
}
