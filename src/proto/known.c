/* The file of server keys pinned on first use (see sk2/security.h): read whole with a size
 * limit, checked line by line, and rewritten whole through a temporary file and rename(), so
 * that a crash or a second client at the same moment never leaves half a file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/curve.h"
#include "sk2/error.h"
#include "sk2/security.h"

#define S_FILE_MAX (1 << 20)
#define S_NAME_MAX 255

int sk2_known_servers_path(char *out, size_t size)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(out, size, "%s/sk2/known_servers", xdg);
    else if (home && *home)
        n = snprintf(out, size, "%s/.config/sk2/known_servers", home);
    else
        return SK2_ENOTFOUND;
    return n < 0 || (size_t)n >= size ? SK2_ELIMIT : 0;
}

/* Reads the whole file into a NUL-terminated buffer; a missing file is empty. */
static int s_read(const char *path, char **text, size_t *size)
{
    *text = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? 0 : SK2_ESYS;
    char *buf = malloc(S_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return SK2_ENOMEM;
    }
    size_t n = fread(buf, 1, S_FILE_MAX + 1, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || n > S_FILE_MAX) {
        free(buf);
        return failed ? SK2_ESYS : SK2_ELIMIT;
    }
    buf[n] = '\0';
    *text = buf;
    *size = n;
    return 0;
}

/* mkdir -p of the folder holding path (mode 0700, as it belongs to one user). */
static int s_make_parent(const char *path)
{
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return SK2_ELIMIT;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return SK2_ESYS;
        *p = '/';
    }
    return mkdir(dir, 0700) != 0 && errno != EEXIST ? SK2_ESYS : 0;
}

/* Writes old text plus one line, through PATH.tmp.PID and rename(). */
static int s_append(const char *path, const char *text, size_t size, const char *key,
                    const char *name)
{
    int rc = s_make_parent(path);
    if (rc != 0)
        return rc;
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return SK2_ELIMIT;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return SK2_ESYS;
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        return SK2_ESYS;
    }
    bool ok = fwrite(text, 1, size, f) == size;
    if (ok && size > 0 && text[size - 1] != '\n')
        ok = fputc('\n', f) != EOF;
    ok = ok && fprintf(f, "%s %s\n", key, name) > 0;
    ok = fflush(f) == 0 && ok && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return SK2_ESYS;
    }
    return 0;
}

static bool s_name_ok(const char *name)
{
    size_t length = strlen(name);
    if (length == 0 || length > S_NAME_MAX)
        return false;
    for (size_t i = 0; i < length; i++)
        if ((unsigned char)name[i] < ' ' || name[i] == 0x7f)
            return false;
    return true;
}

int sk2_known_servers_check(const char *path, const char *name, const char *key, bool *is_new_p,
                            unsigned *line_p)
{
    if (is_new_p)
        *is_new_p = false;
    if (line_p)
        *line_p = 0;
    if (!name || !key || !s_name_ok(name) || !sk2_curve_key_is_valid(key))
        return SK2_EINVAL;
    char default_path[4096];
    if (!path) {
        int rc = sk2_known_servers_path(default_path, sizeof default_path);
        if (rc != 0)
            return rc;
        path = default_path;
    }
    char *text = NULL;
    size_t size = 0;
    int rc = s_read(path, &text, &size);
    if (rc != 0)
        return rc;
    unsigned number = 0;
    const char *line = text;
    while (line && *line) {
        number++;
        const char *end = strchr(line, '\n');
        size_t length = end ? (size_t)(end - line) : strlen(line);
        if (length > 0 && line[length - 1] == '\r')
            length--;
        if (length > 0 && line[0] != '#') {
            /* KEY(40) ' ' NAME */
            char line_key[SK2_KEY_TEXT_SIZE];
            if (length < 42 || line[40] != ' ') {
                rc = SK2_ECORRUPT;
            } else {
                memcpy(line_key, line, 40);
                line_key[40] = '\0';
                if (!sk2_curve_key_is_valid(line_key))
                    rc = SK2_ECORRUPT;
            }
            if (rc != 0) {
                if (line_p)
                    *line_p = number;
                free(text);
                return rc;
            }
            size_t name_length = length - 41;
            if (name_length == strlen(name) && memcmp(line + 41, name, name_length) == 0) {
                rc = strcmp(line_key, key) == 0 ? 0 : SK2_EKEYCHANGED;
                if (line_p)
                    *line_p = number;
                free(text);
                return rc;
            }
        }
        line = end ? end + 1 : NULL;
    }
    rc = s_append(path, text ? text : "", size, key, name);
    free(text);
    if (rc == 0 && is_new_p)
        *is_new_p = true;
    return rc;
}
