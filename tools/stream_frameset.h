/* `sk2 stream SERVER... --frameset`: frames of several servers matched into framesets
 * (stream_frameset.c). */
#ifndef SK2_TOOLS_STREAM_FRAMESET_H
#define SK2_TOOLS_STREAM_FRAMESET_H

#include <stdbool.h>

/* Whether argv asks for the frameset mode of `sk2 stream`. */
bool stream_is_frameset(int argc, char **argv);
/* Runs it; returns the exit code. */
int stream_frameset(int argc, char **argv);

#endif
