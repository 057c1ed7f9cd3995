/* sk2 devices: lists the device backends this library was built with and, for each camera
 * backend, the cameras it sees now (uri, serial, name). The uri is what `sk2 serve --device
 * BACKEND:URI` takes. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "sk2/sk2.h"

#define S_MAX_CAMERAS 32

static void s_print_usage(void)
{
    printf("usage: sk2 devices\n"
           "\n"
           "List the device backends built into libsk2 and the cameras each one sees now.\n"
           "Camera uris go to `sk2 serve --device BACKEND:URI`. Asking the drivers may\n"
           "take a second or two.\n"
           "\n"
           "options:\n"
           "  -h, --help       show this help and exit\n");
}

int cli_devices(int argc, char **argv)
{
    static const char optstring[] = "+:hvq";
    static const struct option options[] = {
        CLI_COMMON_LONG_OPTIONS,
    };
    const cli_parser_t parser = {"devices", optstring, options, s_print_usage, NULL};
    int parsed = cli_parse_options(&parser, argc, argv, NULL);
    if (parsed != CLI_CONTINUE)
        return parsed;
    if (optind < argc)
        return cli_usage_error("devices", "unexpected argument '%s'", argv[optind]);
    int rc = CLI_EXIT_OK;
    for (size_t i = 0; i < sk2_device_backend_count(); i++) {
        const char *name = sk2_device_backend_name(i);
        if (!sk2_device_backend_is_camera(i)) {
            printf("%s: built in, makes its own frames (no hardware)\n", name);
            continue;
        }
        static sk2_camera_info_t cameras[S_MAX_CAMERAS];
        int count = sk2_device_backend_enumerate(i, cameras, S_MAX_CAMERAS);
        if (count < 0) {
            printf("%s: built in, cannot list cameras: %s\n", name, sk2_strerror(count));
            rc = CLI_EXIT_FAILURE;
            continue;
        }
        printf("%s: built in, %d camera%s\n", name, count, count == 1 ? "" : "s");
        for (int c = 0; c < count && c < S_MAX_CAMERAS; c++) {
            char uri[4 * SK2_CAMERA_URI_MAX + 1], serial[4 * SK2_CAMERA_SERIAL_MAX + 1],
                label[4 * SK2_CAMERA_NAME_MAX + 1];
            cli_safe(cameras[c].uri, uri, sizeof uri);
            cli_safe(cameras[c].serial, serial, sizeof serial);
            cli_safe(cameras[c].name, label, sizeof label);
            printf("  %s:%s  serial %s  %s\n", name, uri, serial[0] ? serial : "(none)", label);
        }
    }
    return rc;
}
