/* The sk2 command line: parses the options that come before the verb (--help, --version, -v,
 * -q), then hands the rest of argv to the verb, which parses its own options with
 * getopt_long. Each verb lives in its own file (serve.c, ping.c, info.c, stream.c, browse.c); what
 * they share is in cli.c. Output is line-buffered so that scripts reading a pipe see each line as
 * soon as it is printed. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "sk2/sk2.h"

typedef struct {
    const char *name;
    cli_verb_fn *run;
    const char *summary;
} verb_t;

static const verb_t s_verbs[] = {
    {"serve", cli_serve, "serve cameras, mock ones or recordings until Ctrl-C"},
    {"ping", cli_ping, "check that a server answers, and how fast"},
    {"info", cli_info, "describe a server: name, devices, endpoints"},
    {"stream", cli_stream, "receive depth frames and measure rate and compression"},
    {"browse", cli_browse, "list the servers on the local network as they come and go"},
    {"view", cli_view, "serve a web page and HTTP API showing servers' streams live"},
    {"codecs", cli_codecs, "list the frame codecs"},
    {"encode", cli_encode, "encode a PNG into one frame file with a codec"},
    {"decode", cli_decode, "decode a frame file back into a PNG"},
    {"devices", cli_devices, "list the device backends and the cameras they see"},
    {"record", cli_record, "record a server's streams into a file, frames as sent"},
    {"inspect", cli_inspect, "describe a recording (or TUM folder): devices, streams, gaps"},
    {"export", cli_export, "write a recording as a TUM RGB-D folder (PNGs + lists)"},
    {"import", cli_import, "turn a TUM RGB-D folder or an MCAP file into a recording"},
    {"replay", cli_replay, "pause, resume or seek the replay a server plays, or ask where it is"},
    {"keygen", cli_keygen, "make a CURVE key pair for serve --secure and clients' --keys"},
    {"relay", cli_relay, "serve the devices of other servers as its own, forwarding frames"},
    {"ctl", cli_ctl, "set or show a device's keys on a server (running, fps, label, ...)"},
};

enum { OPT_VERSION = 256 };

static void s_print_usage(FILE *out)
{
    fprintf(out, "usage: sk2 [-h] [--version] [-v|-q] VERB [OPTIONS] [ARGS]\n"
                 "\n"
                 "Stream depth cameras over the network (streamkinect2 protocol 1).\n"
                 "\n"
                 "verbs:\n");
    for (size_t i = 0; i < sizeof s_verbs / sizeof s_verbs[0]; i++)
        fprintf(out, "  %-8s %s\n", s_verbs[i].name, s_verbs[i].summary);
    fprintf(out, "\n"
                 "options (also accepted after the verb, except --version):\n"
                 "  -h, --help       show this help and exit\n"
                 "      --version    show the version and exit\n"
                 "  -v, --verbose    log more: once info, twice debug, three times trace\n"
                 "  -q, --quiet      log errors only; no status lines\n"
                 "\n"
                 "ENDPOINT is tcp://HOST:PORT or HOST:PORT (an IPv6 HOST in brackets).\n"
                 "info, ping and stream also take a server NAME, found on the local network\n"
                 "(DNS-SD, as `sk2 browse` lists them), or nothing for the only server there.\n"
                 "`sk2 serve` announces itself that way unless given --no-announce.\n"
                 "\n"
                 "exit status:\n"
                 "  0  success\n"
                 "  1  runtime failure (nothing arrived, a check failed, cannot bind, ...)\n"
                 "  2  usage error (unknown verb or option, bad number, missing argument)\n"
                 "  3  server unreachable, or lost (no reply within the timeout)\n"
                 "\n"
                 "'sk2 VERB --help' describes a verb.\n");
}

static const verb_t *s_find_verb(const char *name)
{
    for (size_t i = 0; i < sizeof s_verbs / sizeof s_verbs[0]; i++)
        if (strcmp(s_verbs[i].name, name) == 0)
            return &s_verbs[i];
    return NULL;
}

/* Parses the options before the verb; returns CLI_CONTINUE or an exit code. */
static int s_parse_global(int argc, char **argv)
{
    static const char optstring[] = "+:hvq";
    static const struct option options[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    cli_getopt_reset();
    while ((opt = getopt_long(argc, argv, optstring, options, NULL)) != -1) {
        if (cli_common_option(opt))
            continue;
        switch (opt) {
        case 'h':
            s_print_usage(stdout);
            return CLI_EXIT_OK;
        case OPT_VERSION:
            printf("sk2 %s (protocol %d)\n", sk2_version(), SK2_PROTOCOL_VERSION);
            return CLI_EXIT_OK;
        default:
            return cli_option_error(NULL, opt, optstring, options, argv);
        }
    }
    return CLI_CONTINUE;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    cli_set_program(argv[0]);
    cli_signals_install();

    int rc = s_parse_global(argc, argv);
    if (rc != CLI_CONTINUE)
        return rc;
    if (optind >= argc)
        return cli_usage_error(
            NULL, "missing verb (one of serve, ping, info, stream, browse, view, ...)");
    const verb_t *verb = s_find_verb(argv[optind]);
    if (!verb)
        return cli_usage_error(NULL, "unknown verb '%s'", argv[optind]);

    int verb_argc = argc - optind;
    char **verb_argv = argv + optind;
    cli_getopt_reset();
    return verb->run(verb_argc, verb_argv);
}
