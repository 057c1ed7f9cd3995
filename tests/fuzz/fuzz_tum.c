/* Fuzzes the TUM RGB-D folder reader (src/record/tum.c) with whole folders: the input is cut at
 * each line "%%file NAME" into files of one scratch folder (depth.txt, rgb.txt, ir.txt,
 * sk2.json, and images such as depth/1.png; a name may hold one '/' and no ".."), which is
 * then opened as a recording and its first frames read. So the lists, the timestamps, the path
 * checks, the sidecar JSON, the probing of the first image and the reading of the others are
 * fuzzed together, as `sk2 import` and `serve --replay DIR` meet a folder from anywhere. The
 * folder is made once per process under $TMPDIR (default /tmp) and emptied before each input. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sk2/sk2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_MARK       "%%file "
#define S_FILES_MAX  8
#define S_NAME_MAX   40
#define S_FRAMES_MAX 8

static char s_dir[4096];

/* Removes every file of the scratch folder and its subfolders (one level, as created). */
static void s_empty(const char *dir, int level)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && level == 0) {
            s_empty(path, 1);
            rmdir(path);
        } else {
            unlink(path);
        }
    }
    closedir(d);
}

static void s_remove_dir(void)
{
    s_empty(s_dir, 0);
    rmdir(s_dir);
}

/* A file name the harness will create: [A-Za-z0-9._-], at most one '/', not starting with '.'
 * in either part. Anything else (and so any escape from the folder) is skipped. */
static int s_name_ok(const char *name, size_t length)
{
    if (length == 0 || length > S_NAME_MAX || name[0] == '.' || name[0] == '/')
        return 0;
    int slashes = 0;
    for (size_t i = 0; i < length; i++) {
        char c = name[i];
        if (c == '/') {
            if (++slashes > 1 || i + 1 == length || name[i + 1] == '.')
                return 0;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '.' || c == '_' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

static void s_write_file(const char *name, size_t name_length, const uint8_t *body, size_t size)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%.*s", s_dir, (int)name_length, name);
    char *slash = strchr(path + strlen(s_dir) + 1, '/');
    if (slash) {
        *slash = '\0';
        mkdir(path, 0700);
        *slash = '/';
    }
    FILE *file = fopen(path, "wb");
    if (!file)
        return;
    if (size > 0)
        fwrite(body, 1, size, file);
    fclose(file);
}

/* Cuts the input into files at each line that starts with S_MARK. */
static void s_unpack(const uint8_t *data, size_t size)
{
    const size_t mark = strlen(S_MARK);
    const uint8_t *p = data, *end = data + size;
    int files = 0;
    while (p < end && files < S_FILES_MAX) {
        if ((size_t)(end - p) < mark || memcmp(p, S_MARK, mark) != 0)
            return; /* the first line must be a mark; later ones end the file before */
        const uint8_t *name = p + mark;
        const uint8_t *eol = memchr(name, '\n', (size_t)(end - name));
        if (!eol)
            return;
        const uint8_t *body = eol + 1, *next = body;
        for (;;) {
            const uint8_t *nl = memchr(next, '\n', (size_t)(end - next));
            if (!nl) {
                next = end;
                break;
            }
            if ((size_t)(end - nl - 1) >= mark && memcmp(nl + 1, S_MARK, mark) == 0) {
                next = nl + 1;
                break;
            }
            next = nl + 1;
        }
        /* The newline before the next mark belongs to the mark, not to the file. */
        size_t body_size = (size_t)(next - body);
        if (next < end && body_size > 0)
            body_size--;
        if (s_name_ok((const char *)name, (size_t)(eol - name)))
            s_write_file((const char *)name, (size_t)(eol - name), body, body_size);
        files++;
        p = next;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(s_dir, sizeof s_dir, "%s/sk2-fuzz-tum-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(s_dir)) {
            perror("fuzz_tum: mkdtemp");
            abort();
        }
        atexit(s_remove_dir);
    }
    s_empty(s_dir, 0);
    s_unpack(data, size);

    sk2_recording_reader_t *reader = sk2_recording_reader_new();
    if (reader && sk2_recording_reader_open(reader, s_dir) == 0) {
        if (sk2_recording_reader_device_count(reader) != 1)
            __builtin_trap(); /* a TUM folder is one device */
        size_t frames = sk2_recording_reader_frame_count(reader);
        if (frames == 0)
            __builtin_trap(); /* an open folder has frames */
        int64_t previous = INT64_MIN;
        for (size_t i = 0; i < frames && i < S_FRAMES_MAX; i++) {
            sk2_recording_frame_info_t info;
            if (sk2_recording_reader_frame_info(reader, i, &info) != 0 || info.device != 0)
                __builtin_trap();
            if (info.capture_time_us < previous)
                __builtin_trap(); /* frames come in time order */
            previous = info.capture_time_us;
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
