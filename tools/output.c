/* Write-then-rename outputs for record, import and export (see output.h). */
#define _XOPEN_SOURCE 700 /* nftw */
#include "output.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* True when dir is a folder that holds nothing: a rename replaces an empty folder only. */
static bool s_is_empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool is_empty = true;
    for (struct dirent *e; is_empty && (e = readdir(d));)
        is_empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return is_empty;
}

/* Flushes the folder that holds path, so that a new or renamed name in it survives a power
 * cut: fdatasync on a file keeps its bytes, not the directory entry that finds them. Best
 * effort: a file system that cannot sync a folder (EINVAL) has nothing better to offer, and the
 * data itself is flushed by the writer either way. */
static void s_sync_parent(const char *path)
{
    char copy[CLI_OUTPUT_PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

int cli_output_begin(cli_output_t *self, const char *verb, const char *path, bool is_dir,
                     bool is_forced)
{
    memset(self, 0, sizeof *self);
    self->verb = verb;
    self->is_dir = is_dir;
    char safe[1024];
    cli_safe(path, safe, sizeof safe);
    if (strlen(path) + 32 >= sizeof self->final_path) {
        fprintf(stderr, "sk2 %s: %s: path too long\n", verb, safe);
        return CLI_EXIT_USAGE;
    }
    snprintf(self->final_path, sizeof self->final_path, "%s", path);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (is_dir && !(S_ISDIR(st.st_mode) && s_is_empty_dir(path))) {
            fprintf(stderr, "sk2 %s: %s exists and is not an empty folder: choose a new one\n",
                    verb, safe);
            return CLI_EXIT_USAGE;
        }
        if (!is_dir && S_ISDIR(st.st_mode)) {
            fprintf(stderr, "sk2 %s: %s is a folder\n", verb, safe);
            return CLI_EXIT_USAGE;
        }
        if (!is_dir && !is_forced) {
            fprintf(stderr, "sk2 %s: %s exists: give --force to replace it\n", verb, safe);
            return CLI_EXIT_USAGE;
        }
    }
    snprintf(self->temp_path, sizeof self->temp_path, "%s.partial-XXXXXX", path);
    if (is_dir) {
        if (!mkdtemp(self->temp_path) || chmod(self->temp_path, 0755) != 0) {
            fprintf(stderr, "sk2 %s: cannot create a folder beside %s: %s\n", verb, safe,
                    strerror(errno));
            self->temp_path[0] = '\0';
            return CLI_EXIT_FAILURE;
        }
        return CLI_CONTINUE;
    }
    int fd = mkstemp(self->temp_path);
    if (fd < 0 || fchmod(fd, 0644) != 0 || close(fd) != 0) {
        fprintf(stderr, "sk2 %s: cannot create a file beside %s: %s\n", verb, safe,
                strerror(errno));
        if (fd >= 0)
            unlink(self->temp_path);
        self->temp_path[0] = '\0';
        return CLI_EXIT_FAILURE;
    }
    /* The temporary is where a crashed recorder's frames are found: its name must last. */
    s_sync_parent(self->temp_path);
    return CLI_CONTINUE;
}

int cli_output_commit(cli_output_t *self)
{
    if (!self->temp_path[0])
        return -1;
    if (rename(self->temp_path, self->final_path) != 0) {
        char safe[1024];
        fprintf(stderr, "sk2 %s: cannot move the output onto %s: %s\n", self->verb,
                cli_safe(self->final_path, safe, sizeof safe), strerror(errno));
        cli_output_abandon(self);
        return -1;
    }
    s_sync_parent(self->final_path);
    self->temp_path[0] = '\0';
    return 0;
}

static int s_remove(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

void cli_output_abandon(cli_output_t *self)
{
    if (!self->temp_path[0])
        return;
    if (self->is_dir)
        nftw(self->temp_path, s_remove, 16, FTW_DEPTH | FTW_PHYS);
    else
        unlink(self->temp_path);
    self->temp_path[0] = '\0';
}
