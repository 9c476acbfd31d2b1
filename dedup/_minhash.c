/*
 * MinHash signatures of consecutive segments of shingle hashes: the arithmetic of
 * dedup.signature (datasketch's affine32 scheme: a MurmurHash3 finaliser, then a*h + b mod
 * 2^32, then the minimum per permutation) in one pass per shingle, without the matrix of
 * permuted hashes the numpy path builds; shingle_fill also makes the shingle hashes from the
 * word hashes on the way, without numpy's temporary arrays. The build of this module is optional: without a C
 * compiler dedup.signature computes the same values with numpy.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* On x86-64 Linux with GCC, the loop is also compiled for AVX2 and the best variant is picked
 * when the module loads; elsewhere the compiler's default target serves. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
#define DEDUP_TARGETS __attribute__((target_clones("avx2", "default")))
#else
#define DEDUP_TARGETS
#endif

static inline uint32_t
fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    return h ^ (h >> 16);
}

DEDUP_TARGETS
static void
fill(uint32_t *restrict out, const uint32_t *restrict hashes, const int64_t *restrict counts,
     Py_ssize_t rows, const uint32_t *restrict a, const uint32_t *restrict b,
     Py_ssize_t num_perm)
{
    Py_ssize_t offset = 0;
    for (Py_ssize_t r = 0; r < rows; r++) {
        uint32_t *restrict row = out + r * num_perm;
        for (int64_t i = 0; i < counts[r]; i++) {
            const uint32_t h = fmix32(hashes[offset + i]);
            for (Py_ssize_t k = 0; k < num_perm; k++) {
                const uint32_t v = a[k] * h + b[k];
                row[k] = v < row[k] ? v : row[k];
            }
        }
        offset += (Py_ssize_t)counts[r];
    }
}

/* Shingle hashes are made from word hashes as dedup.text makes them: the sum of the words'
 * 64-bit hashes times one multiplier per position, top 32 bits. A row of fewer words than a
 * shingle is one shingle of all of them. */
DEDUP_TARGETS
static void
shingle_fill(uint32_t *restrict out, const uint64_t *restrict words,
             const int64_t *restrict counts, const uint8_t *restrict rows_wanted,
             Py_ssize_t rows, Py_ssize_t size, const uint64_t *restrict multipliers,
             const uint32_t *restrict a, const uint32_t *restrict b, Py_ssize_t num_perm)
{
    Py_ssize_t offset = 0;
    for (Py_ssize_t r = 0; r < rows; r++) {
        const Py_ssize_t count = (Py_ssize_t)counts[r];
        const uint64_t *restrict first = words + offset;
        offset += count;
        if (count == 0 || (rows_wanted != NULL && !rows_wanted[r])) {
            continue;
        }
        const Py_ssize_t width = count < size ? count : size;
        uint32_t *restrict row = out + r * num_perm;
        for (Py_ssize_t i = 0; i + width <= count; i++) {
            uint64_t combined = 0;
            for (Py_ssize_t p = 0; p < width; p++) {
                combined += first[i + p] * multipliers[p];
            }
            const uint32_t h = fmix32((uint32_t)(combined >> 32));
            for (Py_ssize_t k = 0; k < num_perm; k++) {
                const uint32_t v = a[k] * h + b[k];
                row[k] = v < row[k] ? v : row[k];
            }
        }
    }
}

PyDoc_STRVAR(fill_doc,
"fill(out, hashes, counts, a, b)\n"
"--\n\n"
"Lower each row of ``out`` (uint32, len(counts) rows of len(a) values) to the MinHash of\n"
"its segment of ``hashes`` (uint32): row r takes the counts[r] (int64) hashes after those\n"
"of the rows before it. ``a`` and ``b`` (uint32) are the permutation parameters.");

static PyObject *
minhash_fill(PyObject *module, PyObject *args)
{
    Py_buffer out, hashes, counts, a, b;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "w*y*y*y*y*", &out, &hashes, &counts, &a, &b)) {
        return NULL;
    }
    const Py_ssize_t num_perm = a.len / 4;
    const Py_ssize_t rows = counts.len / 8;
    const Py_ssize_t total = hashes.len / 4;
    const int64_t *count = (const int64_t *)counts.buf;
    Py_ssize_t sum = 0;
    int valid = a.len == b.len && a.len % 4 == 0 && hashes.len % 4 == 0 && counts.len % 8 == 0
                && num_perm > 0 && out.len == rows * num_perm * 4;
    for (Py_ssize_t r = 0; valid && r < rows; r++) {
        valid = count[r] >= 0 && count[r] <= total - sum;
        sum += valid ? (Py_ssize_t)count[r] : 0;
    }
    if (!valid || sum != total) {
        PyErr_SetString(PyExc_ValueError,
                        "fill: out must hold len(counts) * len(a) values, a and b must be as "
                        "long, and the counts must add up to len(hashes)");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    fill((uint32_t *)out.buf, (const uint32_t *)hashes.buf, count, rows,
         (const uint32_t *)a.buf, (const uint32_t *)b.buf, num_perm);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&out);
    PyBuffer_Release(&hashes);
    PyBuffer_Release(&counts);
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    return result;
}

PyDoc_STRVAR(shingle_fill_doc,
"shingle_fill(out, words, counts, wanted, size, multipliers, a, b)\n"
"--\n\n"
"Lower each row of ``out`` (uint32, len(counts) rows of len(a) values) to the MinHash of\n"
"the ``size``-word shingles of its words: row r takes the counts[r] (int64) word hashes\n"
"(uint64) of ``words`` after those of the rows before it. Rows whose byte in ``wanted`` is\n"
"0 are left alone (an empty ``wanted`` keeps every row). ``multipliers`` (uint64, at least\n"
"``size``) weigh the words of a shingle by position.");

static PyObject *
minhash_shingle_fill(PyObject *module, PyObject *args)
{
    Py_buffer out, words, counts, wanted, multipliers, a, b;
    Py_ssize_t size;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "w*y*y*y*ny*y*y*", &out, &words, &counts, &wanted, &size,
                          &multipliers, &a, &b)) {
        return NULL;
    }
    const Py_ssize_t num_perm = a.len / 4;
    const Py_ssize_t rows = counts.len / 8;
    const Py_ssize_t total = words.len / 8;
    const int64_t *count = (const int64_t *)counts.buf;
    Py_ssize_t sum = 0;
    int valid = a.len == b.len && a.len % 4 == 0 && words.len % 8 == 0 && counts.len % 8 == 0
                && num_perm > 0 && out.len == rows * num_perm * 4
                && (wanted.len == 0 || wanted.len == rows) && size >= 1
                && multipliers.len >= size * 8;
    for (Py_ssize_t r = 0; valid && r < rows; r++) {
        valid = count[r] >= 0 && count[r] <= total - sum;
        sum += valid ? (Py_ssize_t)count[r] : 0;
    }
    if (!valid || sum != total) {
        PyErr_SetString(PyExc_ValueError,
                        "shingle_fill: out must hold len(counts) * len(a) values, a and b must "
                        "be as long, wanted empty or one byte per row, size at least 1 and "
                        "covered by multipliers, and the counts must add up to len(words)");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    shingle_fill((uint32_t *)out.buf, (const uint64_t *)words.buf, count,
                 wanted.len ? (const uint8_t *)wanted.buf : NULL, rows, size,
                 (const uint64_t *)multipliers.buf, (const uint32_t *)a.buf,
                 (const uint32_t *)b.buf, num_perm);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&out);
    PyBuffer_Release(&words);
    PyBuffer_Release(&counts);
    PyBuffer_Release(&wanted);
    PyBuffer_Release(&multipliers);
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    return result;
}

static PyMethodDef minhash_methods[] = {
    {"fill", minhash_fill, METH_VARARGS, fill_doc},
    {"shingle_fill", minhash_shingle_fill, METH_VARARGS, shingle_fill_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef minhash_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "dedup._minhash",
    .m_doc = "Compiled MinHash kernel of dedup.signature (optional).",
    .m_size = 0,
    .m_methods = minhash_methods,
};

PyMODINIT_FUNC
PyInit__minhash(void)
{
    return PyModuleDef_Init(&minhash_module);
}
