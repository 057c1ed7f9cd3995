/* `sk2 keygen DIR`: makes a CURVE key pair with CZMQ's zcert, for `sk2 serve --secure --keys`
 * and for clients' `--keys`. Prints the public key, which is what the other side needs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "sk2/sk2.h"

static const char *const s_verb = "keygen";

typedef struct {
    const char *name; /* NAME of NAME.key and NAME.key_secret */
    bool is_forced;   /* replace an existing pair */
} keygen_options_t;

enum { OPT_NAME = 256, OPT_FORCE };

static void s_print_usage(void)
{
    printf("usage: sk2 keygen DIR [--name NAME] [--force] [-v|-q]\n"
           "\n"
           "Makes a CURVE key pair (CZMQ's zcert format) in DIR, created if missing:\n"
           "DIR/NAME.key holds the public key (give it away: a server's to its clients as\n"
           "--server-key, a client's to the server's --allow folder) and DIR/NAME.key_secret\n"
           "both keys (mode 0600: keep it). Prints the public key (40 characters of Z85).\n"
           "\n"
           "  --name NAME   file name, [A-Za-z0-9._-], up to 64 (default \"sk2\")\n"
           "  --force       replace a key pair already there (its holders are locked out)\n"
           "\n"
           "Exit status: 0 made, 1 cannot write (or no CURVE in libzmq), 2 usage or a key\n"
           "pair already there without --force.\n");
}

static int s_apply_option(void *options, int opt, const char *arg)
{
    keygen_options_t *opts = options;
    if (opt == OPT_NAME)
        opts->name = arg;
    else if (opt == OPT_FORCE)
        opts->is_forced = true;
    return CLI_CONTINUE;
}

int cli_keygen(int argc, char **argv)
{
    static const char optstring[] = ":hvq";
    static const struct option options[] = {
        {"name", required_argument, NULL, OPT_NAME},
        {"force", no_argument, NULL, OPT_FORCE},
        CLI_COMMON_LONG_OPTIONS,
    };
    keygen_options_t opts = {.name = "sk2"};
    const cli_parser_t parser = {s_verb, optstring, options, s_print_usage, s_apply_option};
    int rc = cli_parse_options(&parser, argc, argv, &opts);
    if (rc != CLI_CONTINUE)
        return rc;
    if (optind >= argc)
        return cli_usage_error(s_verb, "missing DIR, the folder for the key pair");
    if (optind + 1 < argc)
        return cli_usage_error(s_verb, "unexpected argument '%s'", argv[optind + 1]);
    const char *dir = argv[optind];
    if (!sk2_security_is_available()) {
        fprintf(stderr, "sk2 keygen: this libzmq was built without CURVE (no libsodium)\n");
        return CLI_EXIT_FAILURE;
    }
    char key[SK2_KEY_TEXT_SIZE];
    rc = sk2_security_keygen(dir, opts.name, opts.is_forced, key);
    if (rc == SK2_EINVAL)
        return cli_usage_error(s_verb, "--name must be 1..64 of [A-Za-z0-9._-], not '%s'",
                               opts.name);
    if (rc == SK2_EEXIST) {
        fprintf(stderr,
                "sk2 keygen: %s/%s.key or %s.key_secret already exists; not replaced (--force "
                "replaces it, and locks out whoever trusts the old key)\n",
                dir, opts.name, opts.name);
        return CLI_EXIT_USAGE;
    }
    if (rc != 0) {
        fprintf(stderr, "sk2 keygen: cannot write the key pair in %s: %s (%s)\n", dir,
                sk2_strerror(rc), strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    if (!cli_is_quiet())
        fprintf(stderr, "sk2 keygen: wrote %s/%s.key (public) and %s/%s.key_secret (secret)\n", dir,
                opts.name, dir, opts.name);
    printf("%s\n", key);
    return CLI_EXIT_OK;
}
