/* sk2 codecs: lists the codecs libsk2 has, in registry order, with whether they are lossless,
 * which pixel formats they take and what they are for. --json prints the same as one JSON
 * array. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "sk2/sk2.h"

static void s_print_usage(void)
{
    printf("usage: sk2 codecs [--json]\n"
           "\n"
           "List the frame codecs: name, lossless or not, pixel formats, description.\n"
           "\n"
           "options:\n"
           "      --json       one JSON array instead of a table\n"
           "  -h, --help       show this help and exit\n");
}

/* The formats a codec takes, comma-separated. */
static void s_formats(const sk2_codec_t *codec, char *out, size_t size)
{
    const sk2_pixel_format_t all[] = {SK2_PIXEL_DEPTH_MM16, SK2_PIXEL_GRAY16, SK2_PIXEL_RGB24,
                                      SK2_PIXEL_BGRA32};
    out[0] = '\0';
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (!sk2_codec_supports(codec, all[i]))
            continue;
        size_t used = strlen(out);
        snprintf(out + used, size - used, "%s%s", used ? "," : "", sk2_pixel_format_name(all[i]));
    }
}

static int s_apply_option(void *options, int opt, const char *arg)
{
    (void)arg;
    if (opt == 'j')
        *(bool *)options = true; /* --json, the only option of its own */
    return CLI_CONTINUE;
}

int cli_codecs(int argc, char **argv)
{
    static const char optstring[] = "+:hvqj";
    static const struct option options[] = {
        {"json", no_argument, NULL, 'j'},
        CLI_COMMON_LONG_OPTIONS,
    };
    const cli_parser_t parser = {"codecs", optstring, options, s_print_usage, s_apply_option};
    bool is_json = false;
    int rc = cli_parse_options(&parser, argc, argv, &is_json);
    if (rc != CLI_CONTINUE)
        return rc;
    if (optind < argc)
        return cli_usage_error("codecs", "unexpected argument '%s'", argv[optind]);
    if (is_json)
        printf("[");
    else
        printf("%-8s %-8s %-31s %s\n", "NAME", "LOSSLESS", "FORMATS", "DESCRIPTION");
    for (size_t i = 0; i < sk2_codec_count(); i++) {
        const sk2_codec_t *codec = sk2_codec_at(i);
        char formats[128];
        s_formats(codec, formats, sizeof formats);
        if (is_json)
            printf("%s{\"name\": \"%s\", \"lossless\": %s, \"quality\": %s, \"formats\": \"%s\"}",
                   i ? ", " : "", sk2_codec_name(codec),
                   sk2_codec_is_lossless(codec) ? "true" : "false",
                   sk2_codec_has_quality(codec) ? "true" : "false", formats);
        else
            printf("%-8s %-8s %-31s %s\n", sk2_codec_name(codec),
                   sk2_codec_is_lossless(codec) ? "yes" : "no", formats,
                   sk2_codec_description(codec));
    }
    if (is_json)
        printf("]\n");
    return CLI_EXIT_OK;
}
