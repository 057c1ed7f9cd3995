/* Private declarations shared by the files of the Python extension module sk2._sk2.
 *
 * The module is a thin layer over the public C API (include/sk2/): one Python type per sk2
 * object, errors mapped to one exception class per SK2_E* code, and frames handed to numpy
 * without copying. Python-level conveniences (context managers, generators, docstrings for
 * the public classes) live in python/sk2/__init__.py, which subclasses these types. */
#ifndef SK2PY_H
#define SK2PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdbool.h>

#include <sk2/sk2.h>

/* How long one blocking wait runs without the GIL before the binding looks at Python's
 * signals (Ctrl-C): short enough to feel immediate, long enough to cost nothing. */
#define SK2PY_SLICE_MS 100

/* ---- errors (module.c) ---- */

/* Raises the exception class of an SK2_E* code with "what: message" and returns NULL. */
PyObject *sk2py_raise(int code, const char *what);
/* The same with a detail string (a reader's "why"), which may be NULL or "". */
PyObject *sk2py_raise_why(int code, const char *what, const char *why);

/* ---- frames (frame.c) ---- */

extern PyTypeObject sk2py_frame_type;
extern PyTypeObject sk2py_frameset_type;
extern PyTypeObject *sk2py_intrinsics_type;
extern PyTypeObject *sk2py_stream_type;

/* Per-frame metadata that is not in sk2_frame_t: where the frame came from and its stream's
 * description (for units and intrinsics). */
typedef struct {
    const char *codec;      /* static codec name, or NULL */
    int64_t latency_us;     /* capture to decoded, -1 when unknown */
    uint64_t gap;           /* frames missed just before this one */
    bool has_info;          /* whether info is known */
    sk2_stream_info_t info; /* the stream as the server or recording describes it */
} sk2py_frame_meta_t;

/* Wraps a frame (taking ownership of *frame_p) with its device id and metadata; NULL with an
 * exception set on failure (the frame is then destroyed). */
PyObject *sk2py_frame_new(sk2_frame_t **frame_p, const char *device_id,
                          const sk2py_frame_meta_t *meta);
/* A frame set of one device from up to three frames (new references taken over; NULL slots
 * allowed). NULL with an exception set on failure. */
PyObject *sk2py_frameset_new(const char *device_id, PyObject *depth, PyObject *color, PyObject *ir);
/* An sk2.Intrinsics, or None when unknown. */
PyObject *sk2py_intrinsics(const sk2_intrinsics_t *intrinsics, bool is_known);
/* An sk2.StreamInfo for a stream description, with the codecs offered (may be NULL). */
PyObject *sk2py_stream_info(const sk2_stream_info_t *info, const char *codecs);
/* Parses "depth", "color" or "ir"; sets ValueError and returns 0 otherwise. */
sk2_stream_kind_t sk2py_kind_parse(PyObject *name);
/* Registers the frame types and numpy; 0 or -1 with an exception set. */
int sk2py_frame_init(PyObject *module);

/* ---- the other classes ---- */

int sk2py_client_init(PyObject *module);
int sk2py_server_init(PyObject *module);
int sk2py_recording_init(PyObject *module);
int sk2py_registration_init(PyObject *module);

#endif
