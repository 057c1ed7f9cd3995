/* sk2._sk2.Recording: reads sk2 recordings and TUM RGB-D folders frame by frame.
 *
 * Reading and decoding a frame runs without the GIL. Frames come out as sk2.Frame objects
 * carrying their recorded stream's description (depth unit, intrinsics), like the client's;
 * grouping them into frame sets is done in Python (sk2.Recording.framesets). */
#include "sk2py.h"

#include <string.h>

typedef struct {
    PyObject_HEAD sk2_recording_reader_t *reader;
    bool is_busy; /* a read runs without the GIL */
} s_recording_t;

static bool s_usable(s_recording_t *self)
{
    if (self->is_busy) {
        PyErr_SetString(PyExc_RuntimeError, "this sk2.Recording is in use by another thread");
        return false;
    }
    if (!self->reader) {
        sk2py_raise(SK2_ESTATE, "the recording is closed");
        return false;
    }
    return true;
}

static int s_recording_init(s_recording_t *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"path", NULL};
    PyObject *path;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&:Recording", keywords, PyUnicode_FSConverter,
                                     &path))
        return -1;
    int result = -1;
    if (self->reader) {
        PyErr_SetString(PyExc_RuntimeError, "sk2.Recording.__init__ called twice");
        goto out;
    }
    self->reader = sk2_recording_reader_new();
    if (!self->reader) {
        PyErr_NoMemory();
        goto out;
    }
    int rc;
    const char *text = PyBytes_AS_STRING(path);
    Py_BEGIN_ALLOW_THREADS rc = sk2_recording_reader_open(self->reader, text);
    Py_END_ALLOW_THREADS if (rc != 0)
    {
        char what[512];
        snprintf(what, sizeof what, "open %s", text);
        sk2py_raise_why(rc, what, sk2_recording_reader_why(self->reader));
        sk2_recording_reader_destroy(&self->reader);
        goto out;
    }
    result = 0;
out:
    Py_DECREF(path);
    return result;
}

static void s_recording_dealloc(s_recording_t *self)
{
    sk2_recording_reader_destroy(&self->reader);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static bool s_index(s_recording_t *self, PyObject *obj, size_t *index)
{
    Py_ssize_t i = PyNumber_AsSsize_t(obj, PyExc_IndexError);
    if (i == -1 && PyErr_Occurred())
        return false;
    size_t count = sk2_recording_reader_frame_count(self->reader);
    if (i < 0)
        i += (Py_ssize_t)count;
    if (i < 0 || (size_t)i >= count) {
        PyErr_Format(PyExc_IndexError, "frame index %R out of range (%zu frames)", obj, count);
        return false;
    }
    *index = (size_t)i;
    return true;
}

static PyObject *s_recording_read(s_recording_t *self, PyObject *arg)
{
    size_t index;
    if (!s_usable(self) || !s_index(self, arg, &index))
        return NULL;
    sk2_recording_frame_info_t fi;
    if (sk2_recording_reader_frame_info(self->reader, index, &fi) != 0)
        return sk2py_raise(SK2_ENOTFOUND, "read");
    sk2py_frame_meta_t meta = {.codec = fi.codec, .latency_us = -1};
    for (size_t s = 0; s < sk2_recording_reader_stream_count(self->reader, fi.device); s++) {
        sk2_stream_info_t info;
        if (sk2_recording_reader_stream_info(self->reader, fi.device, s, &info) == 0 &&
            info.kind == fi.kind) {
            meta.info = info;
            meta.has_info = true;
        }
    }
    sk2_frame_t *frame = NULL;
    int rc;
    self->is_busy = true;
    Py_BEGIN_ALLOW_THREADS rc = sk2_recording_reader_read_frame(self->reader, index, &frame);
    Py_END_ALLOW_THREADS self->is_busy = false;
    if (rc != 0) {
        char what[64];
        snprintf(what, sizeof what, "read frame %zu", index);
        return sk2py_raise_why(rc, what, sk2_recording_reader_why(self->reader));
    }
    return sk2py_frame_new(&frame, sk2_recording_reader_device_id(self->reader, fi.device), &meta);
}

/* (device index, kind, capture_time_us) of a frame, without reading it. */
static PyObject *s_recording_frame_info(s_recording_t *self, PyObject *arg)
{
    size_t index;
    if (!s_usable(self) || !s_index(self, arg, &index))
        return NULL;
    sk2_recording_frame_info_t fi;
    if (sk2_recording_reader_frame_info(self->reader, index, &fi) != 0)
        return sk2py_raise(SK2_ENOTFOUND, "frame_info");
    return Py_BuildValue("(nsLKsII)", (Py_ssize_t)fi.device, sk2_stream_kind_name(fi.kind),
                         (long long)fi.capture_time_us, (unsigned long long)fi.sequence,
                         fi.codec ? fi.codec : "", fi.width, fi.height);
}

static PyObject *s_recording_close(s_recording_t *self, PyObject *unused)
{
    if (self->is_busy) {
        PyErr_SetString(PyExc_RuntimeError, "cannot close a Recording another thread reads");
        return NULL;
    }
    sk2_recording_reader_destroy(&self->reader);
    Py_RETURN_NONE;
}

static Py_ssize_t s_recording_len(s_recording_t *self)
{
    if (!s_usable(self))
        return -1;
    return (Py_ssize_t)sk2_recording_reader_frame_count(self->reader);
}

static PyObject *s_recording_get_devices(s_recording_t *self, void *closure)
{
    if (!s_usable(self))
        return NULL;
    PyObject *list = PyList_New(0);
    for (size_t d = 0; list && d < sk2_recording_reader_device_count(self->reader); d++) {
        PyObject *streams = PyDict_New();
        for (size_t s = 0; streams && s < sk2_recording_reader_stream_count(self->reader, d); s++) {
            sk2_stream_info_t info;
            if (sk2_recording_reader_stream_info(self->reader, d, s, &info) != 0)
                continue;
            PyObject *o = sk2py_stream_info(&info, NULL);
            if (!o || PyDict_SetItemString(streams, sk2_stream_kind_name(info.kind), o) < 0)
                Py_CLEAR(streams);
            Py_XDECREF(o);
        }
        const char *serial = sk2_recording_reader_device_serial(self->reader, d);
        PyObject *item =
            streams ? Py_BuildValue("(szzN)", sk2_recording_reader_device_id(self->reader, d),
                                    serial && *serial ? serial : NULL,
                                    sk2_recording_reader_device_backend(self->reader, d), streams)
                    : NULL;
        if (!item || PyList_Append(list, item) < 0)
            Py_CLEAR(list);
        Py_XDECREF(item);
    }
    return list;
}

static PyObject *s_recording_get_format(s_recording_t *self, void *closure)
{
    if (!s_usable(self))
        return NULL;
    return PyUnicode_FromString(sk2_recording_reader_format(self->reader));
}

static PyObject *s_recording_get_why(s_recording_t *self, void *closure)
{
    if (!s_usable(self))
        return NULL;
    const char *why = sk2_recording_reader_why(self->reader);
    return PyUnicode_DecodeUTF8(why, strlen(why), "replace");
}

static PyObject *s_recording_get_closed(s_recording_t *self, void *closure)
{
    return PyBool_FromLong(self->reader == NULL);
}

static PyGetSetDef s_recording_getset[] = {
    {"_devices", (getter)s_recording_get_devices, NULL, "list of (id, serial, backend, streams)",
     NULL},
    {"format", (getter)s_recording_get_format, NULL, "'sk2' or 'tum'", NULL},
    {"note", (getter)s_recording_get_why, NULL, "a note on damage found when opening ('' if none)",
     NULL},
    {"closed", (getter)s_recording_get_closed, NULL, "whether close() was called", NULL},
    {NULL},
};

static PyMethodDef s_recording_methods[] = {
    {"read", (PyCFunction)s_recording_read, METH_O,
     "read(index) -> Frame\n\nReads and decodes frame `index` (file order)."},
    {"_frame_info", (PyCFunction)s_recording_frame_info, METH_O,
     "_frame_info(index) -> (device, kind, capture_time_us, seq, codec, width, height)"},
    {"close", (PyCFunction)s_recording_close, METH_NOARGS, "close()"},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods s_recording_sequence = {.sq_length = (lenfunc)s_recording_len};

static PyTypeObject s_recording_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sk2._sk2.Recording",
    .tp_basicsize = sizeof(s_recording_t),
    .tp_dealloc = (destructor)s_recording_dealloc,
    .tp_as_sequence = &s_recording_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The C core of sk2.Recording.",
    .tp_methods = s_recording_methods,
    .tp_getset = s_recording_getset,
    .tp_init = (initproc)s_recording_init,
    .tp_new = PyType_GenericNew,
};

int sk2py_recording_init(PyObject *module)
{
    if (PyType_Ready(&s_recording_type) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "Recording", (PyObject *)&s_recording_type);
}
