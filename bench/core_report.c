/* bench_core's output. Tables are Markdown with aligned columns, so the same text reads well in
 * a terminal and pastes into README.md; the notes under each table say what its figures mean,
 * because a number without its method is not worth printing. JSON carries the same figures
 * with the units in the key names. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <jansson.h>

#include "core_report.h"
#include "sk2/sk2.h"

#define S_COLS 13
#define S_ROWS 8
#define S_CELL 64

typedef struct {
    int cols;                          /* columns in use */
    int rows;                          /* rows in use, the header included */
    char cell[S_ROWS][S_COLS][S_CELL]; /* row 0 is the header */
} s_table_t;

static int s_compare_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

double report_median(double *values, size_t n)
{
    if (n == 0)
        return 0;
    qsort(values, n, sizeof *values, s_compare_double);
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

void report_progress(const bench_options_t *options, const char *part)
{
    if (!options->is_json && isatty(STDERR_FILENO))
        fprintf(stderr, "bench_core: %s ...\n", part);
}

__attribute__((format(printf, 4, 5))) static void s_cell(s_table_t *table, int row, int col,
                                                         const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(table->cell[row][col], S_CELL, fmt, args);
    va_end(args);
    if (row >= table->rows)
        table->rows = row + 1;
    if (col >= table->cols)
        table->cols = col + 1;
}

/* Display width: UTF-8 code points ("µs" is two). */
static int s_width(const char *text)
{
    int width = 0;
    for (; *text; text++)
        width += ((unsigned char)*text & 0xC0) != 0x80;
    return width;
}

/* The first column is text, left-aligned; the others are figures, right-aligned. */
static void s_table_print(const s_table_t *table)
{
    int widths[S_COLS] = {0};
    for (int r = 0; r < table->rows; r++)
        for (int c = 0; c < table->cols; c++)
            if (s_width(table->cell[r][c]) > widths[c])
                widths[c] = s_width(table->cell[r][c]);
    for (int r = 0; r < table->rows; r++) {
        for (int c = 0; c < table->cols; c++) {
            int pad = widths[c] - s_width(table->cell[r][c]);
            const char *text = table->cell[r][c];
            if (c == 0)
                printf("| %s%*s ", text, pad, "");
            else
                printf("| %*s%s ", pad, "", text);
        }
        printf("|\n");
        if (r == 0) {
            for (int c = 0; c < table->cols; c++) {
                printf("| ");
                for (int i = 0; i < widths[c] - (c > 0); i++)
                    putchar('-');
                printf(c > 0 ? ": " : " ");
            }
            printf("|\n");
        }
    }
    printf("\n");
}

/* The CPU model from /proc/cpuinfo, or "unknown CPU". */
static void s_cpu_model(char *model, size_t size)
{
    snprintf(model, size, "unknown CPU");
    FILE *file = fopen("/proc/cpuinfo", "r");
    if (!file)
        return;
    char line[512];
    while (fgets(line, sizeof line, file)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            colon += 1 + (colon[1] == ' ');
            colon[strcspn(colon, "\n")] = '\0';
            snprintf(model, size, "%s", colon);
            break;
        }
    }
    fclose(file);
}

/* The command line as typed, each argument quoted if a shell would need it. */
static void s_command_line(const bench_report_t *report, char *line, size_t size)
{
    size_t used = 0;
    line[0] = '\0';
    for (int i = 0; i < report->argc && used < size; i++) {
        const char *arg = report->argv[i];
        bool is_plain = *arg && strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                            "0123456789-_./=:,+@%") == strlen(arg);
        int n = snprintf(line + used, size - used, is_plain ? "%s%s" : "%s'%s'", i ? " " : "", arg);
        used += n > 0 ? (size_t)n : 0;
    }
}

static void s_print_header(const bench_report_t *report)
{
    char command[1024];
    char cpu[256];
    struct utsname host;
    s_command_line(report, command, sizeof command);
    s_cpu_model(cpu, sizeof cpu);
    if (uname(&host) != 0)
        snprintf(host.machine, sizeof host.machine, "?");
    printf("## sk2 bench_core\n\n");
    printf("- command: `%s`\n", command);
    printf("- machine: %s, %ld cores online (%s), all parts on this one machine\n", cpu,
           sysconf(_SC_NPROCESSORS_ONLN), host.machine);
    printf("- build: sk2 %s, %s%s\n", sk2_version(), SK2_BENCH_BUILD_TYPE,
           SK2_BENCH_SANITIZED ? ", ASan/UBSan: figures not representative" : "");
    printf("- figures are medians; MB = 10^6 bytes\n\n");
}

static void s_print_mock(const bench_report_t *report)
{
    double runs[BENCH_MOCK_RUNS];
    memcpy(runs, report->mock_fps, sizeof runs);
    s_table_t table = {0};
    printf("### 1. Mock device: frames/s at fps 0, sink destroys each frame (%d runs of %g s)\n\n",
           BENCH_MOCK_RUNS, BENCH_MOCK_RUN_US / 1e6);
    s_cell(&table, 0, 0, "backend");
    s_cell(&table, 1, 0, "mock, 512x424");
    s_cell(&table, 0, 1, "frames/s (median)");
    for (int i = 0; i < BENCH_MOCK_RUNS; i++) {
        s_cell(&table, 0, 2 + i, "run %d", i + 1);
        s_cell(&table, 1, 2 + i, "%.0f", report->mock_fps[i]);
    }
    s_cell(&table, 1, 1, "%.0f", report_median(runs, BENCH_MOCK_RUNS));
    s_table_print(&table);
}

static void s_print_codec(const bench_report_t *report)
{
    static const char *const heads[] = {
        "input",        "size",        "frames",          "ratio",
        "encode MB/s",  "decode MB/s", "encode µs/frame", "decode µs/frame",
        "px >= 4096 mm"};
    s_table_t table = {0};
    printf("### 2. Codec depth12, one thread (median of %d reps; MB/s of raw 16-bit input)\n\n",
           report->options->reps);
    for (int c = 0; c < 9; c++)
        s_cell(&table, 0, c, "%s", heads[c]);
    for (int i = 0; i < BENCH_CODEC_SETS; i++) {
        const bench_codec_t *set = &report->codec[i];
        double per_frame = (double)set->raw_bytes / (double)set->frames;
        s_cell(&table, i + 1, 0, "%s", set->name);
        s_cell(&table, i + 1, 1, "%ux%u", set->width, set->height);
        s_cell(&table, i + 1, 2, "%zu", set->frames);
        s_cell(&table, i + 1, 3, "%.2f", (double)set->raw_bytes / (double)set->encoded_bytes);
        s_cell(&table, i + 1, 4, "%.0f", set->encode_mb_s);
        s_cell(&table, i + 1, 5, "%.0f", set->decode_mb_s);
        s_cell(&table, i + 1, 6, "%.0f", per_frame / set->encode_mb_s);
        s_cell(&table, i + 1, 7, "%.0f", per_frame / set->decode_mb_s);
        s_cell(&table, i + 1, 8, "%.2f%%", 100 * set->high_fraction);
    }
    s_table_print(&table);
    const bench_codec_t *real = &report->codec[1];
    printf("- depth12 keeps the low 12 bits of each pixel, so it is lossy above 4095 mm (values "
           "come back\n  modulo 4096). %.2f%% of the real frames' pixels are >= 4096 mm: their "
           "row is a speed\n  figure, not a lossless compression result.\n",
           100 * real->high_fraction);
    printf("- ratio = raw bytes / encoded bytes; the real set is aggregated over its frames, "
           "one by one:");
    for (size_t i = 0; i < real->frames; i++)
        printf("%s %s %.2f", i ? "," : "", real->labels[i], real->ratio[i]);
    printf(".\n- data: %s\n\n", report->options->data_dir);
}

static void s_print_e2e(const bench_report_t *report)
{
    static const char *const heads[] = {
        "scenario", "fps/client",      "missed",         "latency p50 ms", "p99 ms",
        "max ms",   "server µs/frame", "µs/encoded",     "server CPU %",   "server RSS MB",
        "produced", "dropped",         "encodings/frame"};
    s_table_t table = {0};
    printf("### 3. End to end on loopback: capture -> server encode -> publish -> client receive "
           "-> decode\n\n");
    for (int c = 0; c < 13; c++)
        s_cell(&table, 0, c, "%s", heads[c]);
    for (int i = 0; i < BENCH_SCENARIOS; i++) {
        const bench_e2e_t *run = &report->e2e[i];
        int row = i + 1;
        s_cell(&table, row, 0, "%s", report->scenarios[i].name);
        s_cell(&table, row, 1, "%.1f", run->fps_per_client);
        s_cell(&table, row, 2, "%.1f%%", 100 * run->missed);
        s_cell(&table, row, 3, "%.2f", run->p50_ms);
        s_cell(&table, row, 4, "%.2f", run->p99_ms);
        s_cell(&table, row, 5, "%.2f", run->max_ms);
        s_cell(&table, row, 6, "%.0f", run->cpu_us_per_frame);
        s_cell(&table, row, 7, "%.0f", run->cpu_us_per_encoded);
        s_cell(&table, row, 8, "%.0f", run->cpu_percent);
        s_cell(&table, row, 9, "%.1f", run->rss_mb);
        s_cell(&table, row, 10, "%llu", (unsigned long long)run->stats.frames_produced);
        s_cell(&table, row, 11, "%llu", (unsigned long long)run->stats.frames_dropped);
        uint64_t encoded = run->stats.frames_encoded;
        s_cell(&table, row, 12, "%.2f",
               encoded ? (double)run->stats.encodings / (double)encoded : 0.0);
    }
    s_table_print(&table);
    printf("- The server (one \"stamp\" device: the mock scene with its capture time in the "
           "first pixels)\n  runs in a child process; each client is a thread with its own "
           "sk2_client_t. Clients\n  measure for %g s after a %g s warm-up.\n",
           report->options->seconds, BENCH_WARMUP_US / 1e6);
    printf("- fps/client: median over clients. latency: wall clock when sk2_client_recv hands "
           "over the\n  decoded frame, minus the capture time stamped in it; percentiles over "
           "all clients' frames.\n");
    printf("- missed: frames the device made during the window that a client never got "
           "(server drops and\n  high-water marks), over all clients.\n");
    printf("- server columns cover the child's whole life (start, warm-up, window, stop): CPU "
           "is\n  ru_utime + ru_stime from wait4(), per frame produced (server µs/frame), per "
           "frame encoded\n  (µs/encoded) and as %% of one core over its wall time; RSS is "
           "ru_maxrss. produced and\n  dropped come from sk2_server_stats.\n");
    printf("- At \"max\" the device renders faster than one encoder encodes; the server drops "
           "what its\n  encoder cannot take (the camera is never blocked), which is most of "
           "\"missed\" there.\n");
    printf("- With 10 clients on %ld cores, the clients and the server compete for the CPU: "
           "these are\n  figures of this machine with everything in one box, not of a server "
           "alone.\n",
           sysconf(_SC_NPROCESSORS_ONLN));
}

static json_t *s_json_codec(const bench_codec_t *set)
{
    json_t *ratios = json_object();
    for (size_t f = 0; f < set->frames; f++)
        json_object_set_new(ratios, set->labels[f], json_real(set->ratio[f]));
    json_t *o = json_object();
    json_object_set_new(o, "input", json_string(set->name));
    json_object_set_new(o, "codec", json_string(SK2_CODEC_DEPTH12));
    json_object_set_new(o, "width", json_integer(set->width));
    json_object_set_new(o, "height", json_integer(set->height));
    json_object_set_new(o, "frames", json_integer((json_int_t)set->frames));
    json_object_set_new(o, "raw_bytes", json_integer((json_int_t)set->raw_bytes));
    json_object_set_new(o, "encoded_bytes", json_integer((json_int_t)set->encoded_bytes));
    json_object_set_new(o, "ratio", json_real((double)set->raw_bytes / (double)set->encoded_bytes));
    json_object_set_new(o, "ratio_per_frame", ratios);
    json_object_set_new(o, "encode_mb_s", json_real(set->encode_mb_s));
    json_object_set_new(o, "decode_mb_s", json_real(set->decode_mb_s));
    json_object_set_new(o, "fraction_ge_4096_mm", json_real(set->high_fraction));
    return o;
}

static json_t *s_json_e2e(const bench_scenario_t *scenario, const bench_e2e_t *run)
{
    const sk2_server_stats_t *stats = &run->stats;
    json_t *o = json_object();
    json_object_set_new(o, "scenario", json_string(scenario->name));
    json_object_set_new(o, "fps", json_real(scenario->fps));
    json_object_set_new(o, "clients", json_integer(scenario->clients));
    /* The depth codecs the clients asked for; depth12 on the version-1 endpoint. */
    json_t *codecs = json_array();
    if (!scenario->codecs[0])
        json_array_append_new(codecs, json_string("depth12"));
    for (int i = 0; scenario->codecs[0] && i < 2 && i < scenario->clients; i++)
        if (i == 0 || strcmp(scenario->codecs[i], scenario->codecs[0]) != 0)
            json_array_append_new(codecs, json_string(scenario->codecs[i]));
    json_object_set_new(o, "codecs", codecs);
    json_object_set_new(o, "fps_per_client_median", json_real(run->fps_per_client));
    json_object_set_new(o, "missed_fraction", json_real(run->missed));
    json_object_set_new(o, "latency_p50_ms", json_real(run->p50_ms));
    json_object_set_new(o, "latency_p99_ms", json_real(run->p99_ms));
    json_object_set_new(o, "latency_max_ms", json_real(run->max_ms));
    json_object_set_new(o, "latency_samples", json_integer((json_int_t)run->samples));
    json_object_set_new(o, "server_cpu_us_per_frame", json_real(run->cpu_us_per_frame));
    json_object_set_new(o, "server_cpu_us_per_encoded", json_real(run->cpu_us_per_encoded));
    json_object_set_new(o, "server_cpu_percent", json_real(run->cpu_percent));
    json_object_set_new(o, "server_peak_rss_mb", json_real(run->rss_mb));
    json_object_set_new(o, "frames_produced", json_integer((json_int_t)stats->frames_produced));
    json_object_set_new(o, "frames_encoded", json_integer((json_int_t)stats->frames_encoded));
    json_object_set_new(o, "frames_published", json_integer((json_int_t)stats->frames_published));
    json_object_set_new(o, "frames_dropped", json_integer((json_int_t)stats->frames_dropped));
    json_object_set_new(o, "encodings", json_integer((json_int_t)stats->encodings));
    json_object_set_new(o, "bytes_published", json_integer((json_int_t)stats->bytes_published));
    return o;
}

static json_t *s_json(const bench_report_t *report)
{
    char command[1024];
    char cpu[256];
    s_command_line(report, command, sizeof command);
    s_cpu_model(cpu, sizeof cpu);
    json_t *root = json_object();
    json_object_set_new(root, "command", json_string(command));
    json_object_set_new(root, "cpu_model", json_string(cpu));
    json_object_set_new(root, "cores_online", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
    json_object_set_new(root, "sk2_version", json_string(sk2_version()));
    json_object_set_new(root, "build_type", json_string(SK2_BENCH_BUILD_TYPE));
    json_object_set_new(root, "sanitized", json_boolean(SK2_BENCH_SANITIZED));
    json_object_set_new(root, "seconds", json_real(report->options->seconds));
    json_object_set_new(root, "reps", json_integer(report->options->reps));
    json_object_set_new(root, "quick", json_boolean(report->options->is_quick));
    json_object_set_new(root, "data", json_string(report->options->data_dir));
    json_object_set_new(root, "warmup_s", json_real(BENCH_WARMUP_US / 1e6));

    double runs[BENCH_MOCK_RUNS];
    memcpy(runs, report->mock_fps, sizeof runs);
    json_t *mock_runs = json_array();
    for (int i = 0; i < BENCH_MOCK_RUNS; i++)
        json_array_append_new(mock_runs, json_real(report->mock_fps[i]));
    json_object_set_new(root, "mock_fps_runs", mock_runs);
    json_object_set_new(root, "mock_fps_median", json_real(report_median(runs, BENCH_MOCK_RUNS)));

    json_t *codec = json_array();
    for (int i = 0; i < BENCH_CODEC_SETS; i++)
        json_array_append_new(codec, s_json_codec(&report->codec[i]));
    json_object_set_new(root, "codec", codec);
    json_t *e2e = json_array();
    for (int i = 0; i < BENCH_SCENARIOS; i++)
        json_array_append_new(e2e, s_json_e2e(&report->scenarios[i], &report->e2e[i]));
    json_object_set_new(root, "end_to_end", e2e);
    return root;
}

int report_print(const bench_report_t *report)
{
    if (report->options->is_json) {
        json_t *root = s_json(report);
        int rc = root ? json_dumpf(root, stdout, JSON_INDENT(2)) : -1;
        json_decref(root);
        printf("\n");
        return rc == 0 && fflush(stdout) == 0 ? 0 : -1;
    }
    s_print_header(report);
    s_print_mock(report);
    s_print_codec(report);
    s_print_e2e(report);
    return fflush(stdout) == 0 ? 0 : -1;
}
