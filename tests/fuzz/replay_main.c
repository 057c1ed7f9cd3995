/* The fuzz targets as regression tests in every build: main() feeds each file of the folders
 * given (the seed corpus and the crash reproducers of one target) to the target's
 * LLVMFuzzerTestOneInput once, so that `make test` (and `make asan`, with the sanitizers
 * watching) runs every input that ever mattered without clang or libFuzzer. A folder that does
 * not exist counts as empty, since a target may have no crash reproducers yet; a file that
 * cannot be read is an error, so that a broken checkout cannot pass for an empty one. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_INPUT_MAX (16u << 20) /* bytes: far above any seed, a guard against a wrong path */

static int s_by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs one file through the target. Returns 0, or -1 after saying why on stderr. */
static int s_run_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (!file) {
        fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    uint8_t *data = NULL;
    int rc = -1;
    if (fstat(fileno(file), &st) != 0 || st.st_size < 0 || (uint64_t)st.st_size > S_INPUT_MAX)
        fprintf(stderr, "replay: %s: not a readable input of at most %u bytes\n", path,
                S_INPUT_MAX);
    else if (!(data = malloc((size_t)st.st_size + 1)))
        fprintf(stderr, "replay: out of memory for %s\n", path);
    else if (fread(data, 1, (size_t)st.st_size, file) != (size_t)st.st_size)
        fprintf(stderr, "replay: cannot read %s\n", path);
    else {
        /* Print first: when the target crashes, the last line names the input. */
        printf("replay: %s (%lld bytes)\n", path, (long long)st.st_size);
        fflush(stdout);
        LLVMFuzzerTestOneInput(data, (size_t)st.st_size);
        rc = 0;
    }
    free(data);
    fclose(file);
    return rc;
}

/* Runs every regular file of dir, in name order. Adds to *count; returns 0 or -1. */
static int s_run_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        fprintf(stderr, "replay: cannot open %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue; /* ".", ".." and hidden files such as .gitkeep */
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **more = realloc(names, cap * sizeof *names);
            if (!more) {
                rc = -1;
                break;
            }
            names = more;
        }
        size_t length = strlen(dir) + 1 + strlen(e->d_name) + 1;
        if (!(names[n] = malloc(length))) {
            rc = -1;
            break;
        }
        snprintf(names[n++], length, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (names)
        qsort(names, n, sizeof *names, s_by_name);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (rc == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            rc = s_run_file(names[i]);
            (*count)++;
        }
        free(names[i]);
    }
    free(names);
    if (rc != 0)
        fprintf(stderr, "replay: %s could not be replayed whole\n", dir);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR...\n  runs every file of each DIR through the target\n",
                argv[0]);
        return 2;
    }
    size_t count = 0;
    for (int i = 1; i < argc; i++)
        if (s_run_dir(argv[i], &count) != 0)
            return 1;
    if (count == 0) {
        /* A target's seeds are never empty: no input at all means a wrong path. */
        fprintf(stderr, "replay: no input in any of the %d folder(s) given\n", argc - 1);
        return 1;
    }
    printf("replay: %zu input(s), no crash\n", count);
    return 0;
}
