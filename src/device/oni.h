/* OpenNI2's C API, made usable from C. Its headers are written for C++ (they use the struct
 * tags _OniDevice, _OniStream and _OniRecorder as type names, and declare some functions with
 * empty parentheses), so C needs the three typedefs first and a quiet -Wstrict-prototypes.
 * Private to libsk2 and its tests; included only when SK2_HAVE_OPENNI2. */
#ifndef SK2_DEVICE_ONI_H
#define SK2_DEVICE_ONI_H

typedef struct _OniDevice _OniDevice;
typedef struct _OniStream _OniStream;
typedef struct _OniRecorder _OniRecorder;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <OniCAPI.h>
#pragma GCC diagnostic pop

#endif
