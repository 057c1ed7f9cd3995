/* The module sk2._sk2: its exceptions, discovery (browse) and the mock scene's helpers, and the
 * registration of every type.
 *
 * Errors: every SK2_E* code of include/sk2/error.h becomes a subclass of sk2.Error named for
 * what it means (SK2_ETIMEDOUT -> sk2.Timeout), also deriving from the built-in exception a
 * Python user would catch for it (TimeoutError, ValueError, LookupError, ...). The classes are
 * made from SK2_ERROR_MAP itself, so a code appended to error.h later gets a class too (named
 * after the code, "ENEWTHING") without an edit here. */
#include "sk2py.h"

#include <string.h>

/* Python names and extra built-in bases for the codes known when this was written. */
typedef struct {
    int code;
    const char *name;
    const char *doc;
} s_error_name_t;

static const s_error_name_t s_error_names[] = {
    {SK2_EINVAL, "InvalidArgument", "The library refused an argument (SK2_EINVAL)."},
    {SK2_ENOMEM, "OutOfMemory", "Memory ran out (SK2_ENOMEM)."},
    {SK2_EPROTO, "ProtocolError", "The peer broke the protocol (SK2_EPROTO)."},
    {SK2_ELIMIT, "LimitExceeded", "An input is over one of sk2's limits (SK2_ELIMIT)."},
    {SK2_ETIMEDOUT, "Timeout", "Nothing arrived in time (SK2_ETIMEDOUT)."},
    {SK2_ENOTFOUND, "NotFound", "No such device, stream, file or server (SK2_ENOTFOUND)."},
    {SK2_EBIND, "BindError", "An endpoint could not be bound (SK2_EBIND)."},
    {SK2_ECONNECT, "ConnectError", "An endpoint could not be reached (SK2_ECONNECT)."},
    {SK2_ESTATE, "StateError", "Not allowed in the object's current state (SK2_ESTATE)."},
    {SK2_ECORRUPT, "CorruptError", "Corrupt or truncated data (SK2_ECORRUPT)."},
    {SK2_EUNSUPPORTED, "Unsupported", "Not supported by this build or peer (SK2_EUNSUPPORTED)."},
    {SK2_ENOSPC, "NoSpace", "An output buffer was too small (SK2_ENOSPC)."},
    {SK2_EDEVICE, "DeviceError", "A device failed (SK2_EDEVICE)."},
    {SK2_EAGAIN, "Again", "Busy for now; try again later (SK2_EAGAIN)."},
    {SK2_EINTR, "Interrupted", "Interrupted by a signal (SK2_EINTR)."},
    {SK2_ESYS, "SystemCallError", "A system call failed (SK2_ESYS)."},
    {SK2_ESERVER, "ServerError", "The server answered with an error (SK2_ESERVER)."},
    {SK2_EEXIST, "AlreadyExists", "Already exists (SK2_EEXIST)."},
    {SK2_ELOST, "Lost", "The peer was lost (SK2_ELOST)."},
    {SK2_EAUTH, "AuthError", "Authentication failed (SK2_EAUTH)."},
    {SK2_EKEYCHANGED, "KeyChanged",
     "The server's key differs from the pinned one (SK2_EKEYCHANGED)."},
    {SK2_EINSECURE, "Insecure", "Would be reachable without a token (SK2_EINSECURE)."},
};

/* Every code of error.h, in order, from the one list. */
static const int s_codes[] = {
#define S_CODE(name, num, msg) (num),
    SK2_ERROR_MAP(S_CODE)
#undef S_CODE
};
#define S_CODE_COUNT (sizeof s_codes / sizeof s_codes[0])

static PyObject *s_error_base;                  /* sk2.Error */
static PyObject *s_error_classes[S_CODE_COUNT]; /* one per code, same order as s_codes */

static PyObject *s_error_class(int code)
{
    for (size_t i = 0; i < S_CODE_COUNT; i++)
        if (s_codes[i] == code)
            return s_error_classes[i];
    return s_error_base;
}

PyObject *sk2py_raise_why(int code, const char *what, const char *why)
{
    PyObject *cls = s_error_class(code);
    if (why && *why)
        PyErr_Format(cls, "%s: %s (%s)", what, sk2_strerror(code), why);
    else
        PyErr_Format(cls, "%s: %s", what, sk2_strerror(code));
    return NULL;
}

PyObject *sk2py_raise(int code, const char *what)
{
    return sk2py_raise_why(code, what, NULL);
}

/* The built-in exception a Python user would catch for a code, besides sk2.Error. */
static PyObject *s_builtin_base(int code)
{
    switch (code) {
    case SK2_EINVAL:
        return PyExc_ValueError;
    case SK2_ENOMEM:
        return PyExc_MemoryError;
    case SK2_ETIMEDOUT:
        return PyExc_TimeoutError;
    case SK2_ENOTFOUND:
        return PyExc_LookupError;
    case SK2_ECONNECT:
        return PyExc_ConnectionError;
    case SK2_EINTR:
        return PyExc_InterruptedError;
    default:
        return NULL;
    }
}

static int s_errors_init(PyObject *module)
{
    s_error_base = PyErr_NewExceptionWithDoc(
        "sk2.Error", "Base class of every error sk2 reports; .code is the SK2_E* number.",
        PyExc_Exception, NULL);
    if (!s_error_base || PyModule_AddObjectRef(module, "Error", s_error_base) < 0)
        return -1;
    for (size_t i = 0; i < S_CODE_COUNT; i++) {
        int code = s_codes[i];
        const char *name = NULL, *doc = NULL;
        for (size_t j = 0; j < sizeof s_error_names / sizeof s_error_names[0]; j++)
            if (s_error_names[j].code == code) {
                name = s_error_names[j].name;
                doc = s_error_names[j].doc;
            }
        const char *symbol = sk2_error_name(code); /* "SK2_ETIMEDOUT" */
        if (!name)
            name = symbol + 4;
        char qualified[96];
        snprintf(qualified, sizeof qualified, "sk2.%s", name);
        PyObject *builtin = s_builtin_base(code);
        PyObject *bases =
            builtin ? PyTuple_Pack(2, s_error_base, builtin) : PyTuple_Pack(1, s_error_base);
        PyObject *dict = Py_BuildValue("{s:i,s:s}", "code", code, "name", symbol);
        PyObject *cls =
            bases && dict ? PyErr_NewExceptionWithDoc(qualified, doc, bases, dict) : NULL;
        Py_XDECREF(bases);
        Py_XDECREF(dict);
        if (!cls || PyModule_AddObjectRef(module, name, cls) < 0) {
            Py_XDECREF(cls);
            return -1;
        }
        s_error_classes[i] = cls; /* the module and this table share the reference */
        Py_DECREF(cls);
    }
    return 0;
}

/* ---- browse ---- */

PyDoc_STRVAR(s_browse_doc, "_browse(timeout_ms) -> list of (name, endpoint, key)\n\n"
                           "Browses for servers until the mDNS daemon has told all it knows "
                           "or timeout_ms passes.");

static PyObject *s_browse(PyObject *module, PyObject *args)
{
    int timeout_ms;
    if (!PyArg_ParseTuple(args, "i:_browse", &timeout_ms))
        return NULL;
    if (timeout_ms < 0)
        return PyErr_Format(PyExc_ValueError, "timeout must not be negative");
    sk2_browser_t *browser = sk2_browser_new();
    if (!browser)
        return PyErr_NoMemory();
    PyObject *result = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = sk2_browser_start(browser);
    Py_END_ALLOW_THREADS if (rc != 0)
    {
        sk2py_raise_why(rc, "browse", sk2_browser_error(browser));
        goto out;
    }
    int64_t deadline = sk2_clock_mono_us() + (int64_t)timeout_ms * 1000;
    while (!sk2_browser_is_settled(browser)) {
        int64_t left_ms = (deadline - sk2_clock_mono_us()) / 1000;
        if (left_ms <= 0)
            break;
        int slice = left_ms < SK2PY_SLICE_MS ? (int)left_ms : SK2PY_SLICE_MS;
        Py_BEGIN_ALLOW_THREADS rc = sk2_browser_dispatch(browser, slice);
        Py_END_ALLOW_THREADS if (PyErr_CheckSignals() < 0) goto out;
        if (rc < 0 && rc != SK2_EINTR) {
            sk2py_raise_why(rc, "browse", sk2_browser_error(browser));
            goto out;
        }
    }
    result = PyList_New(0);
    for (size_t i = 0; result && i < sk2_browser_server_count(browser); i++) {
        const char *key = sk2_browser_server_key(browser, i);
        PyObject *item = Py_BuildValue("(ssz)", sk2_browser_server_name(browser, i),
                                       sk2_browser_server_endpoint(browser, i), key);
        if (!item || PyList_Append(result, item) < 0)
            Py_CLEAR(result);
        Py_XDECREF(item);
    }
out:
    sk2_browser_destroy(&browser);
    return result;
}

/* ---- the mock scene, to check frames exactly ---- */

static PyObject *s_mock_dx(PyObject *module, PyObject *args)
{
    long long time_us;
    if (!PyArg_ParseTuple(args, "L:mock_dx", &time_us))
        return NULL;
    return PyLong_FromLong(sk2_mock_dx(time_us));
}

static PyObject *s_mock_render(PyObject *module, PyObject *args)
{
    int dx;
    if (!PyArg_ParseTuple(args, "i:mock_render", &dx))
        return NULL;
    if (dx < -100 || dx > 100)
        return PyErr_Format(PyExc_ValueError, "dx must be in -100..100, not %d", dx);
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, SK2_MOCK_WIDTH * SK2_MOCK_HEIGHT * 2);
    if (bytes)
        sk2_mock_render((uint16_t *)PyBytes_AS_STRING(bytes), dx);
    return bytes;
}

static PyObject *s_mock_match(PyObject *module, PyObject *args)
{
    Py_buffer view;
    unsigned int bits = 16;
    if (!PyArg_ParseTuple(args, "y*|I:mock_match", &view, &bits))
        return NULL;
    PyObject *result = NULL;
    int dx = 0;
    if (bits < 1 || bits > 16) {
        PyErr_Format(PyExc_ValueError, "bits must be 1..16, not %u", bits);
    } else if (view.len != (Py_ssize_t)(SK2_MOCK_WIDTH * SK2_MOCK_HEIGHT * 2)) {
        PyErr_Format(
            PyExc_ValueError, "mock_match needs %u x %u uint16 values (%u bytes), not %zd bytes",
            SK2_MOCK_WIDTH, SK2_MOCK_HEIGHT, SK2_MOCK_WIDTH * SK2_MOCK_HEIGHT * 2, view.len);
    } else if (!PyBuffer_IsContiguous(&view, 'C')) {
        PyErr_SetString(PyExc_ValueError, "mock_match needs a C-contiguous buffer");
    } else {
        int rc;
        Py_BEGIN_ALLOW_THREADS rc =
            sk2_mock_match((const uint16_t *)view.buf, SK2_MOCK_WIDTH, SK2_MOCK_HEIGHT, bits, &dx);
        Py_END_ALLOW_THREADS result = rc == 0 ? PyLong_FromLong(dx) : Py_NewRef(Py_None);
    }
    PyBuffer_Release(&view);
    return result;
}

static PyObject *s_strerror(PyObject *module, PyObject *args)
{
    int code;
    if (!PyArg_ParseTuple(args, "i:strerror", &code))
        return NULL;
    return PyUnicode_FromString(sk2_strerror(code));
}

static PyObject *s_set_log_level(PyObject *module, PyObject *args)
{
    int level;
    if (!PyArg_ParseTuple(args, "i:_set_log_level", &level))
        return NULL;
    if (level < SK2_LOG_ERROR || level > SK2_LOG_TRACE)
        return PyErr_Format(PyExc_ValueError, "unknown log level %d", level);
    sk2_log_set_level((sk2_log_level_t)level);
    Py_RETURN_NONE;
}

static PyMethodDef s_methods[] = {
    {"_browse", s_browse, METH_VARARGS, s_browse_doc},
    {"mock_dx", s_mock_dx, METH_VARARGS,
     "mock_dx(capture_time_us) -> int\n\nThe mock scene's sphere offset at a capture time."},
    {"_mock_render", s_mock_render, METH_VARARGS,
     "_mock_render(dx) -> bytes\n\nThe mock depth scene for one offset, 512x424 uint16."},
    {"mock_match", s_mock_match, METH_VARARGS,
     "mock_match(frame_or_array, bits=16) -> int or None\n\n"
     "The mock scene's sphere offset that a 512x424 depth image equals exactly, comparing the\n"
     "low `bits` bits of each pixel (12 for version-1 depth12 frames); None if none does."},
    {"strerror", s_strerror, METH_VARARGS, "strerror(code) -> str\n\nsk2's text for a code."},
    {"_set_log_level", s_set_log_level, METH_VARARGS, "Sets libsk2's log level."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef s_module = {
    PyModuleDef_HEAD_INIT,
    "_sk2",
    "The C core of the sk2 package (use `import sk2`).",
    -1,
    s_methods,
};

PyMODINIT_FUNC PyInit__sk2(void);
PyMODINIT_FUNC PyInit__sk2(void)
{
    PyObject *module = PyModule_Create(&s_module);
    if (!module)
        return NULL;
    if (s_errors_init(module) < 0 || sk2py_frame_init(module) < 0 ||
        sk2py_client_init(module) < 0 || sk2py_server_init(module) < 0 ||
        sk2py_recording_init(module) < 0 || sk2py_registration_init(module) < 0 ||
        PyModule_AddStringConstant(module, "__version__", sk2_version()) < 0 ||
        PyModule_AddIntConstant(module, "MOCK_WIDTH", SK2_MOCK_WIDTH) < 0 ||
        PyModule_AddIntConstant(module, "MOCK_HEIGHT", SK2_MOCK_HEIGHT) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
