/* What bench_core measured, and how it is printed: Markdown-friendly tables for people,
 * JSON for machines. Only figures live here; the measuring is in bench_core.c. */
#ifndef SK2_BENCH_CORE_REPORT_H
#define SK2_BENCH_CORE_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sk2/server.h"

#define BENCH_MOCK_RUNS   3       /* runs of the mock device */
#define BENCH_MOCK_RUN_US 1000000 /* length of each */
#define BENCH_WARMUP_US   500000  /* clients receive before the measuring window opens */
#define BENCH_MAX_FRAMES  64      /* PNGs read from --data */
#define BENCH_CODEC_SETS  2       /* the mock scene and the real frames */
#define BENCH_SCENARIOS   7       /* end-to-end scenarios */

typedef struct {
    double seconds;       /* measuring window of each end-to-end scenario */
    int reps;             /* codec repetitions, of which the median is reported */
    bool is_json;         /* JSON on stdout instead of tables */
    bool is_quick;        /* the CI smoke run */
    const char *data_dir; /* 16-bit depth PNGs */
} bench_options_t;

typedef struct {
    const char *name; /* as printed */
    double fps;       /* stamp device rate, 0 = as fast as possible */
    int clients;      /* client threads, each with its own sk2_client_t */
    /* NULL: clients read the version-1 depth endpoint (depth12). Otherwise they subscribe to
     * depth on the streams endpoint, client i in codecs[i % 2] (the same twice for one). */
    const char *codecs[2];
} bench_scenario_t;

typedef struct {
    char name[64];                     /* input set, as printed */
    size_t frames;                     /* frames in the set */
    uint32_t width;                    /* pixels */
    uint32_t height;                   /* pixels */
    uint64_t raw_bytes;                /* 16-bit input, whole set */
    uint64_t encoded_bytes;            /* depth12 output, whole set */
    double encode_mb_s;                /* median over reps, 10^6 raw bytes per second */
    double decode_mb_s;                /* likewise */
    double high_fraction;              /* of pixels >= 4096 mm, which depth12 wraps */
    double ratio[BENCH_MAX_FRAMES];    /* raw / encoded bytes, per frame */
    char labels[BENCH_MAX_FRAMES][32]; /* per frame: file name without .png */
} bench_codec_t;

typedef struct {
    double fps_per_client;     /* median over clients of frames received / window */
    double missed;             /* fraction of the window's frames that clients never got */
    double p50_ms;             /* latency over all clients' samples, milliseconds */
    double p99_ms;             /* likewise */
    double max_ms;             /* likewise */
    size_t samples;            /* latency samples over all clients */
    double cpu_us_per_frame;   /* server CPU (user + system) per frame produced, us */
    double cpu_us_per_encoded; /* server CPU per frame encoded, us */
    double cpu_percent;        /* server CPU / server wall time, % of one core */
    double rss_mb;             /* server peak RSS, 10^6 bytes */
    sk2_server_stats_t stats;  /* the server's final counters */
} bench_e2e_t;

typedef struct {
    const bench_options_t *options;
    int argc; /* the command line, as given */
    char **argv;
    double mock_fps[BENCH_MOCK_RUNS];      /* frames per second, per run */
    bench_codec_t codec[BENCH_CODEC_SETS]; /* [0] mock scene, [1] real frames */
    const bench_scenario_t *scenarios;     /* BENCH_SCENARIOS of them */
    bench_e2e_t e2e[BENCH_SCENARIOS];      /* one per scenario */
} bench_report_t;

/* The median of n values; sorts them in place. 0 for n == 0. */
double report_median(double *values, size_t n);

/* Says on stderr which part runs now, when stderr is a terminal and the output is tables. */
void report_progress(const bench_options_t *options, const char *part);

/* Prints the report on stdout: tables, or JSON with --json. Returns 0 or -1. */
int report_print(const bench_report_t *report);

#endif
