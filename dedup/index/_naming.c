/* Entry operations named as the index's scripts take them, in one pass: the compiled path
 * of dedup.index.entries._named (which computes the same where this is not built).
 *
 * For each operation (family, key, code, tail, ticket) of one shard: the name of its
 * entry's hash (the family's prefix in the shard followed by the bucket's number), its code
 * (the operation's letter, the family's letter, the field's width in bytes), and its field,
 * big-endian, followed by its tail. A family's naming is asked once a call of make(family),
 * which answers (prefix, letter, shift, rest bits, depth, split) or None when its keys do
 * not fit in 64 bits (the Python path names those).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    PyObject *family; /* borrowed: the operations hold it */
    const char *prefix;
    Py_ssize_t prefix_len;
    char letter;
    int shift, below, wide, narrow;
    uint64_t rest_mask, split, wide_mask, narrow_mask, top, deeper;
} Naming;

#define MAX_FAMILIES 8

static uint64_t mask_of(int bits) { return bits >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << bits) - 1); }

/* The naming of a family from make's answer; 0 when it cannot be named here, -1 on error. */
static int naming_of(PyObject *make, PyObject *family, Naming *out, PyObject **keep) {
    PyObject *got = PyObject_CallOneArg(make, family);
    if (got == NULL) return -1;
    if (got == Py_None) {
        Py_DECREF(got);
        return 0;
    }
    PyObject *prefix, *letter;
    long long shift, rest, depth;
    unsigned long long split;
    if (!PyArg_ParseTuple(got, "UULLLK", &prefix, &letter, &shift, &rest, &depth, &split)) {
        Py_DECREF(got);
        return -1;
    }
    if (rest > 64 || shift < 0 || shift >= 64 || depth < 0 || depth + 1 >= rest) {
        Py_DECREF(got);
        return 0;
    }
    out->family = family;
    out->prefix = PyUnicode_AsUTF8AndSize(prefix, &out->prefix_len);
    const char *l = PyUnicode_AsUTF8(letter);
    if (out->prefix == NULL || l == NULL) {
        Py_DECREF(got);
        return -1;
    }
    out->letter = l[0];
    out->shift = (int)shift;
    out->rest_mask = mask_of((int)rest);
    out->below = (int)(rest - depth);
    out->split = split;
    out->wide = (out->below + 7) / 8;
    out->narrow = (out->below + 6) / 8;
    out->wide_mask = mask_of(out->below);
    out->narrow_mask = mask_of(out->below - 1);
    out->top = (uint64_t)1 << depth;
    out->deeper = (uint64_t)2 << depth;
    *keep = got; /* holds the prefix's UTF-8 */
    return 1;
}

typedef struct {
    char *data;
    Py_ssize_t size, used;
} Buffer;

static int grow(Buffer *b, Py_ssize_t more) {
    if (b->used + more <= b->size) return 0;
    Py_ssize_t size = b->size ? b->size : 4096;
    while (size < b->used + more) size *= 2;
    char *data = PyMem_Realloc(b->data, size);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->size = size;
    return 0;
}

/* named(ops, make, fields) -> (names, codes, packed) or None when a family cannot be named
 * here. With fields true, packed is a list of each operation's field (without its tail). */
static PyObject *named(PyObject *self, PyObject *args) {
    PyObject *ops, *make;
    int fields;
    if (!PyArg_ParseTuple(args, "O!Op", &PyList_Type, &ops, &make, &fields)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(ops);
    Naming known[MAX_FAMILIES];
    PyObject *kept[MAX_FAMILIES];
    int families = 0;
    PyObject *result = NULL, *names = NULL, *field_list = NULL;
    Buffer codes = {0}, packed = {0};
    char name[256];
    names = PyList_New(n);
    if (names == NULL) goto done;
    if (fields && (field_list = PyList_New(n)) == NULL) goto done;
    if (grow(&codes, 3 * n + 1) < 0) goto done;
    Naming *at = NULL;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *op = PyList_GET_ITEM(ops, k);
        if (!PyTuple_Check(op) || PyTuple_GET_SIZE(op) < 4) {
            PyErr_SetString(PyExc_TypeError, "an operation is a tuple (family, key, code, tail, ...)");
            goto done;
        }
        PyObject *family = PyTuple_GET_ITEM(op, 0);
        if (at == NULL || at->family != family) {
            at = NULL;
            for (int f = 0; f < families; f++)
                if (known[f].family == family) at = &known[f];
            if (at == NULL) {
                if (families == MAX_FAMILIES) {
                    result = Py_NewRef(Py_None);
                    goto done;
                }
                int found = naming_of(make, family, &known[families], &kept[families]);
                if (found < 0) goto done;
                if (found == 0) {
                    result = Py_NewRef(Py_None);
                    goto done;
                }
                at = &known[families++];
            }
        }
        unsigned long long key = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(op, 1));
        if (key == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            result = Py_NewRef(Py_None); /* a key past 64 bits: the Python path */
            goto done;
        }
        uint64_t low = ((uint64_t)key >> at->shift) & at->rest_mask;
        uint64_t bucket = low >> at->below, field;
        int width;
        if (bucket < at->split) {
            bucket = (low >> (at->below - 1)) | at->deeper;
            field = low & at->narrow_mask;
            width = at->narrow;
        } else {
            bucket |= at->top;
            field = low & at->wide_mask;
            width = at->wide;
        }
        if (at->prefix_len > (Py_ssize_t)sizeof(name) - 24) {
            PyErr_SetString(PyExc_ValueError, "an entry prefix is too long");
            goto done;
        }
        memcpy(name, at->prefix, at->prefix_len);
        int digits = snprintf(name + at->prefix_len, 24, "%llu", (unsigned long long)bucket);
        PyObject *text = PyUnicode_DecodeUTF8(name, at->prefix_len + digits, NULL);
        if (text == NULL) goto done;
        PyList_SET_ITEM(names, k, text);
        Py_ssize_t code_size;
        const char *code = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(op, 2), &code_size);
        if (code == NULL) goto done;
        codes.data[codes.used++] = code_size ? code[0] : '?';
        codes.data[codes.used++] = at->letter;
        codes.data[codes.used++] = (char)('0' + width);
        unsigned char bytes[8];
        for (int i = 0; i < width; i++) bytes[i] = (unsigned char)(field >> (8 * (width - 1 - i)));
        if (fields) {
            PyObject *b = PyBytes_FromStringAndSize((const char *)bytes, width);
            if (b == NULL) goto done;
            PyList_SET_ITEM(field_list, k, b);
            continue;
        }
        char *tail;
        Py_ssize_t tail_size;
        if (PyBytes_AsStringAndSize(PyTuple_GET_ITEM(op, 3), &tail, &tail_size) < 0) goto done;
        if (grow(&packed, width + tail_size) < 0) goto done;
        memcpy(packed.data + packed.used, bytes, width);
        memcpy(packed.data + packed.used + width, tail, tail_size);
        packed.used += width + tail_size;
    }
    PyObject *code_text = PyUnicode_FromStringAndSize(codes.data, codes.used);
    if (code_text == NULL) goto done;
    PyObject *chunks = fields ? Py_NewRef(field_list)
                              : PyBytes_FromStringAndSize(packed.data ? packed.data : "", packed.used);
    if (chunks == NULL) {
        Py_DECREF(code_text);
        goto done;
    }
    result = PyTuple_Pack(3, names, code_text, chunks);
    Py_DECREF(code_text);
    Py_DECREF(chunks);
done:
    for (int f = 0; f < families; f++) Py_DECREF(kept[f]);
    Py_XDECREF(names);
    Py_XDECREF(field_list);
    PyMem_Free(codes.data);
    PyMem_Free(packed.data);
    return result;
}

static PyMethodDef methods[] = {
    {"named", named, METH_VARARGS,
     "named(ops, make, fields) -> (names, codes, packed | fields) or None: a shard's entry "
     "operations named as the index's scripts take them."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_naming", NULL, -1, methods};

PyMODINIT_FUNC PyInit__naming(void) { return PyModule_Create(&module); }
