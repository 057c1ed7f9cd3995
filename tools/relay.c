/* `sk2 relay`: serves the devices of one or more servers (or relays) as its own, until Ctrl-C.
 * Each SERVER operand is opened as `sk2 stream` opens its one (an endpoint, or a name found
 * over DNS-SD and followed when it moves) and handed to an sk2_relay, which does the rest. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "sk2/sk2.h"

static const char *const s_verb = "relay";

typedef struct {
    cli_server_args_t server;  /* --timeout (the upstream's response timeout), --browse-timeout */
    const char *name;          /* the relay's name, NULL: "sk2 relay on HOST" */
    const char *bind;          /* address to bind */
    long port;                 /* control port, 0: the kernel picks */
    const char *endpoint_file; /* where to publish the control endpoint, or NULL */
    bool is_announced;         /* announce over DNS-SD */
    const char *accept_push;   /* ADDR:PORT pushing servers connect to, or NULL */
    bool is_secure;            /* --secure: CURVE on every socket the relay binds */
    const char *keys;          /* --keys: the relay's key pair, downstream and upstream */
    const char *allow;         /* --allow: folder of the client and pusher keys let in */
    const char *server_keys[SK2_RELAY_UPSTREAMS_MAX]; /* --server-key, in order */
    int server_key_count;
} relay_options_t;

enum {
    OPT_NAME = 'n',
    OPT_BIND = 0x2000,
    OPT_PORT,
    OPT_ENDPOINT_FILE,
    OPT_NO_ANNOUNCE,
    OPT_ACCEPT_PUSH,
    OPT_SECURE,
    OPT_KEYS,
    OPT_ALLOW
};

static void s_print_usage(void)
{
    printf("usage: sk2 relay [SERVER...] [--accept-push ADDR:PORT] [--name N] [--bind ADDR]\n"
           "                 [--port P] [--endpoint-file PATH] [--no-announce] [--timeout MS]\n"
           "                 [--secure --keys DIR --allow DIR] [--keys DIR --server-key KEY]...\n"
           "                 [--browse-timeout S] [-v|-q]\n"
           "\n"
           "Serves the devices of every SERVER as its own, until Ctrl-C: clients (sk2 or\n"
           "streamkinect2 version 1) connect to the relay as to a server. A stream is asked\n"
           "of a SERVER only while some client of the relay wants it, and frames pass\n"
           "through as the SERVER encoded them. Relays chain. A SERVER that stops answering\n"
           "takes its devices away until it is back.\n"
           "\n"
           "SERVER is an endpoint (tcp://HOST:PORT or HOST:PORT) or the NAME of a server on\n"
           "the local network (as `sk2 browse` lists them).\n"
           "  -n, --name N          the relay's name in `me` and on the network\n"
           "                        (default \"sk2 relay on HOST\")\n"
           "      --bind ADDR       address to serve on (default 127.0.0.1; * for all)\n"
           "      --port P          control port (default: one the system picks)\n"
           "      --endpoint-file PATH  write the control endpoint to PATH once every SERVER\n"
           "                        answered or --timeout passed (removed on exit)\n"
           "      --no-announce     do not announce the relay over DNS-SD\n"
           "      --accept-push ADDR:PORT  also relay servers that connect out to the relay\n"
           "                        there (`sk2 serve --push HOST:PORT`); a pusher silent\n"
           "                        for 3 s takes its devices away until it is back\n"
           "      --secure          CURVE on every socket the relay binds (control, device\n"
           "                        endpoints, --accept-push port): only clients and\n"
           "                        pushers whose public key is in --allow get in\n"
           "      --keys DIR        the relay's key pair (sk2 keygen DIR), for --secure and\n"
           "                        for following secure SERVERs\n"
           "      --allow DIR       folder of the client and pusher public keys (NAME.key)\n"
           "      --server-key KEY  follow the SERVERs securely (CURVE, with --keys): their\n"
           "                        public key (40 characters or NAME.key); once for all\n"
           "                        SERVERs, or once per SERVER in their order. --keys\n"
           "                        without --secure: a SERVER given by NAME may instead have\n"
           "                        the key it announces pinned, as for `sk2 stream`\n"
           "      --timeout MS      a SERVER silent this long counts as lost, %d..%d\n"
           "                        (default %d)\n"
           "      --browse-timeout S  look for a SERVER given by NAME this long\n"
           "\n"
           "Exit status: 0 after Ctrl-C, 1 cannot bind, 2 usage, 3 a SERVER not found.\n",
           CLI_TIMEOUT_MIN_MS, CLI_TIMEOUT_MAX_MS, SK2_CLIENT_RESPONSE_TIMEOUT_MS);
}

static int s_apply_option(void *options, int opt, const char *arg)
{
    relay_options_t *opts = options;
    switch (opt) {
    case OPT_NAME:
        opts->name = arg;
        break;
    case OPT_BIND:
        opts->bind = arg;
        break;
    case OPT_PORT:
        if (cli_parse_long(arg, 1, 65535, &opts->port) != 0)
            return cli_usage_error(s_verb, "--port must be 1..65535, not '%s'", arg);
        break;
    case OPT_ENDPOINT_FILE:
        if (!*arg)
            return cli_usage_error(s_verb, "--endpoint-file needs a path");
        opts->endpoint_file = arg;
        break;
    case OPT_NO_ANNOUNCE:
        opts->is_announced = false;
        break;
    case OPT_SECURE:
        opts->is_secure = true;
        break;
    case OPT_KEYS:
    case OPT_ALLOW:
        if (!*arg)
            return cli_usage_error(s_verb, "%s needs a path",
                                   opt == OPT_KEYS ? "--keys" : "--allow");
        *(opt == OPT_KEYS ? &opts->keys : &opts->allow) = arg;
        break;
    case OPT_ACCEPT_PUSH: {
        const char *colon = strrchr(arg, ':');
        long port = 0;
        if (!colon || colon == arg || cli_parse_long(colon + 1, 1, 65535, &port) != 0)
            return cli_usage_error(s_verb,
                                   "--accept-push needs ADDR:PORT (port 1..65535), not '%s'", arg);
        opts->accept_push = arg;
        break;
    }
    case CLI_OPT_SERVER_KEY:
        if (!*arg)
            return cli_usage_error(s_verb, "--server-key needs a value");
        if (opts->server_key_count == SK2_RELAY_UPSTREAMS_MAX)
            return cli_usage_error(s_verb, "at most %d --server-key", SK2_RELAY_UPSTREAMS_MAX);
        opts->server_keys[opts->server_key_count++] = arg;
        break;
    case CLI_OPT_TIMEOUT:
    case CLI_OPT_BROWSE_TIMEOUT:
        return cli_apply_server_option(s_verb, &opts->server, opt, arg);
    default:
        return cli_usage_error(s_verb, "unknown option");
    }
    return CLI_CONTINUE;
}

int cli_relay(int argc, char **argv)
{
    relay_options_t opts = {
        .server = CLI_SERVER_ARGS_DEFAULT, .bind = "127.0.0.1", .is_announced = true};
    static const char optstring[] = ":hvqn:";
    static const struct option options[] = {
        {"name", required_argument, NULL, OPT_NAME},
        {"bind", required_argument, NULL, OPT_BIND},
        {"port", required_argument, NULL, OPT_PORT},
        {"endpoint-file", required_argument, NULL, OPT_ENDPOINT_FILE},
        {"no-announce", no_argument, NULL, OPT_NO_ANNOUNCE},
        {"accept-push", required_argument, NULL, OPT_ACCEPT_PUSH},
        {"secure", no_argument, NULL, OPT_SECURE},
        {"keys", required_argument, NULL, OPT_KEYS},
        {"allow", required_argument, NULL, OPT_ALLOW},
        {"server-key", required_argument, NULL, CLI_OPT_SERVER_KEY},
        {"timeout", required_argument, NULL, CLI_OPT_TIMEOUT},
        {"browse-timeout", required_argument, NULL, CLI_OPT_BROWSE_TIMEOUT},
        CLI_COMMON_LONG_OPTIONS,
    };
    const cli_parser_t parser = {s_verb, optstring, options, s_print_usage, s_apply_option};
    int rc = cli_parse_options(&parser, argc, argv, &opts);
    if (rc != CLI_CONTINUE)
        return rc;
    if (optind >= argc && !opts.accept_push)
        return cli_usage_error(s_verb, "name at least one SERVER to relay, or --accept-push");
    if (opts.is_secure && (!opts.keys || !opts.allow))
        return cli_usage_error(s_verb, "--secure needs --keys DIR and --allow DIR");
    if (!opts.is_secure && opts.allow)
        return cli_usage_error(s_verb, "--allow goes with --secure");
    if (opts.server_key_count > 0 && !opts.keys)
        return cli_usage_error(s_verb, "--server-key needs --keys DIR (the relay's key pair)");
    if (opts.server_key_count > 1 && opts.server_key_count != argc - optind)
        return cli_usage_error(s_verb,
                               "give one --server-key for all SERVERs or one per SERVER "
                               "(%d SERVERs, %d keys)",
                               argc - optind, opts.server_key_count);
    if (!opts.is_secure && opts.keys && optind >= argc)
        return cli_usage_error(s_verb, "--keys without --secure is for following SERVERs");
    if (argc - optind > SK2_RELAY_UPSTREAMS_MAX)
        return cli_usage_error(s_verb, "at most %d SERVERs", SK2_RELAY_UPSTREAMS_MAX);

    bool has_endpoint_file = false;
    sk2_relay_t *relay = sk2_relay_new(opts.name);
    if (!relay) {
        if (opts.name)
            return cli_usage_error(s_verb, "--name must be 1..%d bytes of UTF-8",
                                   SK2_SERVER_NAME_MAX);
        fprintf(stderr, "sk2 relay: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    cli_signals_install();
    if (opts.is_secure) {
        if (!sk2_security_is_available()) {
            fprintf(stderr, "sk2 relay: --secure needs CURVE, and this libzmq was built without "
                            "it\n");
            rc = CLI_EXIT_FAILURE;
            goto out;
        }
        rc = sk2_relay_set_security(relay, opts.keys, opts.allow);
        if (rc != 0) {
            fprintf(stderr,
                    "sk2 relay: cannot make the relay secure with --keys %s --allow %s: %s\n",
                    opts.keys, opts.allow, sk2_strerror(rc));
            rc = rc == SK2_EINVAL || rc == SK2_ENOTFOUND ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
            goto out;
        }
    }
    /* The upstream clients take the relay's key pair, as `sk2 stream --keys` takes one: with
     * --server-key always; without it only when --keys is for them alone (no --secure), so that
     * a secure relay may follow plain servers. */
    if (opts.keys && (opts.server_key_count > 0 || !opts.is_secure))
        cli_apply_security(s_verb, CLI_OPT_KEYS, opts.keys);
    rc = sk2_relay_set_announce(relay, opts.is_announced);
    if (rc == 0)
        rc = sk2_relay_bind(relay, opts.bind, (uint16_t)opts.port);
    if (rc != 0) {
        fprintf(stderr, "sk2 relay: cannot serve on %s: %s\n", opts.bind, sk2_strerror(rc));
        rc = rc == SK2_EINVAL || rc == SK2_ENOTFOUND ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
        goto out;
    }
    if (opts.accept_push) {
        /* ADDR:PORT, the address maybe an IPv6 literal in brackets. */
        char address[256];
        const char *colon = strrchr(opts.accept_push, ':');
        size_t length = (size_t)(colon - opts.accept_push);
        if (length >= 2 && opts.accept_push[0] == '[' && colon[-1] == ']') {
            length -= 2;
            memcpy(address, opts.accept_push + 1, length < sizeof address ? length : 0);
        } else if (length < sizeof address) {
            memcpy(address, opts.accept_push, length);
        } else {
            length = 0;
        }
        address[length < sizeof address ? length : 0] = '\0';
        /* A secure relay's push port takes the relay's own keys and allow folder. */
        rc = sk2_relay_accept_push(relay, address, (uint16_t)atoi(colon + 1), NULL, NULL);
        if (rc != 0) {
            fprintf(stderr, "sk2 relay: cannot accept pushes on %s: %s\n", opts.accept_push,
                    sk2_strerror(rc));
            rc = rc == SK2_EINVAL || rc == SK2_ENOTFOUND ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
            goto out;
        }
        if (!cli_is_quiet())
            printf("sk2 relay: accepting pushes on %s%s\n", opts.accept_push,
                   opts.is_secure ? " (CURVE, allowed pusher keys only)" : "");
    }
    for (int i = optind; i < argc; i++) {
        char endpoint[CLI_ENDPOINT_MAX];
        sk2_client_t *client = NULL;
        if (opts.server_key_count > 0)
            cli_apply_security(s_verb, CLI_OPT_SERVER_KEY,
                               opts.server_keys[opts.server_key_count == 1 ? 0 : i - optind]);
        rc = cli_client_open(s_verb, argv[i], opts.server.timeout_ms, opts.server.browse_ms,
                             endpoint, &client);
        if (rc != CLI_CONTINUE)
            goto out;
        rc = sk2_relay_add_upstream(relay, &client);
        if (rc != 0) {
            fprintf(stderr, "sk2 relay: cannot relay %s: %s\n", endpoint, sk2_strerror(rc));
            rc = CLI_EXIT_FAILURE;
            goto out;
        }
    }
    /* Until every SERVER has answered (or --timeout passed), so that the endpoint file and the
     * first line promise a relay whose first `me` already lists the devices. */
    int64_t deadline_us = sk2_clock_mono_us() + (int64_t)opts.server.timeout_ms * 1000;
    sk2_relay_stats_t stats;
    while (sk2_relay_stats(relay, &stats) == 0 && stats.upstreams_live < stats.upstreams &&
           sk2_clock_mono_us() < deadline_us && !cli_is_interrupted())
        cli_sleep_ms(20);
    if (stats.upstreams_live < stats.upstreams && !cli_is_quiet())
        fprintf(stderr,
                "sk2 relay: %zu of %zu servers not answering yet; relaying each once it "
                "does\n",
                stats.upstreams - stats.upstreams_live, stats.upstreams);
    if (opts.endpoint_file) {
        if (cli_write_endpoint_file(opts.endpoint_file, sk2_relay_endpoint(relay)) != 0) {
            fprintf(stderr, "sk2 relay: cannot write %s: %s\n", opts.endpoint_file,
                    strerror(errno));
            rc = CLI_EXIT_FAILURE;
            goto out;
        }
        has_endpoint_file = true;
    }
    if (opts.is_secure && !cli_is_quiet())
        printf("sk2 relay: secure (CURVE); relay public key %s\n", sk2_relay_public_key(relay));
    if (!cli_is_quiet())
        printf("sk2 relay: relaying %d server%s%s on %s\n", argc - optind,
               argc - optind == 1 ? "" : "s", opts.accept_push ? " and pushers" : "",
               sk2_relay_endpoint(relay));
    while (!cli_is_interrupted())
        cli_sleep_ms(200);
    if (!cli_is_quiet() && sk2_relay_stats(relay, &stats) == 0)
        printf("sk2 relay: forwarded %llu frames (%llu bytes), %llu refused\n",
               (unsigned long long)stats.frames_forwarded,
               (unsigned long long)stats.bytes_forwarded, (unsigned long long)stats.frames_refused);
    rc = CLI_EXIT_OK;
out:
    sk2_relay_destroy(&relay);
    if (has_endpoint_file)
        unlink(opts.endpoint_file);
    return rc;
}
