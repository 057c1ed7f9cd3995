/* sk2.Frame and sk2.FrameSet: decoded frames handed to Python without copying their pixels.
 *
 * A Frame owns one sk2_frame_t. asarray() makes a read-only numpy array over the frame's own
 * buffer whose base is the Frame, so the pixels live as long as any array (or memoryview: the
 * Frame also speaks the buffer protocol) refers to them, whatever happens to the frame set or
 * the client that produced it. Nothing can write through those views, so a frame's pixels
 * never change after it reaches Python. This is the only file that uses numpy's C API. */
#include "sk2py.h"

#include <structmember.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

typedef struct {
    PyObject_HEAD sk2_frame_t *frame;
    PyObject *device_id;     /* str, or None */
    sk2py_frame_meta_t meta; /* codec, latency, gap, stream description */
    Py_ssize_t shape[3];     /* rows, columns, channels (buffer protocol and numpy) */
    Py_ssize_t strides[3];   /* bytes */
    int ndim;                /* 2 for 16-bit formats, 3 for colour */
} s_frame_t;

typedef struct {
    PyObject_HEAD PyObject *device_id; /* str, or None */
    PyObject *depth, *color, *ir;      /* Frame or None */
} s_frameset_t;

PyTypeObject *sk2py_intrinsics_type;
PyTypeObject *sk2py_stream_type;

/* ---- Intrinsics and StreamInfo: named tuples ---- */

static PyStructSequence_Field s_intrinsics_fields[] = {
    {"fx", "focal length, pixels"},    {"fy", "focal length, pixels"},
    {"cx", "principal point, pixels"}, {"cy", "principal point, pixels"},
    {"k1", "radial distortion"},       {"k2", "radial distortion"},
    {"k3", "radial distortion"},       {"p1", "tangential distortion"},
    {"p2", "tangential distortion"},   {NULL, NULL},
};
static PyStructSequence_Desc s_intrinsics_desc = {
    "sk2.Intrinsics",
    "A camera's pinhole model with Brown-Conrady distortion, in the stream's own pixels.",
    s_intrinsics_fields, 9};

static PyStructSequence_Field s_stream_fields[] = {
    {"kind", "'depth', 'color' or 'ir'"},
    {"format", "pixel format: 'depth_mm16', 'gray16', 'rgb24' or 'bgra32'"},
    {"width", "pixels"},
    {"height", "pixels"},
    {"fps", "nominal frames per second (0: as fast as possible)"},
    {"unit_m", "metres per depth value (0.001 for mm); None if not depth"},
    {"intrinsics", "sk2.Intrinsics, or None when unknown"},
    {"codecs", "tuple of the codecs the server offers (empty for recordings)"},
    {NULL, NULL},
};
static PyStructSequence_Desc s_stream_desc = {
    "sk2.StreamInfo", "What one stream of a device delivers.", s_stream_fields, 8};

PyObject *sk2py_intrinsics(const sk2_intrinsics_t *in, bool is_known)
{
    if (!is_known)
        Py_RETURN_NONE;
    PyObject *t = PyStructSequence_New(sk2py_intrinsics_type);
    if (!t)
        return NULL;
    const double v[9] = {in->fx, in->fy, in->cx, in->cy, in->k1, in->k2, in->k3, in->p1, in->p2};
    for (int i = 0; i < 9; i++) {
        PyObject *f = PyFloat_FromDouble(v[i]);
        if (!f) {
            Py_DECREF(t);
            return NULL;
        }
        PyStructSequence_SET_ITEM(t, i, f);
    }
    return t;
}

static PyObject *s_unit(const sk2_stream_info_t *info)
{
    if (info->kind != SK2_STREAM_DEPTH || !(info->depth_unit_m > 0))
        Py_RETURN_NONE;
    return PyFloat_FromDouble(info->depth_unit_m);
}

PyObject *sk2py_stream_info(const sk2_stream_info_t *info, const char *codecs)
{
    PyObject *t = PyStructSequence_New(sk2py_stream_type);
    if (!t)
        return NULL;
    PyObject *list = PyUnicode_FromString(codecs ? codecs : "");
    PyObject *split = NULL;
    if (list && codecs && *codecs) {
        PyObject *comma = PyUnicode_FromString(",");
        split = comma ? PyUnicode_Split(list, comma, -1) : NULL;
        Py_XDECREF(comma);
    } else if (list) {
        split = PyList_New(0);
    }
    PyObject *tuple = split ? PyList_AsTuple(split) : NULL;
    Py_XDECREF(list);
    Py_XDECREF(split);
    PyObject *items[8] = {
        PyUnicode_FromString(sk2_stream_kind_name(info->kind)),
        PyUnicode_FromString(sk2_pixel_format_name(info->format)),
        PyLong_FromUnsignedLong(info->width),
        PyLong_FromUnsignedLong(info->height),
        PyFloat_FromDouble(info->fps),
        s_unit(info),
        sk2py_intrinsics(&info->intrinsics, info->has_intrinsics),
        tuple,
    };
    bool ok = true;
    for (int i = 0; i < 8; i++) {
        if (!items[i])
            ok = false;
        PyStructSequence_SET_ITEM(t, i, items[i] ? items[i] : Py_NewRef(Py_None));
    }
    if (!ok)
        Py_CLEAR(t);
    return t;
}

sk2_stream_kind_t sk2py_kind_parse(PyObject *name)
{
    const char *s = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    if (!s) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "a stream is a str ('depth', 'color', 'ir'), not %s",
                         Py_TYPE(name)->tp_name);
        return 0;
    }
    if (!strcmp(s, "depth"))
        return SK2_STREAM_DEPTH;
    if (!strcmp(s, "color"))
        return SK2_STREAM_COLOR;
    if (!strcmp(s, "ir"))
        return SK2_STREAM_IR;
    PyErr_Format(PyExc_ValueError, "unknown stream %R: use 'depth', 'color' or 'ir'", name);
    return 0;
}

/* ---- Frame ---- */

PyObject *sk2py_frame_new(sk2_frame_t **frame_p, const char *device_id,
                          const sk2py_frame_meta_t *meta)
{
    s_frame_t *self = PyObject_New(s_frame_t, &sk2py_frame_type);
    if (!self) {
        sk2_frame_destroy(frame_p);
        return NULL;
    }
    self->frame = *frame_p;
    *frame_p = NULL;
    self->meta = *meta;
    self->device_id = device_id ? PyUnicode_FromString(device_id) : Py_NewRef(Py_None);
    if (!self->device_id) {
        Py_DECREF(self);
        return NULL;
    }
    size_t bytes = sk2_pixel_format_bytes(sk2_frame_format(self->frame));
    self->shape[0] = sk2_frame_height(self->frame);
    self->shape[1] = sk2_frame_width(self->frame);
    self->shape[2] = bytes;
    self->strides[0] = (Py_ssize_t)sk2_frame_stride(self->frame);
    self->ndim = bytes == 2 ? 2 : 3;
    self->strides[1] = self->ndim == 2 ? 2 : (Py_ssize_t)bytes;
    self->strides[2] = 1;
    return (PyObject *)self;
}

static void s_frame_dealloc(s_frame_t *self)
{
    sk2_frame_destroy(&self->frame);
    Py_XDECREF(self->device_id);
    PyObject_Free(self);
}

static int s_frame_getbuffer(s_frame_t *self, Py_buffer *view, int flags)
{
    if (flags & PyBUF_WRITABLE) {
        PyErr_SetString(PyExc_BufferError, "sk2 frames are read-only");
        view->obj = NULL;
        return -1;
    }
    view->buf = sk2_frame_data(self->frame);
    view->obj = Py_NewRef(self);
    view->len = (Py_ssize_t)sk2_frame_size(self->frame);
    view->readonly = 1;
    view->itemsize = self->ndim == 2 ? 2 : 1;
    view->format = (flags & PyBUF_FORMAT) ? (self->ndim == 2 ? "H" : "B") : NULL;
    view->ndim = self->ndim;
    view->shape = (flags & PyBUF_ND) == PyBUF_ND ? self->shape : NULL;
    view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? self->strides : NULL;
    view->suboffsets = NULL;
    view->internal = NULL;
    return 0;
}

static PyBufferProcs s_frame_buffer = {(getbufferproc)s_frame_getbuffer, NULL};

PyDoc_STRVAR(s_asarray_doc,
             "asarray() -> numpy.ndarray\n\n"
             "The pixels as a read-only numpy array over the frame's own buffer (no copy):\n"
             "uint16 (height, width) for depth and IR, uint8 (height, width, 3) for RGB and\n"
             "(height, width, 4) for BGRA colour. The array keeps the frame alive; call\n"
             ".copy() on it for a writable array.");

static PyObject *s_frame_asarray(s_frame_t *self, PyObject *unused)
{
    npy_intp dims[3] = {self->shape[0], self->shape[1], self->shape[2]};
    npy_intp strides[3] = {self->strides[0], self->strides[1], self->strides[2]};
    PyObject *array = PyArray_New(
        &PyArray_Type, self->ndim, dims, self->ndim == 2 ? NPY_UINT16 : NPY_UINT8, strides,
        sk2_frame_data(self->frame), 0, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED, NULL);
    if (!array)
        return NULL;
    if (PyArray_SetBaseObject((PyArrayObject *)array, Py_NewRef(self)) < 0) {
        Py_DECREF(array);
        return NULL;
    }
    return array;
}

PyDoc_STRVAR(s_to_points_doc,
             "to_points(intrinsics=None, unit_m=None) -> numpy.ndarray\n\n"
             "The depth frame as points: a float32 array (N, 3) of x, y, z in metres in the\n"
             "depth camera's frame (x right, y down, z forward), one row per pixel with a\n"
             "reading, distortion removed. Uses the stream's intrinsics and depth unit unless\n"
             "given. Raises ValueError for a frame that is not depth, or without intrinsics.");

static bool s_parse_intrinsics(PyObject *obj, sk2_intrinsics_t *out)
{
    PyObject *seq = PySequence_Fast(obj, "intrinsics must be a sequence of 9 floats");
    if (!seq)
        return false;
    bool ok = PySequence_Fast_GET_SIZE(seq) == 9;
    double v[9] = {0};
    for (int i = 0; ok && i < 9; i++) {
        v[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, i));
        if (v[i] == -1.0 && PyErr_Occurred())
            ok = false;
    }
    Py_DECREF(seq);
    if (!ok) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError,
                            "intrinsics must be 9 numbers (fx, fy, cx, cy, k1, k2, k3, p1, p2)");
        return false;
    }
    *out = (sk2_intrinsics_t){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]};
    if (!(out->fx > 0) || !(out->fy > 0)) {
        PyErr_SetString(PyExc_ValueError, "intrinsics: fx and fy must be positive");
        return false;
    }
    return true;
}

static PyObject *s_frame_to_points(s_frame_t *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"intrinsics", "unit_m", NULL};
    PyObject *intrinsics_obj = Py_None, *unit_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:to_points", keywords, &intrinsics_obj,
                                     &unit_obj))
        return NULL;
    if (sk2_frame_format(self->frame) != SK2_PIXEL_DEPTH_MM16)
        return PyErr_Format(PyExc_ValueError, "to_points needs a depth frame, not %s",
                            sk2_pixel_format_name(sk2_frame_format(self->frame)));
    sk2_intrinsics_t intrinsics;
    if (intrinsics_obj != Py_None) {
        if (!s_parse_intrinsics(intrinsics_obj, &intrinsics))
            return NULL;
    } else if (self->meta.has_info && self->meta.info.has_intrinsics) {
        intrinsics = self->meta.info.intrinsics;
    } else {
        return PyErr_Format(PyExc_ValueError,
                            "this frame's stream has no intrinsics: pass intrinsics=");
    }
    double unit_m = 0.001;
    if (unit_obj != Py_None) {
        unit_m = PyFloat_AsDouble(unit_obj);
        if (unit_m == -1.0 && PyErr_Occurred())
            return NULL;
        if (!(unit_m > 0) || unit_m > 1000)
            return PyErr_Format(PyExc_ValueError, "unit_m must be in (0, 1000], not %R", unit_obj);
    } else if (self->meta.has_info && self->meta.info.depth_unit_m > 0) {
        unit_m = self->meta.info.depth_unit_m;
    }
    const uint16_t *depth = sk2_frame_cdata16(self->frame);
    size_t pixels = (size_t)self->shape[0] * (size_t)self->shape[1], valid = 0;
    Py_BEGIN_ALLOW_THREADS for (size_t i = 0; i < pixels; i++) valid += depth[i] != 0;
    Py_END_ALLOW_THREADS npy_intp dims[2] = {(npy_intp)valid, 3};
    PyObject *points = PyArray_SimpleNew(2, dims, NPY_FLOAT32);
    if (!points)
        return NULL;
    float *xyz = PyArray_DATA((PyArrayObject *)points);
    Py_BEGIN_ALLOW_THREADS sk2_frame_to_points(self->frame, &intrinsics, unit_m, xyz, valid);
    Py_END_ALLOW_THREADS return points;
}

static PyObject *s_frame_to_open3d(s_frame_t *self, PyObject *unused)
{
    PyObject *package = PyImport_ImportModule("sk2");
    if (!package)
        return NULL;
    PyObject *result = PyObject_CallMethod(package, "_frame_to_open3d", "O", self);
    Py_DECREF(package);
    return result;
}

static PyObject *s_frame_get_kind(s_frame_t *self, void *closure)
{
    return PyUnicode_FromString(sk2_stream_kind_name(sk2_frame_kind(self->frame)));
}
static PyObject *s_frame_get_format(s_frame_t *self, void *closure)
{
    return PyUnicode_FromString(sk2_pixel_format_name(sk2_frame_format(self->frame)));
}
static PyObject *s_frame_get_width(s_frame_t *self, void *closure)
{
    return PyLong_FromUnsignedLong(sk2_frame_width(self->frame));
}
static PyObject *s_frame_get_height(s_frame_t *self, void *closure)
{
    return PyLong_FromUnsignedLong(sk2_frame_height(self->frame));
}
static PyObject *s_frame_get_seq(s_frame_t *self, void *closure)
{
    return PyLong_FromUnsignedLongLong(sk2_frame_sequence(self->frame));
}
static PyObject *s_frame_get_capture(s_frame_t *self, void *closure)
{
    return PyLong_FromLongLong(sk2_frame_capture_time_us(self->frame));
}
static PyObject *s_frame_get_device_ts(s_frame_t *self, void *closure)
{
    return PyLong_FromLongLong(sk2_frame_device_timestamp_us(self->frame));
}
static PyObject *s_frame_get_device_id(s_frame_t *self, void *closure)
{
    return Py_NewRef(self->device_id);
}
static PyObject *s_frame_get_codec(s_frame_t *self, void *closure)
{
    if (!self->meta.codec)
        Py_RETURN_NONE;
    return PyUnicode_FromString(self->meta.codec);
}
static PyObject *s_frame_get_latency(s_frame_t *self, void *closure)
{
    if (self->meta.latency_us < 0)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(self->meta.latency_us);
}
static PyObject *s_frame_get_gap(s_frame_t *self, void *closure)
{
    return PyLong_FromUnsignedLongLong(self->meta.gap);
}
static PyObject *s_frame_get_unit(s_frame_t *self, void *closure)
{
    if (sk2_frame_kind(self->frame) != SK2_STREAM_DEPTH)
        Py_RETURN_NONE;
    if (self->meta.has_info && self->meta.info.depth_unit_m > 0)
        return PyFloat_FromDouble(self->meta.info.depth_unit_m);
    return PyFloat_FromDouble(0.001); /* DEPTH_MM16 is millimetres unless a stream says */
}
static PyObject *s_frame_get_intrinsics(s_frame_t *self, void *closure)
{
    return sk2py_intrinsics(&self->meta.info.intrinsics,
                            self->meta.has_info && self->meta.info.has_intrinsics);
}
static PyObject *s_frame_get_nbytes(s_frame_t *self, void *closure)
{
    return PyLong_FromSize_t(sk2_frame_size(self->frame));
}

static PyObject *s_frame_repr(s_frame_t *self)
{
    return PyUnicode_FromFormat("<sk2.Frame %s %ux%u %s seq=%llu>",
                                sk2_stream_kind_name(sk2_frame_kind(self->frame)),
                                sk2_frame_width(self->frame), sk2_frame_height(self->frame),
                                sk2_pixel_format_name(sk2_frame_format(self->frame)),
                                (unsigned long long)sk2_frame_sequence(self->frame));
}

static PyGetSetDef s_frame_getset[] = {
    {"kind", (getter)s_frame_get_kind, NULL, "'depth', 'color' or 'ir'", NULL},
    {"format", (getter)s_frame_get_format, NULL, "pixel format name ('depth_mm16', ...)", NULL},
    {"width", (getter)s_frame_get_width, NULL, "pixels", NULL},
    {"height", (getter)s_frame_get_height, NULL, "pixels", NULL},
    {"seq", (getter)s_frame_get_seq, NULL, "the stream's frame counter", NULL},
    {"capture_time_us", (getter)s_frame_get_capture, NULL,
     "wall-clock capture time on the server, microseconds since 1970", NULL},
    {"device_timestamp_us", (getter)s_frame_get_device_ts, NULL,
     "the device's own clock, microseconds", NULL},
    {"device_id", (getter)s_frame_get_device_id, NULL, "the device it came from", NULL},
    {"codec", (getter)s_frame_get_codec, NULL, "the codec it travelled in, or None", NULL},
    {"latency_us", (getter)s_frame_get_latency, NULL,
     "capture to decoded, microseconds, or None when unknown", NULL},
    {"gap", (getter)s_frame_get_gap, NULL, "frames of its stream missed just before it", NULL},
    {"unit_m", (getter)s_frame_get_unit, NULL, "metres per depth value; None if not depth", NULL},
    {"intrinsics", (getter)s_frame_get_intrinsics, NULL,
     "the stream's sk2.Intrinsics, or None when unknown", NULL},
    {"nbytes", (getter)s_frame_get_nbytes, NULL, "bytes of pixel data", NULL},
    {NULL},
};

static PyMethodDef s_frame_methods[] = {
    {"asarray", (PyCFunction)s_frame_asarray, METH_NOARGS, s_asarray_doc},
    {"to_points", (PyCFunction)(void (*)(void))s_frame_to_points, METH_VARARGS | METH_KEYWORDS,
     s_to_points_doc},
    {"to_open3d", (PyCFunction)s_frame_to_open3d, METH_NOARGS,
     "to_open3d() -> open3d.geometry.PointCloud\n\n"
     "The points of to_points() as an open3d point cloud (needs open3d)."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject sk2py_frame_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sk2.Frame",
    .tp_basicsize = sizeof(s_frame_t),
    .tp_dealloc = (destructor)s_frame_dealloc,
    .tp_repr = (reprfunc)s_frame_repr,
    .tp_as_buffer = &s_frame_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One decoded image of one stream, with its metadata.\n\n"
              "Made by Client.wait_for_frames and Recording; not constructed directly.\n"
              "asarray() is a zero-copy, read-only numpy view of the pixels.",
    .tp_methods = s_frame_methods,
    .tp_getset = s_frame_getset,
};

/* ---- FrameSet ---- */

PyObject *sk2py_frameset_new(const char *device_id, PyObject *depth, PyObject *color, PyObject *ir)
{
    s_frameset_t *self = PyObject_New(s_frameset_t, &sk2py_frameset_type);
    if (!self) {
        Py_XDECREF(depth);
        Py_XDECREF(color);
        Py_XDECREF(ir);
        return NULL;
    }
    self->depth = depth ? depth : Py_NewRef(Py_None);
    self->color = color ? color : Py_NewRef(Py_None);
    self->ir = ir ? ir : Py_NewRef(Py_None);
    self->device_id = device_id ? PyUnicode_FromString(device_id) : Py_NewRef(Py_None);
    if (!self->device_id) {
        self->device_id = Py_NewRef(Py_None);
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* FrameSet(frames): a set built in Python (recordings), from Frames of one device. */
static PyObject *s_frameset_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"frames", NULL};
    PyObject *frames;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:FrameSet", keywords, &frames))
        return NULL;
    PyObject *seq = PySequence_Fast(frames, "FrameSet takes a sequence of sk2.Frame");
    if (!seq)
        return NULL;
    PyObject *slot[3] = {NULL, NULL, NULL}, *device = NULL;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyObject_TypeCheck(item, &sk2py_frame_type)) {
            PyErr_Format(PyExc_TypeError, "FrameSet takes sk2.Frame objects, not %s",
                         Py_TYPE(item)->tp_name);
            goto fail;
        }
        s_frame_t *f = (s_frame_t *)item;
        int k = (int)sk2_frame_kind(f->frame) - 1;
        if (k < 0 || k > 2 || slot[k]) {
            PyErr_Format(PyExc_ValueError, "a FrameSet holds at most one %s frame",
                         sk2_stream_kind_name(sk2_frame_kind(f->frame)));
            goto fail;
        }
        if (device && PyObject_RichCompareBool(device, f->device_id, Py_EQ) != 1) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "a FrameSet holds frames of one device");
            goto fail;
        }
        device = f->device_id;
        slot[k] = item;
    }
    s_frameset_t *self = (s_frameset_t *)type->tp_alloc(type, 0);
    if (!self)
        goto fail;
    self->depth = Py_NewRef(slot[0] ? slot[0] : Py_None);
    self->color = Py_NewRef(slot[1] ? slot[1] : Py_None);
    self->ir = Py_NewRef(slot[2] ? slot[2] : Py_None);
    self->device_id = Py_NewRef(device ? device : Py_None);
    Py_DECREF(seq);
    return (PyObject *)self;
fail:
    Py_DECREF(seq);
    return NULL;
}

static void s_frameset_dealloc(s_frameset_t *self)
{
    Py_XDECREF(self->depth);
    Py_XDECREF(self->color);
    Py_XDECREF(self->ir);
    Py_XDECREF(self->device_id);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The frames that are there, depth first. */
static PyObject *s_frameset_frames(s_frameset_t *self, void *closure)
{
    PyObject *list = PyList_New(0);
    PyObject *all[3] = {self->depth, self->color, self->ir};
    for (int i = 0; list && i < 3; i++)
        if (all[i] != Py_None && PyList_Append(list, all[i]) < 0)
            Py_CLEAR(list);
    PyObject *tuple = list ? PyList_AsTuple(list) : NULL;
    Py_XDECREF(list);
    return tuple;
}

static PyObject *s_frameset_iter(s_frameset_t *self)
{
    PyObject *frames = s_frameset_frames(self, NULL);
    PyObject *it = frames ? PyObject_GetIter(frames) : NULL;
    Py_XDECREF(frames);
    return it;
}

static Py_ssize_t s_frameset_len(s_frameset_t *self)
{
    return (self->depth != Py_None) + (self->color != Py_None) + (self->ir != Py_None);
}

static PyObject *s_frameset_getitem(s_frameset_t *self, PyObject *key)
{
    sk2_stream_kind_t kind = sk2py_kind_parse(key);
    if (!kind) {
        if (PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyErr_Clear();
            PyErr_SetObject(PyExc_KeyError, key);
        }
        return NULL;
    }
    PyObject *f = kind == SK2_STREAM_DEPTH   ? self->depth
                  : kind == SK2_STREAM_COLOR ? self->color
                                             : self->ir;
    if (f == Py_None) {
        PyErr_SetObject(PyExc_KeyError, key);
        return NULL;
    }
    return Py_NewRef(f);
}

static PyObject *s_frameset_capture(s_frameset_t *self, void *closure)
{
    PyObject *all[3] = {self->depth, self->color, self->ir};
    for (int i = 0; i < 3; i++)
        if (all[i] != Py_None)
            return PyLong_FromLongLong(sk2_frame_capture_time_us(((s_frame_t *)all[i])->frame));
    Py_RETURN_NONE;
}

static PyObject *s_frameset_repr(s_frameset_t *self)
{
    return PyUnicode_FromFormat("<sk2.FrameSet device=%S depth=%S color=%S ir=%S>", self->device_id,
                                self->depth, self->color, self->ir);
}

static PyMemberDef s_frameset_members[] = {
    {"depth", T_OBJECT, offsetof(s_frameset_t, depth), READONLY, "the depth Frame, or None"},
    {"color", T_OBJECT, offsetof(s_frameset_t, color), READONLY, "the colour Frame, or None"},
    {"ir", T_OBJECT, offsetof(s_frameset_t, ir), READONLY, "the IR Frame, or None"},
    {"device_id", T_OBJECT, offsetof(s_frameset_t, device_id), READONLY, "the device"},
    {NULL},
};

static PyGetSetDef s_frameset_getset[] = {
    {"frames", (getter)s_frameset_frames, NULL, "tuple of the frames present", NULL},
    {"capture_time_us", (getter)s_frameset_capture, NULL,
     "capture time of its frames, microseconds since 1970", NULL},
    {NULL},
};

static PyMappingMethods s_frameset_mapping = {(lenfunc)s_frameset_len,
                                              (binaryfunc)s_frameset_getitem, NULL};

PyTypeObject sk2py_frameset_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sk2.FrameSet",
    .tp_basicsize = sizeof(s_frameset_t),
    .tp_dealloc = (destructor)s_frameset_dealloc,
    .tp_repr = (reprfunc)s_frameset_repr,
    .tp_as_mapping = &s_frameset_mapping,
    .tp_iter = (getiterfunc)s_frameset_iter,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "FrameSet(frames)\n\nThe frames of one device captured at one instant: .depth,\n"
              ".color and .ir (each an sk2.Frame or None), fs['depth'], len(fs), iteration.",
    .tp_members = s_frameset_members,
    .tp_getset = s_frameset_getset,
    .tp_new = s_frameset_tp_new,
};

static int s_import_numpy(void)
{
    import_array1(-1);
    return 0;
}

int sk2py_frame_init(PyObject *module)
{
    if (s_import_numpy() < 0)
        return -1;
    sk2py_intrinsics_type = PyStructSequence_NewType(&s_intrinsics_desc);
    sk2py_stream_type = PyStructSequence_NewType(&s_stream_desc);
    if (!sk2py_intrinsics_type || !sk2py_stream_type || PyType_Ready(&sk2py_frame_type) < 0 ||
        PyType_Ready(&sk2py_frameset_type) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "Intrinsics", (PyObject *)sk2py_intrinsics_type) < 0 ||
        PyModule_AddObjectRef(module, "StreamInfo", (PyObject *)sk2py_stream_type) < 0 ||
        PyModule_AddObjectRef(module, "Frame", (PyObject *)&sk2py_frame_type) < 0 ||
        PyModule_AddObjectRef(module, "FrameSet", (PyObject *)&sk2py_frameset_type) < 0)
        return -1;
    return 0;
}
