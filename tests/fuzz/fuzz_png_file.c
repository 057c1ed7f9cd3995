/* Fuzzes the PNG file reader of `sk2 import`, TUM folders and `sk2 decode` (src/record/png.c,
 * libpng's stdio API with a longjmp error path), which is another piece of code than the png
 * codec that fuzz_png covers. The input becomes a memory file (memfd) opened by its
 * /proc/self/fd path, so the reader runs its own fopen/fread path as on a disk file. Every
 * input is read as a depth and as an IR source; what is accepted must have a size within the
 * frame limits and the pixel format the caller asked for (16-bit) or a colour one. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sk2/error.h"
#include "sk2/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_read_as(const char *path, sk2_pixel_format_t format16)
{
    sk2_frame_t *frame = NULL;
    char why[300];
    int rc = sk2_frame_read_png(path, format16, &frame, why, sizeof why);
    if (rc != 0) {
        if (frame || (rc != SK2_ECORRUPT && rc != SK2_EUNSUPPORTED))
            __builtin_trap(); /* a failure leaves no frame and says corrupt or unsupported */
        return;
    }
    sk2_pixel_format_t format = sk2_frame_format(frame);
    uint32_t width = sk2_frame_width(frame), height = sk2_frame_height(frame);
    if (width < 1 || height < 1 || width > SK2_FRAME_MAX_WIDTH || height > SK2_FRAME_MAX_HEIGHT)
        __builtin_trap();
    if (format != format16 && format != SK2_PIXEL_RGB24 && format != SK2_PIXEL_BGRA32)
        __builtin_trap();
    /* Touch the last row: the sanitizers check that the frame holds what it says. */
    const uint8_t *pixels = sk2_frame_cdata(frame);
    volatile uint8_t last = pixels[sk2_frame_size(frame) - 1];
    (void)last;
    sk2_frame_destroy(&frame);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz_png_file", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) == (ssize_t)size) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        s_read_as(path, SK2_PIXEL_DEPTH_MM16);
        s_read_as(path, SK2_PIXEL_GRAY16);
    }
    close(fd);
    return 0;
}
