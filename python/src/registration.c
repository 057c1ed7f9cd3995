/* sk2.Registration: depth registered to a colour camera (sk2/registration.h) from Python.
 *
 * Inputs are anything with the buffer protocol and a C-contiguous shape (sk2.Frame, numpy
 * arrays): depth as (height, width) uint16, colour as (height, width, 3) RGB or (..., 4) BGRA
 * uint8. They are copied into sk2 frames, which costs a few milliseconds at 1080p next to the
 * registration itself but keeps the C API's frame checks; results are sk2.Frame objects
 * (asarray() gives numpy arrays without a copy). The work runs without the GIL. */
#include "sk2py.h"

#include <string.h>

typedef struct {
    PyObject_HEAD sk2_registration_t *registration;
    uint32_t depth_width, depth_height, color_width, color_height;
} s_registration_t;

static bool s_numbers(PyObject *obj, double *out, Py_ssize_t count, const char *what)
{
    PyObject *seq = PySequence_Fast(obj, what);
    if (!seq)
        return false;
    bool ok = PySequence_Fast_GET_SIZE(seq) == count;
    for (Py_ssize_t i = 0; ok && i < count; i++) {
        out[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, i));
        if (out[i] == -1.0 && PyErr_Occurred())
            ok = false;
    }
    Py_DECREF(seq);
    if (!ok && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, what);
    return ok;
}

static bool s_intrinsics(PyObject *obj, sk2_intrinsics_t *k)
{
    double v[9];
    if (!s_numbers(obj, v, 9, "intrinsics must be 9 numbers (fx, fy, cx, cy, k1, k2, k3, p1, p2)"))
        return false;
    *k = (sk2_intrinsics_t){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]};
    return true;
}

static bool s_size(PyObject *obj, uint32_t *width, uint32_t *height)
{
    double v[2];
    if (!s_numbers(obj, v, 2, "a size is (width, height)"))
        return false;
    if (!(v[0] >= 1 && v[0] <= 16384 && v[1] >= 1 && v[1] <= 16384) || v[0] != (uint32_t)v[0] ||
        v[1] != (uint32_t)v[1]) {
        PyErr_SetString(PyExc_ValueError, "a size is (width, height), whole numbers 1..16384");
        return false;
    }
    *width = (uint32_t)v[0];
    *height = (uint32_t)v[1];
    return true;
}

static int s_init(s_registration_t *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"depth_intrinsics", "depth_size", "depth_unit_m", "color_intrinsics",
                               "color_size",       "rotation",   "translation",  NULL};
    PyObject *dk, *dsize, *ck, *csize, *rotation, *translation;
    double unit_m;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOdOOOO:Registration", keywords, &dk, &dsize,
                                     &unit_m, &ck, &csize, &rotation, &translation))
        return -1;
    sk2_intrinsics_t depth, color;
    sk2_extrinsics_t extrinsics;
    if (!s_intrinsics(dk, &depth) || !s_intrinsics(ck, &color) ||
        !s_size(dsize, &self->depth_width, &self->depth_height) ||
        !s_size(csize, &self->color_width, &self->color_height) ||
        !s_numbers(rotation, extrinsics.rotation, 9, "rotation must be 9 numbers, row-major") ||
        !s_numbers(translation, extrinsics.translation, 3, "translation must be 3 numbers, metres"))
        return -1;
    char why[256];
    if (sk2_extrinsics_check(&extrinsics, why, sizeof why) != 0) {
        PyErr_Format(PyExc_ValueError, "extrinsics refused: %s", why);
        return -1;
    }
    sk2_registration_destroy(&self->registration);
    int rc = sk2_registration_new(&depth, self->depth_width, self->depth_height, unit_m, &color,
                                  self->color_width, self->color_height, &extrinsics,
                                  &self->registration);
    if (rc != 0) {
        sk2py_raise(rc, "Registration");
        return -1;
    }
    return 0;
}

static void s_dealloc(s_registration_t *self)
{
    sk2_registration_destroy(&self->registration);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A new sk2 frame holding a copy of a buffer of the given shape; NULL with an exception. */
static sk2_frame_t *s_frame_from(PyObject *obj, sk2_stream_kind_t kind, uint32_t width,
                                 uint32_t height, const char *what)
{
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_ND) != 0)
        return NULL;
    sk2_frame_t *frame = NULL;
    bool is_depth = kind == SK2_STREAM_DEPTH;
    Py_ssize_t channels = view.ndim == 3 ? view.shape[2] : 1;
    bool is_shaped = view.ndim >= 2 && view.ndim <= 3 && view.shape[0] == (Py_ssize_t)height &&
                     view.shape[1] == (Py_ssize_t)width;
    bool is_typed = is_depth ? view.itemsize == 2 && view.ndim == 2
                             : view.itemsize == 1 && (channels == 3 || channels == 4);
    if (!is_shaped || !is_typed) {
        PyErr_Format(PyExc_ValueError, "%s must be %s of %u rows and %u columns (C-contiguous)",
                     what, is_depth ? "uint16" : "uint8 RGB (3 channels) or BGRA (4)", height,
                     width);
    } else {
        frame = sk2_frame_new(kind,
                              is_depth        ? SK2_PIXEL_DEPTH_MM16
                              : channels == 3 ? SK2_PIXEL_RGB24
                                              : SK2_PIXEL_BGRA32,
                              width, height);
        if (!frame)
            PyErr_NoMemory();
        else
            memcpy(sk2_frame_data(frame), view.buf, (size_t)view.len);
    }
    PyBuffer_Release(&view);
    return frame;
}

static PyObject *s_result(int rc, sk2_frame_t **out, const char *what)
{
    if (rc != 0)
        return sk2py_raise(rc, what);
    sk2py_frame_meta_t meta = {.latency_us = -1};
    return sk2py_frame_new(out, NULL, &meta);
}

static PyObject *s_depth_to_color(s_registration_t *self, PyObject *args)
{
    PyObject *depth_obj;
    if (!PyArg_ParseTuple(args, "O:depth_to_color", &depth_obj))
        return NULL;
    sk2_frame_t *depth =
        s_frame_from(depth_obj, SK2_STREAM_DEPTH, self->depth_width, self->depth_height, "depth");
    if (!depth)
        return NULL;
    sk2_frame_t *out = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = sk2_registration_depth_to_color(self->registration, depth, &out);
    Py_END_ALLOW_THREADS sk2_frame_destroy(&depth);
    return s_result(rc, &out, "depth_to_color");
}

static PyObject *s_color_to_depth(s_registration_t *self, PyObject *args)
{
    PyObject *depth_obj, *color_obj;
    if (!PyArg_ParseTuple(args, "OO:color_to_depth", &depth_obj, &color_obj))
        return NULL;
    sk2_frame_t *depth =
        s_frame_from(depth_obj, SK2_STREAM_DEPTH, self->depth_width, self->depth_height, "depth");
    sk2_frame_t *color = depth ? s_frame_from(color_obj, SK2_STREAM_COLOR, self->color_width,
                                              self->color_height, "color")
                               : NULL;
    if (!color) {
        sk2_frame_destroy(&depth);
        return NULL;
    }
    sk2_frame_t *out = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc =
        sk2_registration_color_to_depth(self->registration, depth, color, &out);
    Py_END_ALLOW_THREADS sk2_frame_destroy(&depth);
    sk2_frame_destroy(&color);
    return s_result(rc, &out, "color_to_depth");
}

static PyMethodDef s_methods[] = {
    {"depth_to_color", (PyCFunction)s_depth_to_color, METH_VARARGS,
     "depth_to_color(depth) -> Frame\n\n"
     "Depth as the colour camera sees it: a depth_mm16 frame of the colour size, in the\n"
     "input's unit, 0 where no point falls; the nearest point wins."},
    {"color_to_depth", (PyCFunction)s_color_to_depth, METH_VARARGS,
     "color_to_depth(depth, color) -> Frame\n\n"
     "The colour of each depth pixel: a bgra32 frame of the depth size, alpha 0 where the\n"
     "pixel has no reading, falls outside the colour image or is hidden from the colour camera."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject s_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sk2._sk2.Registration",
    .tp_basicsize = sizeof(s_registration_t),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Registration(depth_intrinsics, depth_size, depth_unit_m, color_intrinsics,\n"
              "             color_size, rotation, translation)\n\n"
              "Registers depth frames of one camera to a colour camera: intrinsics are 9\n"
              "numbers (or sk2.Intrinsics), sizes (width, height), rotation (9 numbers,\n"
              "row-major) and translation (3, metres) map the depth optical frame to the colour\n"
              "one (docs/rigs.md).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)s_init,
    .tp_dealloc = (destructor)s_dealloc,
    .tp_methods = s_methods,
};

int sk2py_registration_init(PyObject *module)
{
    if (PyType_Ready(&s_type) < 0)
        return -1;
    Py_INCREF(&s_type);
    if (PyModule_AddObject(module, "Registration", (PyObject *)&s_type) < 0) {
        Py_DECREF(&s_type);
        return -1;
    }
    return 0;
}
