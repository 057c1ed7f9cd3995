/* Output files and folders that never replace what a user already had unless the run
 * succeeded: a verb writes under a temporary name beside the final one (same folder, so the
 * rename is atomic) and renames it into place only when it is complete. An interrupted or
 * failed run removes the temporary; a killed one leaves it, named FINAL.partial-XXXXXX. */
#ifndef SK2_TOOL_OUTPUT_H
#define SK2_TOOL_OUTPUT_H

#include <stdbool.h>

#define CLI_OUTPUT_PATH_MAX 4096

typedef struct {
    const char *verb;
    char final_path[CLI_OUTPUT_PATH_MAX];
    char temp_path[CLI_OUTPUT_PATH_MAX]; /* "" once committed or abandoned */
    bool is_dir;
} cli_output_t;

/* Checks that path may be written (it does not exist, or is_forced for a file; for a folder,
 * it does not exist or is empty) and creates the temporary beside it: an empty file, or an
 * empty folder when is_dir. Returns CLI_CONTINUE, CLI_EXIT_USAGE (exists, said on stderr) or
 * CLI_EXIT_FAILURE (cannot create the temporary, said on stderr). */
int cli_output_begin(cli_output_t *self, const char *verb, const char *path, bool is_dir,
                     bool is_forced);
/* Renames the temporary onto the final path. Returns 0, or -1 after saying why (the temporary
 * is then removed). */
int cli_output_commit(cli_output_t *self);
/* Removes the temporary (a folder with everything in it); the final path is untouched. Safe to
 * call after commit or twice. */
void cli_output_abandon(cli_output_t *self);

#endif
