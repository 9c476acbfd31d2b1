/*
 * MinHash signatures of consecutive paragraphs' shingles: the arithmetic of
 * dedup.pipeline.signature (datasketch's affine32 scheme: a MurmurHash3 finaliser, then a*h + b
 * mod 2^32, then the minimum per permutation) in one pass per shingle, without the matrix of
 * permuted hashes the numpy path builds, and the shingle hashes made from the word hashes on
 * the way, without numpy's temporary arrays. The build of this module is optional: without a C
 * compiler dedup.pipeline.signature computes the same values with numpy.
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

/* Shingle hashes are made from word hashes as dedup.pipeline.text makes them: the sum of the words'
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

/* Whether the buffers fit together: ``a`` and ``b`` of one length, ``out`` of one row of that
 * length per count, and counts (int64) that are non-negative and add up to the ``total`` items
 * of the input. Nothing is read out of bounds when it holds. */
static int
sizes_fit(const Py_buffer *out, const Py_buffer *counts, const Py_buffer *a,
          const Py_buffer *b, Py_ssize_t total)
{
    const Py_ssize_t num_perm = a->len / 4;
    const Py_ssize_t rows = counts->len / 8;
    const int64_t *count = (const int64_t *)counts->buf;
    if (a->len != b->len || a->len % 4 || counts->len % 8 || num_perm == 0
        || out->len != rows * num_perm * 4) {
        return 0;
    }
    Py_ssize_t sum = 0;
    for (Py_ssize_t r = 0; r < rows; r++) {
        if (count[r] < 0 || count[r] > total - sum) {
            return 0;
        }
        sum += (Py_ssize_t)count[r];
    }
    return sum == total;
}

static void
release(Py_buffer *views, int n)
{
    for (int i = 0; i < n; i++) {
        PyBuffer_Release(&views[i]);
    }
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
minhash_shingle_fill(PyObject *Py_UNUSED(module), PyObject *args)
{
    enum { OUT, WORDS, COUNTS, WANTED, MULTIPLIERS, A, B, VIEWS };
    Py_buffer v[VIEWS];
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "w*y*y*y*ny*y*y*", &v[OUT], &v[WORDS], &v[COUNTS], &v[WANTED],
                          &size, &v[MULTIPLIERS], &v[A], &v[B])) {
        return NULL;
    }
    const Py_ssize_t rows = v[COUNTS].len / 8;
    if (v[WORDS].len % 8 || !sizes_fit(&v[OUT], &v[COUNTS], &v[A], &v[B], v[WORDS].len / 8)
        || (v[WANTED].len != 0 && v[WANTED].len != rows) || size < 1
        || v[MULTIPLIERS].len / 8 < size) {
        release(v, VIEWS);
        PyErr_SetString(PyExc_ValueError,
                        "shingle_fill: out must hold len(counts) * len(a) values, a and b must "
                        "be as long, wanted empty or one byte per row, size at least 1 and "
                        "covered by multipliers, and the counts must add up to len(words)");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    shingle_fill((uint32_t *)v[OUT].buf, (const uint64_t *)v[WORDS].buf,
                 (const int64_t *)v[COUNTS].buf,
                 v[WANTED].len ? (const uint8_t *)v[WANTED].buf : NULL, rows, size,
                 (const uint64_t *)v[MULTIPLIERS].buf, (const uint32_t *)v[A].buf,
                 (const uint32_t *)v[B].buf, v[A].len / 4);
    Py_END_ALLOW_THREADS
    release(v, VIEWS);
    Py_RETURN_NONE;
}

static PyMethodDef minhash_methods[] = {
    {"shingle_fill", minhash_shingle_fill, METH_VARARGS, shingle_fill_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef minhash_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "dedup.pipeline._minhash",
    .m_doc = "Compiled MinHash kernel of dedup.pipeline.signature (optional).",
    .m_size = 0,
    .m_methods = minhash_methods,
};

PyMODINIT_FUNC
PyInit__minhash(void)
{
    return PyModuleDef_Init(&minhash_module);
}
