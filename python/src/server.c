/* sk2._sk2.Server: an sk2 server in the Python process, for tests and demonstrations.
 *
 * The server's own threads do the work (capture, encoding, publishing); Python only sets it up
 * and reads its counters. Its calls block while the server's actor answers (bind, adding a
 * device opens it), so they run without the GIL. server.h wants every call from the thread
 * that made the server: the binding checks that and raises RuntimeError otherwise. */
#include "sk2py.h"

#include <string.h>

typedef struct {
    PyObject_HEAD sk2_server_t *server;
    unsigned long thread; /* the thread that made it */
} s_server_t;

static bool s_usable(s_server_t *self)
{
    if (!self->server) {
        sk2py_raise(SK2_ESTATE, "the server is closed");
        return false;
    }
    if (PyThread_get_thread_ident() != self->thread) {
        PyErr_SetString(PyExc_RuntimeError,
                        "an sk2.Server is used from the thread that made it only");
        return false;
    }
    return true;
}

static int s_server_init(s_server_t *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"name", NULL};
    const char *name = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|z:Server", keywords, &name))
        return -1;
    if (self->server) {
        PyErr_SetString(PyExc_RuntimeError, "sk2.Server.__init__ called twice");
        return -1;
    }
    Py_BEGIN_ALLOW_THREADS self->server = sk2_server_new(name);
    Py_END_ALLOW_THREADS if (!self->server)
    {
        PyErr_SetString(PyExc_ValueError,
                        "cannot make a server with that name (empty, over 255 bytes or not UTF-8)");
        return -1;
    }
    self->thread = PyThread_get_thread_ident();
    return 0;
}

static void s_server_dealloc(s_server_t *self)
{
    if (self->server) {
        Py_BEGIN_ALLOW_THREADS sk2_server_destroy(&self->server);
        Py_END_ALLOW_THREADS
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *s_server_bind(s_server_t *self, PyObject *args)
{
    const char *address;
    int port;
    if (!PyArg_ParseTuple(args, "si:bind", &address, &port))
        return NULL;
    if (port < 0 || port > 65535)
        return PyErr_Format(PyExc_ValueError, "port must be 0..65535, not %d", port);
    if (!s_usable(self))
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = sk2_server_bind(self->server, address, (uint16_t)port);
    Py_END_ALLOW_THREADS if (rc != 0) return sk2py_raise_why(rc, "bind", address);
    Py_RETURN_NONE;
}

static PyObject *s_server_set_announce(s_server_t *self, PyObject *args)
{
    int on;
    if (!PyArg_ParseTuple(args, "p:set_announce", &on) || !s_usable(self))
        return NULL;
    int rc = sk2_server_set_announce(self->server, on);
    if (rc != 0)
        return sk2py_raise(rc, "announce");
    Py_RETURN_NONE;
}

/* Adds a device made by the caller's settings; returns its id. */
static PyObject *s_add(s_server_t *self, sk2_device_t **device_p)
{
    char id[SK2_DEVICE_ID_MAX + 1];
    int rc = sk2_device_open(*device_p);
    if (rc != 0) {
        sk2_device_destroy(device_p);
        return sk2py_raise(rc, "open device");
    }
    snprintf(id, sizeof id, "%s", sk2_device_id(*device_p));
    Py_BEGIN_ALLOW_THREADS rc = sk2_server_add_device(self->server, device_p);
    Py_END_ALLOW_THREADS if (rc != 0) return sk2py_raise(rc, "add device");
    return PyUnicode_FromString(id);
}

static PyObject *s_server_add_mock(s_server_t *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"fps", "color_size", "id", NULL};
    double fps = 30;
    PyObject *color_size = Py_None;
    const char *id = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|dOz:add_mock", keywords, &fps, &color_size,
                                     &id) ||
        !s_usable(self))
        return NULL;
    unsigned int w = 0, h = 0;
    if (color_size != Py_None &&
        (!PyTuple_Check(color_size) || !PyArg_ParseTuple(color_size, "II", &w, &h))) {
        PyErr_Clear();
        return PyErr_Format(PyExc_TypeError, "color_size is a tuple (width, height), not %R",
                            color_size);
    }
    sk2_device_t *device = sk2_device_new("mock");
    if (!device)
        return PyErr_NoMemory();
    int rc = sk2_device_set_fps(device, fps);
    const char *what = "fps (0..1000; 0 is as fast as possible)";
    if (rc == 0 && color_size != Py_None) {
        rc = sk2_device_set_color_size(device, w, h);
        what = "color_size (even sizes from 16x16 to 1920x1080)";
    }
    if (rc == 0 && id) {
        rc = sk2_device_set_id(device, id);
        what = "id (1..128 printable ASCII characters, no spaces)";
    }
    if (rc != 0) {
        sk2_device_destroy(&device);
        return PyErr_Format(PyExc_ValueError, "add_mock: bad %s", what);
    }
    return s_add(self, &device);
}

static PyObject *s_server_add_replay(s_server_t *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"path", "device", "rate", "loop", NULL};
    PyObject *path_obj;
    Py_ssize_t recorded = 0;
    double rate = 1;
    int loop = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|ndp:add_replay", keywords,
                                     PyUnicode_FSConverter, &path_obj, &recorded, &rate, &loop))
        return NULL;
    PyObject *result = NULL;
    sk2_device_t *device = NULL;
    if (!s_usable(self))
        goto out;
    if (recorded < 0) {
        PyErr_SetString(PyExc_ValueError, "device must not be negative");
        goto out;
    }
    device = sk2_device_new("replay");
    if (!device) {
        PyErr_NoMemory();
        goto out;
    }
    int rc = sk2_device_set_replay_source(device, PyBytes_AS_STRING(path_obj), (size_t)recorded);
    if (rc == 0)
        rc = sk2_device_set_replay_rate(device, rate);
    if (rc == 0)
        rc = sk2_device_set_replay_loop(device, loop);
    if (rc != 0) {
        sk2_device_destroy(&device);
        sk2py_raise(rc, "add_replay (rate 0..1000, a path)");
        goto out;
    }
    result = s_add(self, &device);
out:
    Py_DECREF(path_obj);
    return result;
}

static PyObject *s_server_remove_device(s_server_t *self, PyObject *args)
{
    const char *id;
    if (!PyArg_ParseTuple(args, "s:remove_device", &id) || !s_usable(self))
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = sk2_server_remove_device(self->server, id);
    Py_END_ALLOW_THREADS if (rc != 0) return sk2py_raise_why(rc, "remove_device", id);
    Py_RETURN_NONE;
}

static PyObject *s_server_stats(s_server_t *self, PyObject *unused)
{
    if (!s_usable(self))
        return NULL;
    sk2_server_stats_t st;
    int rc = sk2_server_stats(self->server, &st);
    if (rc != 0)
        return sk2py_raise(rc, "stats");
    return Py_BuildValue("{s:I,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "devices", st.devices,
                         "frames_produced", st.frames_produced, "frames_encoded", st.frames_encoded,
                         "frames_published", st.frames_published, "frames_idle", st.frames_idle,
                         "frames_dropped", st.frames_dropped, "encodings", st.encodings,
                         "bytes_raw", st.bytes_raw, "bytes_published", st.bytes_published,
                         "encode_time_us", st.encode_time_us, "requests", st.requests,
                         "bad_requests", st.bad_requests);
}

static PyObject *s_server_announce_state(s_server_t *self, PyObject *unused)
{
    if (!s_usable(self))
        return NULL;
    static const char *names[] = {"off", "pending", "active", "failed"};
    sk2_announce_state_t state = sk2_server_announce_state(self->server);
    const char *name = sk2_server_announced_name(self->server);
    return Py_BuildValue("(sz)", (unsigned)state < 4 ? names[state] : "unknown", name);
}

static PyObject *s_server_close(s_server_t *self, PyObject *unused)
{
    if (self->server) {
        if (!s_usable(self))
            return NULL;
        Py_BEGIN_ALLOW_THREADS sk2_server_destroy(&self->server);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static PyObject *s_server_get_endpoint(s_server_t *self, void *closure)
{
    const char *e = self->server ? sk2_server_endpoint(self->server) : NULL;
    if (!e)
        Py_RETURN_NONE;
    return PyUnicode_FromString(e);
}

static PyObject *s_server_get_port(s_server_t *self, void *closure)
{
    return PyLong_FromLong(self->server ? sk2_server_port(self->server) : 0);
}

static PyObject *s_server_get_name(s_server_t *self, void *closure)
{
    if (!self->server)
        Py_RETURN_NONE;
    const char *name = sk2_server_name(self->server);
    return PyUnicode_DecodeUTF8(name, strlen(name), "replace");
}

static PyObject *s_server_get_closed(s_server_t *self, void *closure)
{
    return PyBool_FromLong(self->server == NULL);
}

static PyGetSetDef s_server_getset[] = {
    {"endpoint", (getter)s_server_get_endpoint, NULL,
     "the control endpoint clients connect to (None before bind)", NULL},
    {"port", (getter)s_server_get_port, NULL, "the bound control port (0 before bind)", NULL},
    {"name", (getter)s_server_get_name, NULL, "the server's name", NULL},
    {"closed", (getter)s_server_get_closed, NULL, "whether close() was called", NULL},
    {NULL},
};

static PyMethodDef s_server_methods[] = {
    {"bind", (PyCFunction)s_server_bind, METH_VARARGS, "bind(address, port)"},
    {"_set_announce", (PyCFunction)s_server_set_announce, METH_VARARGS, "_set_announce(on)"},
    {"add_mock", (PyCFunction)(void (*)(void))s_server_add_mock, METH_VARARGS | METH_KEYWORDS,
     "add_mock(fps=30, color_size=None, id=None) -> str\n\nServes one more mock camera; "
     "returns its id."},
    {"add_replay", (PyCFunction)(void (*)(void))s_server_add_replay, METH_VARARGS | METH_KEYWORDS,
     "add_replay(path, device=0, rate=1, loop=False) -> str\n\nServes a recorded device of a "
     "recording or TUM folder; returns its id."},
    {"remove_device", (PyCFunction)s_server_remove_device, METH_VARARGS,
     "remove_device(id)\n\nStops serving a device."},
    {"stats", (PyCFunction)s_server_stats, METH_NOARGS, "stats() -> dict of counters"},
    {"_announce_state", (PyCFunction)s_server_announce_state, METH_NOARGS,
     "_announce_state() -> (state, announced name)"},
    {"close", (PyCFunction)s_server_close, METH_NOARGS,
     "close()\n\nStops every device and closes every socket."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject s_server_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sk2._sk2.Server",
    .tp_basicsize = sizeof(s_server_t),
    .tp_dealloc = (destructor)s_server_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The C core of sk2.Server.",
    .tp_methods = s_server_methods,
    .tp_getset = s_server_getset,
    .tp_init = (initproc)s_server_init,
    .tp_new = PyType_GenericNew,
};

int sk2py_server_init(PyObject *module)
{
    if (PyType_Ready(&s_server_type) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "Server", (PyObject *)&s_server_type);
}
