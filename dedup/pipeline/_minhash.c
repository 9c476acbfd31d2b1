/*
 * The compiled kernel of dedup.pipeline: the steps that cost a Python call per word or per
 * paragraph, done in one call per document.
 *
 * - hash_words: a document's words, as dedup.pipeline.text lays them out (words apart by
 *   spaces, paragraphs by line breaks), hashed with XXH64 one by one, counted per paragraph,
 *   and each paragraph's fingerprint (the XXH64 of its words joined by single spaces), where
 *   Python made a bytes object and an xxhash call per word and per paragraph. Which
 *   characters make a word is decided in Python before: this loop only cuts at the two
 *   separators, so the rule stays in one place.
 * - shingle_fill: MinHash signatures of consecutive paragraphs' shingles, every kind a
 *   document needs (paragraph and document signatures) in one call, the arithmetic of
 *   dedup.pipeline.signature (datasketch's affine32 scheme: a MurmurHash3 finaliser, then
 *   a*h + b mod 2^32, then the minimum per permutation) a block of shingles and of
 *   permutations at a time, the minima held in registers, without the matrix of permuted
 *   hashes the numpy path builds, and the shingle hashes made from the word hashes on the
 *   way, without numpy's temporary arrays.
 *
 * - paragraph_pieces: the keys of the near-copy pieces of every paragraph of a document
 *   (dedup.pipeline.analysis.paragraph_pieces), where Python made three bytes objects and
 *   three xxhash calls a paragraph.
 *
 * - word_runs: every run of characters other than word characters (those the regular
 *   expression \w matches: alphanumeric or ``_``, the same test the re module makes) and line
 *   breaks turned into one space, as dedup.pipeline.text does with a regular expression for
 *   text whose words are such runs, a few times faster on non-ASCII text. Python decides when
 *   that is the rule; this only applies it.
 *
 * - repeat_runs: the internal repeats of dedup.pipeline.repeats, pairs of paragraphs with
 *   equal fingerprints or whose signatures share an LSH band key and have enough equal
 *   values, chained into runs and claimed longest first, in one call where Python spent a
 *   dictionary look-up per pair and numpy a dozen calls per document.
 *
 * - table_words: the words of text whose every character is in a table that
 *   dedup.pipeline.text derives from its word rule (what NFKC, case folding and the \w test
 *   make of each character), folded, cut and hashed as hash_words does, in one pass over the
 *   paragraphs; hash_word_runs: text Python has folded cut at the \w test and hashed in the
 *   same pass.
 *
 * - readable_pieces: the parsed text of a page cut at the separator the parser put between
 *   text nodes, whitespace collapsed, controls dropped, pieces without a letter or digit left
 *   out, as dedup.pipeline.extract does it with str.split, str.join and two regular
 *   expressions: one pass instead of five over the page's text; holds: which of a few
 *   marks (tags in either case, reserved characters) a page holds, in one pass where
 *   dedup.pipeline.extract searched the page once per mark; markup_pieces: the same pieces
 *   of markup made only of text, tags that always make an element and the references
 *   html.escape writes, cut at the tags without a parser's tree.
 *
 * The build of this module is optional: without a C compiler dedup.pipeline computes the same
 * values with xxhash and numpy.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* On x86-64 Linux with GCC, the loop is also compiled for AVX2 and the best variant is picked
 * when the module loads; elsewhere the compiler's default target serves. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
#define DEDUP_TARGETS __attribute__((target_clones("avx2", "default")))
#else
#define DEDUP_TARGETS
#endif

/* A loop written once for every kind of str is inlined into each caller that names the kind,
 * so that the compiler drops the test of the kind from the loop. */
#if defined(__GNUC__)
#define DEDUP_INLINE inline __attribute__((always_inline))
#else
#define DEDUP_INLINE inline
#endif

/* ``statement`` run with ``K`` the string kind ``kind`` as a constant: a DEDUP_INLINE loop it
 * calls with K is compiled once per kind. */
#define FOR_EACH_KIND(kind, K, statement)                                                      \
    switch (kind) {                                                                            \
    case PyUnicode_1BYTE_KIND: {                                                               \
        const int K = PyUnicode_1BYTE_KIND;                                                    \
        statement;                                                                             \
        break;                                                                                 \
    }                                                                                          \
    case PyUnicode_2BYTE_KIND: {                                                               \
        const int K = PyUnicode_2BYTE_KIND;                                                    \
        statement;                                                                             \
        break;                                                                                 \
    }                                                                                          \
    default: {                                                                                 \
        const int K = PyUnicode_4BYTE_KIND;                                                    \
        statement;                                                                             \
    }                                                                                          \
    }

static inline uint32_t
fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    return h ^ (h >> 16);
}

/* XXH64 with seed 0, as the xxhash package computes it (xxh64_intdigest), written from the
 * algorithm's specification: four lanes over 32-byte stripes, then the tail, then the
 * avalanche. tests/test_text.py compares it with the package on every length up to a few
 * stripes. */
static const uint64_t XXH_P1 = 0x9E3779B185EBCA87u;
static const uint64_t XXH_P2 = 0xC2B2AE3D27D4EB4Fu;
static const uint64_t XXH_P3 = 0x165667B19E3779F9u;
static const uint64_t XXH_P4 = 0x85EBCA77C2B2AE63u;
static const uint64_t XXH_P5 = 0x27D4EB2F165667C5u;

static inline uint64_t
rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

/* ``bytes`` bytes at ``p`` as a little-endian number, whatever the machine's byte order (the
 * compiler makes one load of it). */
static inline uint64_t
read_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static inline uint64_t
xxh_round(uint64_t acc, uint64_t lane)
{
    acc += lane * XXH_P2;
    return rotl64(acc, 31) * XXH_P1;
}

static inline uint64_t
xxh_merge(uint64_t acc, uint64_t lane)
{
    acc ^= xxh_round(0, lane);
    return acc * XXH_P1 + XXH_P4;
}

/* The end of XXH64: the last bytes (fewer than 32) into ``acc``, then the avalanche. Inlined
 * where words are hashed: most words are shorter than a stripe and need nothing else. */
static DEDUP_INLINE uint64_t
xxh64_finish(uint64_t acc, const unsigned char *p, const unsigned char *end)
{
    while (end - p >= 8) {
        acc ^= xxh_round(0, read_le(p, 8));
        acc = rotl64(acc, 27) * XXH_P1 + XXH_P4;
        p += 8;
    }
    if (end - p >= 4) {
        acc ^= read_le(p, 4) * XXH_P1;
        acc = rotl64(acc, 23) * XXH_P2 + XXH_P3;
        p += 4;
    }
    while (p < end) {
        acc ^= (uint64_t)(*p) * XXH_P5;
        acc = rotl64(acc, 11) * XXH_P1;
        p++;
    }
    acc ^= acc >> 33;
    acc *= XXH_P2;
    acc ^= acc >> 29;
    acc *= XXH_P3;
    return acc ^ (acc >> 32);
}

/* XXH64 of 32 bytes or more: the stripes, then the end. */
static uint64_t
xxh64_long(const unsigned char *p, size_t len)
{
    const unsigned char *const end = p + len;
    uint64_t v1 = XXH_P1 + XXH_P2, v2 = XXH_P2, v3 = 0, v4 = 0 - XXH_P1;
    const unsigned char *const limit = end - 32;
    do {
        v1 = xxh_round(v1, read_le(p, 8));
        v2 = xxh_round(v2, read_le(p + 8, 8));
        v3 = xxh_round(v3, read_le(p + 16, 8));
        v4 = xxh_round(v4, read_le(p + 24, 8));
        p += 32;
    } while (p <= limit);
    uint64_t acc = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
    acc = xxh_merge(acc, v1);
    acc = xxh_merge(acc, v2);
    acc = xxh_merge(acc, v3);
    acc = xxh_merge(acc, v4);
    return xxh64_finish(acc + (uint64_t)len, p, end);
}

static DEDUP_INLINE uint64_t
xxh64(const unsigned char *p, size_t len)
{
    return len >= 32 ? xxh64_long(p, len) : xxh64_finish(XXH_P5 + (uint64_t)len, p, p + len);
}

/* Words of ``text`` (apart by runs of spaces, paragraphs apart by line breaks) into ``hashes``,
 * each line's word count into ``counts`` and the XXH64 of its words joined by single spaces into
 * ``fingerprints``; ``joined`` is scratch room as long as the text. Returns the number of words;
 * the caller has checked that ``counts`` has one slot per line and ``hashes`` room for every
 * word (at most half the text, rounded up). */
static Py_ssize_t
hash_words(const unsigned char *text, Py_ssize_t len, uint64_t *restrict hashes,
           int64_t *restrict counts, uint64_t *restrict fingerprints, unsigned char *joined)
{
    Py_ssize_t total = 0, line = 0, line_words = 0, used = 0, i = 0;
    for (;;) {
        while (i < len && text[i] == ' ') {
            i++;
        }
        if (i == len || text[i] == '\n') {
            counts[line] = line_words;
            fingerprints[line] = xxh64(joined, (size_t)used);
            line++;
            line_words = 0;
            used = 0;
            if (i == len) {
                return total;
            }
            i++;
            continue;
        }
        const Py_ssize_t start = i;
        while (i < len && text[i] != ' ' && text[i] != '\n') {
            i++;
        }
        hashes[total++] = xxh64(text + start, (size_t)(i - start));
        if (line_words++) {
            joined[used++] = ' ';
        }
        memcpy(joined + used, text + start, (size_t)(i - start));
        used += i - start;
    }
}

/* Permutations whose running minima one pass over a row's shingle hashes keeps (in registers:
 * four AVX2 vectors), and shingle hashes made at a time before the passes (on the stack). */
#define PERM_BLOCK 32
#define SHINGLE_BLOCK 256

/* Lower ``row[k]`` for PERM_BLOCK permutations to the minimum of ``a[k] * h + b[k]`` over the
 * ``count`` shingle hashes: each hash is read once per block of permutations, and the minima
 * are stored once, where a pass per shingle loaded and stored the whole row each time. */
static DEDUP_INLINE void
lower_block(uint32_t *restrict row, const uint32_t *restrict a, const uint32_t *restrict b,
            const uint32_t *restrict hashes, Py_ssize_t count)
{
    uint32_t low[PERM_BLOCK];
    for (int k = 0; k < PERM_BLOCK; k++) {
        low[k] = row[k];
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        const uint32_t h = hashes[i];
        for (int k = 0; k < PERM_BLOCK; k++) {
            const uint32_t v = a[k] * h + b[k];
            low[k] = v < low[k] ? v : low[k];
        }
    }
    for (int k = 0; k < PERM_BLOCK; k++) {
        row[k] = low[k];
    }
}

/* Shingle hashes are made from word hashes as dedup.pipeline.text makes them: the sum of the words'
 * 64-bit hashes times one multiplier per position, top 32 bits. A row of fewer words than a
 * shingle is one shingle of all of them. The minimum over shingles is taken a block of
 * shingles and a block of permutations at a time, in any order: it is the same minimum. Rows
 * without words, or not wanted, are the empty signature (every value 0xFFFFFFFF). */
DEDUP_TARGETS
static void
shingle_fill(uint32_t *restrict out, const uint64_t *restrict words,
             const int64_t *restrict counts, const uint8_t *restrict rows_wanted,
             Py_ssize_t rows, Py_ssize_t size, const uint64_t *restrict multipliers,
             const uint32_t *restrict a, const uint32_t *restrict b, Py_ssize_t num_perm)
{
    uint32_t hashes[SHINGLE_BLOCK];
    Py_ssize_t offset = 0;
    for (Py_ssize_t r = 0; r < rows; r++) {
        const Py_ssize_t count = (Py_ssize_t)counts[r];
        const uint64_t *restrict first = words + offset;
        uint32_t *restrict row = out + r * num_perm;
        offset += count;
        for (Py_ssize_t k = 0; k < num_perm; k++) {
            row[k] = 0xFFFFFFFFu;
        }
        if (count == 0 || (rows_wanted != NULL && !rows_wanted[r])) {
            continue;
        }
        const Py_ssize_t width = count < size ? count : size;
        const Py_ssize_t shingles = count - width + 1;
        for (Py_ssize_t start = 0; start < shingles; start += SHINGLE_BLOCK) {
            const Py_ssize_t made =
                shingles - start < SHINGLE_BLOCK ? shingles - start : SHINGLE_BLOCK;
            for (Py_ssize_t i = 0; i < made; i++) {
                uint64_t combined = 0;
                for (Py_ssize_t p = 0; p < width; p++) {
                    combined += first[start + i + p] * multipliers[p];
                }
                hashes[i] = fmix32((uint32_t)(combined >> 32));
            }
            Py_ssize_t k = 0;
            for (; k + PERM_BLOCK <= num_perm; k += PERM_BLOCK) {
                lower_block(row + k, a + k, b + k, hashes, made);
            }
            for (; k < num_perm; k++) {
                for (Py_ssize_t i = 0; i < made; i++) {
                    const uint32_t v = a[k] * hashes[i] + b[k];
                    row[k] = v < row[k] ? v : row[k];
                }
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
"shingle_fill(words, counts, multipliers, signings)\n"
"--\n\n"
"Sign the rows of words once for each of ``signings``, a sequence of (out, size, wanted, a,\n"
"b): each row of ``out`` (uint32, len(counts) rows of len(a) values) becomes the MinHash of\n"
"the ``size``-word shingles of its words: row r takes the counts[r] (int64) word hashes\n"
"(uint64) of ``words`` after those of the rows before it. Rows whose byte in ``wanted`` is\n"
"0 (an empty ``wanted`` wants every row) and rows without words become the empty signature\n"
"(every value 0xFFFFFFFF). ``multipliers`` (uint64, at least ``size``) weigh the words of a\n"
"shingle by position.");

/* The buffers of one signing of shingle_fill. */
enum { SIGN_OUT, SIGN_WANTED, SIGN_A, SIGN_B, SIGN_VIEWS };
#define MAX_SIGNINGS 4

static PyObject *
minhash_shingle_fill(PyObject *Py_UNUSED(module), PyObject *args)
{
    enum { WORDS, COUNTS, MULTIPLIERS, VIEWS };
    Py_buffer v[VIEWS];
    PyObject *signings;
    if (!PyArg_ParseTuple(args, "y*y*y*O", &v[WORDS], &v[COUNTS], &v[MULTIPLIERS], &signings)) {
        return NULL;
    }
    Py_buffer s[MAX_SIGNINGS][SIGN_VIEWS];
    Py_ssize_t sizes[MAX_SIGNINGS];
    Py_ssize_t parsed = 0;
    PyObject *result = NULL;
    PyObject *items = PySequence_Fast(signings, "shingle_fill: signings must be a sequence");
    if (items == NULL) {
        goto done;
    }
    const Py_ssize_t count = PySequence_Fast_GET_SIZE(items);
    const Py_ssize_t rows = v[COUNTS].len / 8;
    int fits = count <= MAX_SIGNINGS && v[WORDS].len % 8 == 0;
    for (; fits && parsed < count; parsed++) {
        Py_buffer *sv = s[parsed];
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(items, parsed), "w*ny*y*y*",
                              &sv[SIGN_OUT], &sizes[parsed], &sv[SIGN_WANTED], &sv[SIGN_A],
                              &sv[SIGN_B])) {
            goto done;
        }
        fits = sizes_fit(&sv[SIGN_OUT], &v[COUNTS], &sv[SIGN_A], &sv[SIGN_B], v[WORDS].len / 8)
               && (sv[SIGN_WANTED].len == 0 || sv[SIGN_WANTED].len == rows)
               && sizes[parsed] >= 1 && v[MULTIPLIERS].len / 8 >= sizes[parsed];
    }
    if (!fits) {
        PyErr_SetString(PyExc_ValueError,
                        "shingle_fill: at most 4 signings, each out must hold len(counts) * "
                        "len(a) values, a and b must be as long, wanted empty or one byte per "
                        "row, size at least 1 and covered by multipliers, and the counts must "
                        "add up to len(words)");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t n = 0; n < count; n++) {
        const Py_buffer *sv = s[n];
        shingle_fill((uint32_t *)sv[SIGN_OUT].buf, (const uint64_t *)v[WORDS].buf,
                     (const int64_t *)v[COUNTS].buf,
                     sv[SIGN_WANTED].len ? (const uint8_t *)sv[SIGN_WANTED].buf : NULL, rows,
                     sizes[n], (const uint64_t *)v[MULTIPLIERS].buf,
                     (const uint32_t *)sv[SIGN_A].buf, (const uint32_t *)sv[SIGN_B].buf,
                     sv[SIGN_A].len / 4);
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    for (Py_ssize_t n = 0; n < parsed; n++) {
        release(s[n], SIGN_VIEWS);
    }
    Py_XDECREF(items);
    release(v, VIEWS);
    return result;
}

PyDoc_STRVAR(hash_words_doc,
"hash_words(text, hashes, counts, fingerprints) -> int\n"
"--\n\n"
"Cut ``text`` (UTF-8 bytes) into lines at line breaks and each line into words at runs of\n"
"spaces; write each word's XXH64 into ``hashes`` (uint64, at least (len(text) + 1) // 2),\n"
"each line's word count into ``counts`` (int64, one per line) and the XXH64 of its words\n"
"joined by single spaces into ``fingerprints`` (uint64, one per line). Returns the number\n"
"of words.");

static PyObject *
minhash_hash_words(PyObject *Py_UNUSED(module), PyObject *args)
{
    enum { TEXT, HASHES, COUNTS, FINGERPRINTS, VIEWS };
    Py_buffer v[VIEWS];
    if (!PyArg_ParseTuple(args, "y*w*w*w*", &v[TEXT], &v[HASHES], &v[COUNTS],
                          &v[FINGERPRINTS])) {
        return NULL;
    }
    const unsigned char *text = (const unsigned char *)v[TEXT].buf;
    const Py_ssize_t len = v[TEXT].len;
    Py_ssize_t lines = 1;
    for (Py_ssize_t i = 0; i < len; i++) {
        lines += text[i] == '\n';
    }
    if (v[HASHES].len / 8 < (len + 1) / 2 || v[COUNTS].len != lines * 8
        || v[FINGERPRINTS].len != lines * 8) {
        release(v, VIEWS);
        PyErr_SetString(PyExc_ValueError,
                        "hash_words: hashes must have room for (len(text) + 1) // 2 words, "
                        "counts and fingerprints one value per line of text");
        return NULL;
    }
    unsigned char *joined = PyMem_Malloc(len ? (size_t)len : 1);
    if (joined == NULL) {
        release(v, VIEWS);
        return PyErr_NoMemory();
    }
    Py_ssize_t words;
    Py_BEGIN_ALLOW_THREADS
    words = hash_words(text, len, (uint64_t *)v[HASHES].buf, (int64_t *)v[COUNTS].buf,
                       (uint64_t *)v[FINGERPRINTS].buf, joined);
    Py_END_ALLOW_THREADS
    PyMem_Free(joined);
    release(v, VIEWS);
    return PyLong_FromSsize_t(words);
}

/* The XXH64 of one piece of a paragraph: its tag byte, its word count (two bytes, little
 * endian) when the paragraph is short, then its word hashes as the machine keeps them (what
 * numpy's tobytes gives). ``scratch`` has room for all of them. */
static uint64_t
piece_key(unsigned char *scratch, unsigned char tag, int64_t n, int64_t short_below,
          const uint64_t *words, int64_t count)
{
    size_t at = 0;
    scratch[at++] = tag;
    if (n < short_below) {
        scratch[at++] = (unsigned char)(n & 0xFF);
        scratch[at++] = (unsigned char)(n >> 8 & 0xFF);
    }
    memcpy(scratch + at, words, (size_t)count * 8);
    return xxh64(scratch, at + (size_t)count * 8);
}

PyDoc_STRVAR(paragraph_pieces_doc,
"paragraph_pieces(hashes, counts, min_words, short_below, kept) -> list[tuple[int, ...]]\n"
"--\n\n"
"For each paragraph (``counts``: int64 word counts of the paragraphs whose word hashes\n"
"follow one another in ``hashes``, uint64) with ``min_words`` words or more, the keys of\n"
"the ``kept`` smallest of its pieces, in key order, as dedup.pipeline.analysis.\n"
"paragraph_pieces makes them (head, middle and tail, a third of its words each and three at\n"
"least; the word count hashed in under ``short_below`` words); () for the others.\n"
"``min_words`` must be at least 3.");

static PyObject *
minhash_paragraph_pieces(PyObject *Py_UNUSED(module), PyObject *args)
{
    enum { HASHES, COUNTS, VIEWS };
    Py_buffer v[VIEWS];
    Py_ssize_t min_words, short_below, kept;
    if (!PyArg_ParseTuple(args, "y*y*nnn", &v[HASHES], &v[COUNTS], &min_words, &short_below,
                          &kept)) {
        return NULL;
    }
    const uint64_t *hashes = (const uint64_t *)v[HASHES].buf;
    const int64_t *counts = (const int64_t *)v[COUNTS].buf;
    const Py_ssize_t total = v[HASHES].len / 8, paragraphs = v[COUNTS].len / 8;
    int64_t sum = 0, most = 0;
    int fits = min_words >= 3 && short_below >= 0 && short_below <= 65536 && kept >= 0
               && kept <= 3 && v[HASHES].len % 8 == 0 && v[COUNTS].len % 8 == 0;
    for (Py_ssize_t p = 0; fits && p < paragraphs; p++) {
        fits = counts[p] >= 0 && counts[p] <= total - sum;
        sum += counts[p];
        most = counts[p] > most ? counts[p] : most;
    }
    if (!fits || sum != total) {
        release(v, VIEWS);
        PyErr_SetString(PyExc_ValueError,
                        "paragraph_pieces: counts must add up to the hashes, min_words be at "
                        "least 3, kept at most 3 and short_below at most 65536");
        return NULL;
    }
    unsigned char *scratch = PyMem_Malloc((size_t)most * 8 + 3);
    PyObject *out = PyList_New(paragraphs);
    if (scratch == NULL || out == NULL) {
        PyMem_Free(scratch);
        Py_XDECREF(out);
        release(v, VIEWS);
        return PyErr_NoMemory();
    }
    const uint64_t *words = hashes;
    for (Py_ssize_t p = 0; p < paragraphs; p++) {
        const int64_t n = counts[p];
        PyObject *keys;
        if (n < min_words) {
            keys = PyTuple_New(0);
        } else {
            const int64_t size = n / 3 > 3 ? n / 3 : 3;
            uint64_t found[3];
            int made = 0;
            found[made++] = piece_key(scratch, 0, n, short_below, words, size);
            if (n - 2 * size >= 3) {
                found[made++] = piece_key(scratch, 1, n, short_below, words + size, n - 2 * size);
            }
            found[made++] = piece_key(scratch, 2, n, short_below, words + n - size, size);
            for (int i = 1; i < made; i++) {  /* sorted: at most three keys */
                for (int j = i; j > 0 && found[j] < found[j - 1]; j--) {
                    const uint64_t t = found[j];
                    found[j] = found[j - 1];
                    found[j - 1] = t;
                }
            }
            const Py_ssize_t take = kept < made ? kept : made;
            keys = PyTuple_New(take);
            for (Py_ssize_t k = 0; keys != NULL && k < take; k++) {
                PyObject *key = PyLong_FromUnsignedLongLong(found[k]);
                if (key == NULL) {
                    Py_CLEAR(keys);
                    break;
                }
                PyTuple_SET_ITEM(keys, k, key);
            }
        }
        if (keys == NULL) {
            Py_DECREF(out);
            out = NULL;
            break;
        }
        PyList_SET_ITEM(out, p, keys);
        words += n;
    }
    PyMem_Free(scratch);
    release(v, VIEWS);
    return out;
}

typedef struct {
    uint64_t key;
    int64_t owner;
} keyed_t;

/* A pair of similar paragraphs, first < second, with their share of equal values (1 for
 * equal fingerprints). */
typedef struct {
    int64_t first;
    int64_t second;
    double share;
} pair_t;

static int
compare_pairs(const void *x, const void *y)
{
    const pair_t *a = x, *b = y;
    if (a->first != b->first) {
        return a->first < b->first ? -1 : 1;
    }
    return (a->second > b->second) - (a->second < b->second);
}

/* A growing array of pairs; 0 when memory ran out. */
typedef struct {
    pair_t *items;
    Py_ssize_t count, room;
} pair_list;

static int
add_pair(pair_list *list, int64_t x, int64_t y, double share)
{
    if (list->count == list->room) {
        const Py_ssize_t room = list->room ? 2 * list->room : 64;
        pair_t *grown = PyMem_Realloc(list->items, (size_t)room * sizeof(pair_t));
        if (grown == NULL) {
            return 0;
        }
        list->items = grown;
        list->room = room;
    }
    pair_t *pair = &list->items[list->count++];
    pair->first = x < y ? x : y;
    pair->second = x < y ? y : x;
    pair->share = share;
    return 1;
}

/* A table of 64-bit keys grouped by open addressing: heads[slot] is the last entry of its key,
 * chained through chain[], sizes[slot] how many share it. */
typedef struct {
    Py_ssize_t *heads, *sizes, *chain;
    Py_ssize_t capacity;
} key_groups;

/* Where a key's search starts in a table of ``capacity`` slots (a power of two). */
static inline Py_ssize_t
key_slot(uint64_t key, Py_ssize_t capacity)
{
    return (Py_ssize_t)(((key ^ (key >> 29)) * 0xBF58476D1CE4E5B9u) >> 17) & (capacity - 1);
}

/* Group ``total`` keys (keys[e * stride] for e < total); 0 when memory ran out. Sets *shared
 * when a key is held by more than one entry. */
static int
group_keys(key_groups *g, const uint64_t *keys, Py_ssize_t stride, Py_ssize_t total,
           int *shared)
{
    g->capacity = 16;
    while (g->capacity < 2 * total) {
        g->capacity *= 2;
    }
    /* one block: the sizes (zeroed), then the heads */
    g->sizes = PyMem_Calloc(2 * (size_t)g->capacity, sizeof(Py_ssize_t));
    g->chain = PyMem_Malloc(total ? (size_t)total * sizeof(Py_ssize_t) : 1);
    if (g->sizes == NULL || g->chain == NULL) {
        return 0;
    }
    g->heads = g->sizes + g->capacity;
    *shared = 0;
    for (Py_ssize_t e = 0; e < total; e++) {
        const uint64_t key = keys[e * stride];
        Py_ssize_t slot = key_slot(key, g->capacity);
        while (g->sizes[slot] && keys[g->heads[slot] * stride] != key) {
            slot = (slot + 1) & (g->capacity - 1);
        }
        g->chain[e] = g->sizes[slot] ? g->heads[slot] : -1;
        *shared |= g->sizes[slot] != 0;
        g->heads[slot] = e;
        g->sizes[slot]++;
    }
    return 1;
}

static void
free_groups(key_groups *g)
{
    PyMem_Free(g->sizes);
    PyMem_Free(g->chain);
}

/* A set of 64-bit keys (none of them UINT64_MAX) by open addressing, grown as it fills. */
typedef struct {
    uint64_t *keys;
    Py_ssize_t count, capacity;
} pair_set;

/* 1 when ``key`` was not in the set (it is now), 0 when it was, -1 when memory ran out. */
static int
see_pair(pair_set *set, uint64_t key)
{
    if (2 * (set->count + 1) > set->capacity) {
        const Py_ssize_t capacity = set->capacity ? 2 * set->capacity : 256;
        uint64_t *grown = PyMem_Malloc((size_t)capacity * sizeof(uint64_t));
        if (grown == NULL) {
            return -1;
        }
        memset(grown, 0xFF, (size_t)capacity * sizeof(uint64_t));
        for (Py_ssize_t s = 0; s < set->capacity; s++) {
            if (set->keys[s] != UINT64_MAX) {
                Py_ssize_t slot = key_slot(set->keys[s], capacity);
                while (grown[slot] != UINT64_MAX) {
                    slot = (slot + 1) & (capacity - 1);
                }
                grown[slot] = set->keys[s];
            }
        }
        PyMem_Free(set->keys);
        set->keys = grown;
        set->capacity = capacity;
    }
    Py_ssize_t slot = key_slot(key, set->capacity);
    while (set->keys[slot] != UINT64_MAX) {
        if (set->keys[slot] == key) {
            return 0;
        }
        slot = (slot + 1) & (set->capacity - 1);
    }
    set->keys[slot] = key;
    set->count++;
    return 1;
}

/* Band keys of the signed rows: for band k, the sum of its ``band_rows`` values times
 * ``mix`` (64-bit, wrapping), xor k times ``salt``; as dedup.pipeline.repeats makes them. */
static void
band_keys(keyed_t *keys, const uint32_t *signatures, Py_ssize_t num_perm, const int64_t *rows,
          Py_ssize_t count, Py_ssize_t band_rows, const uint64_t *mix, uint64_t salt)
{
    const Py_ssize_t bands = num_perm / band_rows;
    for (Py_ssize_t r = 0; r < count; r++) {
        const uint32_t *values = signatures + rows[r] * num_perm;
        for (Py_ssize_t k = 0; k < bands; k++) {
            uint64_t key = 0;
            for (Py_ssize_t p = 0; p < band_rows; p++) {
                key += (uint64_t)values[k * band_rows + p] * mix[p];
            }
            keys[r * bands + k].key = key ^ ((uint64_t)k * salt);
            keys[r * bands + k].owner = rows[r];
        }
    }
}

/* What repeats._similar_pairs finds, into ``out`` (unsorted): each pair of paragraphs with
 * equal fingerprints (only neighbours in a group of more than ``group_limit``) with share 1,
 * and each pair of ``rows`` (the signed paragraphs) with different fingerprints sharing a
 * band key held by at most ``group_limit`` rows whose share of equal values is at least
 * ``threshold``. 0 when memory ran out. */
static int
similar_pairs(pair_list *out, const uint32_t *signatures, Py_ssize_t num_perm,
              const int64_t *rows, Py_ssize_t count, const uint64_t *prints,
              Py_ssize_t paragraphs, const uint64_t *mix, Py_ssize_t band_rows, uint64_t salt,
              Py_ssize_t group_limit, double threshold)
{
    key_groups exact = {0}, bands_grouped = {0};
    pair_set seen = {0};
    keyed_t *keys = NULL;
    int ok = 0, shared;
    if (!group_keys(&exact, prints, 1, paragraphs, &shared)) {
        goto done;
    }
    for (Py_ssize_t slot = 0; shared && slot < exact.capacity; slot++) {
        if (exact.sizes[slot] < 2) {
            continue;
        }
        /* members are chained last first: pairs of neighbours in a large group, else all */
        for (Py_ssize_t a = exact.heads[slot]; a >= 0; a = exact.chain[a]) {
            for (Py_ssize_t b = exact.chain[a]; b >= 0; b = exact.chain[b]) {
                if (!add_pair(out, b, a, 1.0)) {
                    goto done;
                }
                if (exact.sizes[slot] > group_limit) {
                    break;
                }
            }
        }
    }
    const Py_ssize_t bands = num_perm / band_rows;
    const Py_ssize_t total = count * bands;
    keys = PyMem_Malloc(total ? (size_t)total * sizeof(keyed_t) : 1);
    if (keys == NULL) {
        goto done;
    }
    band_keys(keys, signatures, num_perm, rows, count, band_rows, mix, salt);
    if (!group_keys(&bands_grouped, &keys[0].key, sizeof(keyed_t) / sizeof(uint64_t), total,
                    &shared)) {
        goto done;
    }
    for (Py_ssize_t slot = 0; shared && slot < bands_grouped.capacity; slot++) {
        if (bands_grouped.sizes[slot] < 2 || bands_grouped.sizes[slot] > group_limit) {
            continue;
        }
        for (Py_ssize_t a = bands_grouped.heads[slot]; a >= 0; a = bands_grouped.chain[a]) {
            for (Py_ssize_t b = bands_grouped.chain[a]; b >= 0; b = bands_grouped.chain[b]) {
                const int64_t x = keys[a].owner, y = keys[b].owner;
                if (x == y || prints[x] == prints[y]) {
                    continue;
                }
                /* a similar pair shares many bands: it is scored the first time only */
                const int64_t low = x < y ? x : y, high = x < y ? y : x;
                const int fresh = see_pair(&seen, (uint64_t)low * (uint64_t)paragraphs
                                                      + (uint64_t)high);
                if (fresh < 0) {
                    goto done;
                }
                if (!fresh) {
                    continue;
                }
                const uint32_t *one = signatures + low * num_perm;
                const uint32_t *other = signatures + high * num_perm;
                Py_ssize_t equal = 0;
                for (Py_ssize_t k = 0; k < num_perm; k++) {
                    equal += one[k] == other[k];
                }
                const double share = (double)equal / (double)num_perm;
                if (share >= threshold && !add_pair(out, low, high, share)) {
                    goto done;
                }
            }
        }
    }
    ok = 1;
done:
    free_groups(&exact);
    free_groups(&bands_grouped);
    PyMem_Free(seen.keys);
    PyMem_Free(keys);
    return ok;
}

/* A run of repeats._chain: the pairs it took are those whose run is it, in order. */
typedef struct {
    int64_t i0, j0, i1, j1;
    Py_ssize_t length, words;
} run_t;

/* A run's place in the order in which runs claim paragraphs: by its key, the number of its
 * pairs negated (longest first), then where it starts, i0 and j0. */
typedef struct {
    int64_t key[3];
    Py_ssize_t run;
} run_order;

static int
compare_runs(const void *x, const void *y)
{
    const int64_t *a = ((const run_order *)x)->key, *b = ((const run_order *)y)->key;
    for (int k = 0; k < 3; k++) {
        if (a[k] != b[k]) {
            return a[k] < b[k] ? -1 : 1;
        }
    }
    return 0;
}

/* The pairs (sorted) chained into runs as repeats._chain does: a pair continues the longest
 * run that ends up to ``max_gap`` paragraphs before it on both sides and whose copy starts
 * after it, else starts one. pair_run[p] is the run pair p joined; dropped[p] is 1 when the
 * run stepped over paragraph first - 1 alone to reach it. Returns the number of runs, -1
 * when memory ran out. */
static Py_ssize_t
chain_pairs(const pair_t *pairs, Py_ssize_t count, Py_ssize_t paragraphs, Py_ssize_t max_gap,
            const int64_t *word_counts, run_t *runs, Py_ssize_t *pair_run, uint8_t *dropped)
{
    /* ends: pair position (i * paragraphs + j) -> the run that ended there when it was added;
     * a run whose end moved on no longer ends there, which its i1 and j1 tell. */
    Py_ssize_t capacity = 16;
    while (capacity < 2 * count) {
        capacity *= 2;
    }
    uint64_t *keys = PyMem_Malloc((size_t)capacity * sizeof(uint64_t));
    Py_ssize_t *owners = PyMem_Malloc((size_t)capacity * sizeof(Py_ssize_t));
    if (keys == NULL || owners == NULL) {
        PyMem_Free(keys);
        PyMem_Free(owners);
        return -1;
    }
    for (Py_ssize_t s = 0; s < capacity; s++) {
        owners[s] = -1;
    }
    Py_ssize_t made = 0;
    for (Py_ssize_t p = 0; p < count; p++) {
        const int64_t i = pairs[p].first, j = pairs[p].second;
        Py_ssize_t best = -1;
        for (Py_ssize_t di = 1; di <= max_gap; di++) {
            for (Py_ssize_t dj = 1; dj <= max_gap; dj++) {
                const int64_t ei = i - di, ej = j - dj;
                if (ei < 0 || ej < 0) {
                    continue;
                }
                const uint64_t key = (uint64_t)ei * (uint64_t)paragraphs + (uint64_t)ej;
                Py_ssize_t slot = key_slot(key, capacity);
                while (owners[slot] >= 0 && keys[slot] != key) {
                    slot = (slot + 1) & (capacity - 1);
                }
                const Py_ssize_t r = owners[slot];
                if (r >= 0 && runs[r].i1 == ei && runs[r].j1 == ej && i < runs[r].j0
                    && (best < 0 || runs[r].length > runs[best].length)) {
                    best = r;
                }
            }
        }
        dropped[p] = 0;
        if (best < 0) {
            best = made++;
            runs[best] = (run_t){i, j, i, j, 0, 0};
        }
        else {
            dropped[p] = i - runs[best].i1 == 2 && j - runs[best].j1 == 1;
            runs[best].i1 = i;
            runs[best].j1 = j;
        }
        runs[best].length++;
        runs[best].words += (Py_ssize_t)word_counts[i];
        pair_run[p] = best;
        const uint64_t key = (uint64_t)i * (uint64_t)paragraphs + (uint64_t)j;
        Py_ssize_t slot = key_slot(key, capacity);
        while (owners[slot] >= 0 && keys[slot] != key) {
            slot = (slot + 1) & (capacity - 1);
        }
        keys[slot] = key;
        owners[slot] = best;
    }
    PyMem_Free(keys);
    PyMem_Free(owners);
    return made;
}

/* A list of the float64 shares (``what`` 0), int64 firsts (1), seconds (2) or firsts minus one
 * where the run stepped over a paragraph (3) of the ``count`` pairs ``taken`` (in order). */
static PyObject *
run_values(const pair_t *pairs, const Py_ssize_t *taken, Py_ssize_t count,
           const uint8_t *dropped, int what)
{
    PyObject *list = PyList_New(0);
    for (Py_ssize_t n = 0; list != NULL && n < count; n++) {
        const Py_ssize_t p = taken[n];
        if (what == 3 && !dropped[p]) {
            continue;
        }
        PyObject *value = what == 0   ? PyFloat_FromDouble(pairs[p].share)
                          : what == 1 ? PyLong_FromLongLong(pairs[p].first)
                          : what == 2 ? PyLong_FromLongLong(pairs[p].second)
                                      : PyLong_FromLongLong(pairs[p].first - 1);
        if (value == NULL || PyList_Append(list, value) < 0) {
            Py_XDECREF(value);
            Py_CLEAR(list);
        }
        Py_XDECREF(value);
    }
    return list;
}

PyDoc_STRVAR(repeat_runs_doc,
"repeat_runs(signatures, num_perm, rows, fingerprints, word_counts, mix, salt,\n"
"            group_limit, threshold, max_gap, min_words)\n"
"--\n\n"
"The runs dedup.pipeline.repeats.find_repeats keeps, found as it finds them: pairs of\n"
"paragraphs with equal ``fingerprints`` (uint64; only neighbours in a group of more than\n"
"``group_limit``) and pairs of ``rows`` (int64, the signed paragraphs, whose signatures are\n"
"uint32, num_perm per paragraph) sharing a band key held by at most ``group_limit`` rows,\n"
"with different fingerprints and a share of equal values of at least ``threshold``; bands\n"
"are len(mix) values wide. The pairs, sorted, are chained into runs stepping over fewer than\n"
"``max_gap`` paragraphs on either side; longest first, each run whose matched paragraphs\n"
"hold ``min_words`` words (``word_counts``, int64) or more claims its copy's paragraphs\n"
"unless one is claimed or all of its first range are. Returns the number of claimed\n"
"paragraphs and the runs that claimed, in claiming order, each as (i0, j0, i1, j1, shares,\n"
"matched, copies, dropped).");

static PyObject *
minhash_repeat_runs(PyObject *Py_UNUSED(module), PyObject *args)
{
    enum { SIGNATURES, ROWS, FINGERPRINTS, WORDS, MIX, VIEWS };
    Py_buffer v[VIEWS];
    Py_ssize_t num_perm, group_limit, max_gap, min_words;
    unsigned long long salt;
    double threshold;
    if (!PyArg_ParseTuple(args, "y*ny*y*y*y*Kndnn", &v[SIGNATURES], &num_perm, &v[ROWS],
                          &v[FINGERPRINTS], &v[WORDS], &v[MIX], &salt, &group_limit,
                          &threshold, &max_gap, &min_words)) {
        return NULL;
    }
    const Py_ssize_t paragraphs = v[FINGERPRINTS].len / 8;
    const Py_ssize_t count = v[ROWS].len / 8;
    const Py_ssize_t band_rows = v[MIX].len / 8;
    const int64_t *rows = (const int64_t *)v[ROWS].buf;
    const int64_t *word_counts = (const int64_t *)v[WORDS].buf;
    int fits = num_perm > 0 && band_rows > 0 && band_rows <= num_perm && v[ROWS].len % 8 == 0
               && v[FINGERPRINTS].len % 8 == 0 && v[MIX].len % 8 == 0 && max_gap >= 1
               && v[WORDS].len == paragraphs * 8
               && v[SIGNATURES].len == paragraphs * num_perm * 4;
    for (Py_ssize_t r = 0; fits && r < count; r++) {
        fits = rows[r] >= 0 && rows[r] < paragraphs;
    }
    if (!fits) {
        release(v, VIEWS);
        PyErr_SetString(PyExc_ValueError,
                        "repeat_runs: signatures must hold num_perm values per fingerprint, "
                        "word_counts one per fingerprint, rows index them, mix must be no "
                        "wider than num_perm and max_gap at least 1");
        return NULL;
    }
    pair_list pairs = {0};
    run_t *runs = NULL;
    Py_ssize_t *pair_run = NULL, *by_run = NULL, *run_start = NULL, *filled = NULL;
    run_order *order = NULL;
    uint8_t *dropped = NULL, *taken = NULL;
    PyObject *result = NULL, *chosen = NULL;
    if (!similar_pairs(&pairs, (const uint32_t *)v[SIGNATURES].buf, num_perm, rows, count,
                       (const uint64_t *)v[FINGERPRINTS].buf, paragraphs,
                       (const uint64_t *)v[MIX].buf, band_rows, (uint64_t)salt, group_limit,
                       threshold)) {
        PyErr_NoMemory();
        goto done;
    }
    const Py_ssize_t found = pairs.count;
    if (found > 1) {
        qsort(pairs.items, (size_t)found, sizeof(pair_t), compare_pairs);
    }
    runs = PyMem_Malloc(found ? (size_t)found * sizeof(run_t) : 1);
    pair_run = PyMem_Malloc(found ? (size_t)found * sizeof(Py_ssize_t) : 1);
    by_run = PyMem_Malloc(found ? (size_t)found * sizeof(Py_ssize_t) : 1);
    run_start = PyMem_Calloc((size_t)found + 1, sizeof(Py_ssize_t));
    filled = PyMem_Calloc(found ? (size_t)found : 1, sizeof(Py_ssize_t));
    order = PyMem_Malloc(found ? (size_t)found * sizeof(run_order) : 1);
    dropped = PyMem_Malloc(found ? (size_t)found : 1);
    taken = PyMem_Calloc(paragraphs ? (size_t)paragraphs : 1, 1);
    chosen = PyList_New(0);
    if (runs == NULL || pair_run == NULL || by_run == NULL || run_start == NULL
        || filled == NULL || order == NULL || dropped == NULL || taken == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (chosen == NULL) {
        goto done;
    }
    const Py_ssize_t made = chain_pairs(pairs.items, found, paragraphs, max_gap, word_counts,
                                        runs, pair_run, dropped);
    if (made < 0) {
        PyErr_NoMemory();
        goto done;
    }
    /* the pairs of each run, in order: run r's are by_run[run_start[r]:run_start[r + 1]] */
    for (Py_ssize_t p = 0; p < found; p++) {
        run_start[pair_run[p] + 1]++;
    }
    for (Py_ssize_t r = 0; r < made; r++) {
        run_start[r + 1] += run_start[r];
        order[r] = (run_order){{-(int64_t)runs[r].length, runs[r].i0, runs[r].j0}, r};
    }
    for (Py_ssize_t p = 0; p < found; p++) {
        by_run[run_start[pair_run[p]] + filled[pair_run[p]]++] = p;
    }
    qsort(order, (size_t)made, sizeof(run_order), compare_runs);
    Py_ssize_t claimed = 0;
    for (Py_ssize_t n = 0; n < made; n++) {
        const Py_ssize_t r = order[n].run;
        const run_t *run = &runs[r];
        if (run->words < min_words) {
            continue;
        }
        int copy_taken = 0, first_taken = 1;
        for (int64_t k = run->j0; k <= run->j1; k++) {
            copy_taken |= taken[k];
        }
        for (int64_t k = run->i0; k <= run->i1; k++) {
            first_taken &= taken[k];
        }
        if (copy_taken || first_taken) {
            continue;
        }
        for (int64_t k = run->j0; k <= run->j1; k++) {
            taken[k] = 1;
        }
        claimed += run->j1 - run->j0 + 1;
        PyObject *values[4];
        for (int what = 0; what < 4; what++) {
            values[what] = run_values(pairs.items, by_run + run_start[r],
                                      run_start[r + 1] - run_start[r], dropped, what);
        }
        PyObject *item = NULL;
        if (values[0] && values[1] && values[2] && values[3]) {
            item = Py_BuildValue("(LLLLOOOO)", (long long)run->i0, (long long)run->j0,
                                 (long long)run->i1, (long long)run->j1, values[0], values[1],
                                 values[2], values[3]);
        }
        for (int what = 0; what < 4; what++) {
            Py_XDECREF(values[what]);
        }
        if (item == NULL || PyList_Append(chosen, item) < 0) {
            Py_XDECREF(item);
            goto done;
        }
        Py_DECREF(item);
    }
    result = Py_BuildValue("(nO)", claimed, chosen);
done:
    Py_XDECREF(chosen);
    PyMem_Free(pairs.items);
    PyMem_Free(runs);
    PyMem_Free(pair_run);
    PyMem_Free(by_run);
    PyMem_Free(run_start);
    PyMem_Free(filled);
    PyMem_Free(order);
    PyMem_Free(dropped);
    PyMem_Free(taken);
    release(v, VIEWS);
    return result;
}

/* Py_UNICODE_ISALNUM (what str.isalnum and the re module's \w test) with its answers for
 * ASCII kept in a table, filled from it when the module loads: most characters of most pages
 * are ASCII, and the full test looks up to four Unicode tables. */
static unsigned char ascii_alnum[128];

static inline int
is_alnum(Py_UCS4 ch)
{
    return ch < 128 ? ascii_alnum[ch] : Py_UNICODE_ISALNUM(ch);
}

PyDoc_STRVAR(readable_pieces_doc,
"readable_pieces(text, separator, dropped) -> list[str]\n"
"--\n\n"
"The pieces of ``text`` between ``separator`` characters, the characters of ``dropped``\n"
"(all below U+0100) removed first, each piece's whitespace runs made one space and its\n"
"ends stripped (``\" \".join(piece.split())``), keeping the pieces that hold a letter or a\n"
"digit (``str.isalnum``).");

/* The ASCII letter lower-cased; any other character as it is. */
static inline Py_UCS4
ascii_lower(Py_UCS4 ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch;
}

/* What readable_pieces does with a character: keep it (and note a letter or digit), make it
 * part of a run of whitespace, drop it, or end the piece. */
enum { PIECE_CHAR, PIECE_ALNUM, PIECE_SPACE, PIECE_DROP, PIECE_CUT };

/* Pieces being cut: the one being made (``used`` characters of ``piece``, a space pending,
 * whether it holds a letter or digit) and the readable ones made so far. */
typedef struct {
    void *piece;
    PyObject *pieces;
    const unsigned char *classes;
    Py_UCS4 cut;
    Py_ssize_t used;
    int space, readable;
} piece_sink;

/* The piece made so far into the list when it is readable, and a new one begun; 0 on an
 * error. */
static DEDUP_INLINE int
piece_end(piece_sink *s, int kind)
{
    if (s->readable) {
        PyObject *found = PyUnicode_FromKindAndData(kind, s->piece, s->used);
        if (found == NULL || PyList_Append(s->pieces, found) < 0) {
            Py_XDECREF(found);
            return 0;
        }
        Py_DECREF(found);
    }
    s->used = 0;
    s->space = s->readable = 0;
    return 1;
}

/* One character of the text into the pieces; 0 on an error. */
static DEDUP_INLINE int
piece_char(piece_sink *s, int kind, Py_UCS4 ch)
{
    int what;
    if (ch < 256) {
        what = s->classes[ch];
    }
    else if (ch == s->cut) {
        what = PIECE_CUT;
    }
    else if (Py_UNICODE_ISSPACE(ch)) {
        what = PIECE_SPACE;
    }
    else {
        what = s->readable || !Py_UNICODE_ISALNUM(ch) ? PIECE_CHAR : PIECE_ALNUM;
    }
    if (what < PIECE_DROP) {
        /* without branches, which the spaces between words would mispredict: a kept
         * character writes the pending space (overwritten when there is none), then itself;
         * whitespace leaves a space pending once the piece has begun */
        const int keep = what != PIECE_SPACE;
        PyUnicode_WRITE(kind, s->piece, s->used, ' ');
        s->used += s->space & keep;
        PyUnicode_WRITE(kind, s->piece, s->used, ch);
        s->used += keep;
        s->space = !keep & (s->used > 0);
        s->readable |= what == PIECE_ALNUM;
        return 1;
    }
    return what == PIECE_CUT ? piece_end(s, kind) : 1;
}

/* The pieces of the text into the sink, inlined once per string kind so that each loop reads
 * and writes its kind directly. 0 on an error. The loop works on a copy of the sink, which
 * the compiler keeps in registers: nothing else can see it, while the sink itself may share
 * memory with the piece written through a character pointer. */
static DEDUP_INLINE int
cut_pieces(piece_sink *sink, int kind, const void *data, Py_ssize_t len)
{
    piece_sink s = *sink;
    int done = 1;
    for (Py_ssize_t i = 0; done && i < len; i++) {
        done = piece_char(&s, kind, PyUnicode_READ(kind, data, i));
    }
    done = done && piece_end(&s, kind);
    *sink = s;
    return done;
}

/* What readable_pieces does with each character below U+0100 unless it is dropped or the
 * separator: filled from CPython's str.isspace and str.isalnum when the module loads. */
static unsigned char piece_classes[256];

/* What cut_pieces does with each character below U+0100, the ``dropped`` ones and the
 * ``separator`` included, into ``classes``; 0 with a ValueError naming ``function`` when they
 * are not what it can follow. */
static int
piece_setup(PyObject *separator, PyObject *dropped, const char *function,
            unsigned char *classes, Py_UCS4 *cut)
{
    memcpy(classes, piece_classes, sizeof(piece_classes));
    for (Py_ssize_t i = 0; i < PyUnicode_GET_LENGTH(dropped); i++) {
        const Py_UCS4 ch = PyUnicode_READ_CHAR(dropped, i);
        if (ch > 255) {
            PyErr_Format(PyExc_ValueError, "%s: dropped characters below U+0100", function);
            return 0;
        }
        classes[ch] = PIECE_DROP;
    }
    if (PyUnicode_GET_LENGTH(separator) != 1) {
        PyErr_Format(PyExc_ValueError, "%s: the separator is one character", function);
        return 0;
    }
    *cut = PyUnicode_READ_CHAR(separator, 0);
    if (*cut < 256 && classes[*cut] == PIECE_DROP) {
        PyErr_Format(PyExc_ValueError, "%s: the separator cannot be dropped", function);
        return 0;
    }
    if (*cut < 256) {
        classes[*cut] = PIECE_CUT;
    }
    return 1;
}

/* A sink for pieces of at most ``len`` characters of ``kind``, cut with ``classes``; 0 when
 * memory ran out. */
static int
sink_pieces(piece_sink *s, int kind, Py_ssize_t len, const unsigned char *classes, Py_UCS4 cut)
{
    memset(s, 0, sizeof(*s));
    s->classes = classes;
    s->cut = cut;
    s->piece = PyMem_Malloc((size_t)(len + 1) * (size_t)kind);
    s->pieces = PyList_New(0);
    if (s->piece == NULL || s->pieces == NULL) {
        PyMem_Free(s->piece);
        Py_CLEAR(s->pieces);
        if (s->piece == NULL) {
            PyErr_NoMemory();
        }
        return 0;
    }
    return 1;
}

/* What cut_pieces does with each character (piece_setup) and a sink for the pieces of
 * ``text``; 0 with an exception set when the arguments do not fit or memory ran out. */
static int
open_pieces(piece_sink *s, unsigned char *classes, PyObject *text, PyObject *separator,
            PyObject *dropped, const char *function)
{
    Py_UCS4 cut;
    return piece_setup(separator, dropped, function, classes, &cut)
           && sink_pieces(s, PyUnicode_KIND(text), PyUnicode_GET_LENGTH(text), classes, cut);
}

/* The sink's list when ``done``, else NULL; its room freed. */
static PyObject *
sink_pieces_done(piece_sink *s, int done)
{
    PyMem_Free(s->piece);
    if (!done) {
        Py_CLEAR(s->pieces);
    }
    return s->pieces;
}

static PyObject *
minhash_readable_pieces(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *text, *separator, *dropped;
    if (!PyArg_ParseTuple(args, "UUU", &text, &separator, &dropped)) {
        return NULL;
    }
    unsigned char classes[256];
    piece_sink s;
    if (!open_pieces(&s, classes, text, separator, dropped, "readable_pieces")) {
        return NULL;
    }
    int done;
    FOR_EACH_KIND(PyUnicode_KIND(text), K,
                  done = cut_pieces(&s, K, PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text)));
    return sink_pieces_done(&s, done);
}

PyDoc_STRVAR(markup_pieces_doc,
"markup_pieces(markup, starts, ends, separator, dropped) -> list[str] | None\n"
"--\n\n"
"readable_pieces of the text the parser's tree would give for ``markup`` made only of\n"
"text, tags ``<name>`` of the ``starts`` names and ``</name>`` of the ``ends`` names (a\n"
"tuple each of lower-case ASCII names, matched in either case; each tag cuts the text as\n"
"the separator does), and the character references &amp; &lt; &gt; &quot; &#x27; &#39;\n"
"&nbsp;. None for any other markup (another tag, '<' in text, another reference) or a lone\n"
"surrogate.");

#define MAX_TAG_NAME 16

/* A tag's lower-case name from ``i`` (past ``<`` and any ``/``) when it is ASCII letters and
 * digits followed by ``>``; its length, 0 otherwise, and *end past the ``>``. */
static DEDUP_INLINE int
tag_name(int kind, const void *data, Py_ssize_t len, Py_ssize_t i, char *name,
         Py_ssize_t *end)
{
    int n = 0;
    for (; i < len && n < MAX_TAG_NAME; i++, n++) {
        const Py_UCS4 ch = ascii_lower(PyUnicode_READ(kind, data, i));
        if (!((ch >= 'a' && ch <= 'z') || (n > 0 && ch >= '0' && ch <= '9'))) {
            break;
        }
        name[n] = (char)ch;
    }
    if (n == 0 || i >= len || PyUnicode_READ(kind, data, i) != '>') {
        return 0;
    }
    name[n] = '\0';
    *end = i + 1;
    return n;
}

static int
named(const char *name, PyObject *names)
{
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(names); k++) {
        if (strcmp(name, (const char *)PyUnicode_1BYTE_DATA(PyTuple_GET_ITEM(names, k))) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The references markup_pieces decodes, and what they stand for. */
static const struct {
    const char *name;
    Py_UCS4 value;
} plain_references[] = {{"amp;", '&'},  {"lt;", '<'},  {"gt;", '>'},     {"quot;", '"'},
                        {"#x27;", '\''}, {"#39;", '\''}, {"nbsp;", 0xA0}};

/* The markup's text into the sink, each tag cutting it as the separator does: 1 when done,
 * 0 on an error, -1 when the markup holds anything else. */
static DEDUP_INLINE int
plain_runs(piece_sink *s, int kind, const void *data, Py_ssize_t len, PyObject *starts,
           PyObject *ends)
{
    Py_ssize_t i = 0;
    char name[MAX_TAG_NAME + 1];
    while (i < len) {
        const Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (ch == '<') {
            const int closing = i + 1 < len && PyUnicode_READ(kind, data, i + 1) == '/';
            Py_ssize_t end;
            if (!tag_name(kind, data, len, i + 1 + closing, name, &end)
                || !named(name, closing ? ends : starts)) {
                return -1;
            }
            if (!piece_end(s, kind)) {
                return 0;
            }
            i = end;
            continue;
        }
        Py_UCS4 value = ch;
        if (ch == '&') {
            value = 0;
            for (size_t r = 0; !value && r < sizeof(plain_references) / sizeof(*plain_references);
                 r++) {
                const char *reference = plain_references[r].name;
                Py_ssize_t j = 0;
                while (reference[j] && i + 1 + j < len
                       && PyUnicode_READ(kind, data, i + 1 + j) == (Py_UCS4)reference[j]) {
                    j++;
                }
                if (!reference[j]) {
                    value = plain_references[r].value;
                    i += j;
                }
            }
            if (!value) {
                return -1;
            }
        }
        else if (Py_UNICODE_IS_SURROGATE(ch)) {
            return -1;
        }
        if (!piece_char(s, kind, value)) {
            return 0;
        }
        i++;
    }
    return piece_end(s, kind);
}

/* plain_runs on a copy of the sink, kept in registers (as in cut_pieces). */
static DEDUP_INLINE int
plain_text(piece_sink *sink, int kind, const void *data, Py_ssize_t len, PyObject *starts,
           PyObject *ends)
{
    piece_sink s = *sink;
    const int done = plain_runs(&s, kind, data, len, starts, ends);
    *sink = s;
    return done;
}

static int
lower_ascii_names(PyObject *names)
{
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(names); k++) {
        PyObject *name = PyTuple_GET_ITEM(names, k);
        if (!PyUnicode_Check(name) || !PyUnicode_IS_ASCII(name)
            || PyUnicode_GET_LENGTH(name) > MAX_TAG_NAME) {
            return 0;
        }
        const Py_UCS1 *chars = PyUnicode_1BYTE_DATA(name);
        for (Py_ssize_t j = 0; j < PyUnicode_GET_LENGTH(name); j++) {
            if (ascii_lower(chars[j]) != chars[j]) {
                return 0;
            }
        }
    }
    return 1;
}

static PyObject *
minhash_markup_pieces(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *markup, *starts, *ends, *separator, *dropped;
    if (!PyArg_ParseTuple(args, "UO!O!UU", &markup, &PyTuple_Type, &starts, &PyTuple_Type,
                          &ends, &separator, &dropped)) {
        return NULL;
    }
    if (!lower_ascii_names(starts) || !lower_ascii_names(ends)) {
        PyErr_SetString(PyExc_ValueError,
                        "markup_pieces: tag names are lower-case ASCII, at most 16 characters");
        return NULL;
    }
    unsigned char classes[256];
    piece_sink s;
    if (!open_pieces(&s, classes, markup, separator, dropped, "markup_pieces")) {
        return NULL;
    }
    const Py_ssize_t len = PyUnicode_GET_LENGTH(markup);
    const void *data = PyUnicode_DATA(markup);
    int done;
    FOR_EACH_KIND(PyUnicode_KIND(markup), K,
                  done = plain_text(&s, K, data, len, starts, ends));
    if (done < 0) {
        sink_pieces_done(&s, 0);
        Py_RETURN_NONE;
    }
    return sink_pieces_done(&s, done);
}

PyDoc_STRVAR(holds_doc,
"holds(text, needles) -> int\n"
"--\n\n"
"Which of ``needles`` (a tuple of at most 64 non-empty ASCII str) occur in ``text``, ASCII\n"
"letters matching in either case and nothing else: bit k of the result is set when\n"
"needles[k] occurs. One pass for what took a search of the whole text each.");

#define MAX_NEEDLES 64

/* The needles of holds, lower-cased; ``first[c]`` the needles starting with ASCII character c
 * in either case. */
typedef struct {
    const char *text[MAX_NEEDLES];
    Py_ssize_t len[MAX_NEEDLES];
    uint64_t first[128];
    uint64_t all;
} needle_set;

/* The needles found in the text, inlined once per string kind. */
static DEDUP_INLINE uint64_t
find_needles(int kind, const void *data, Py_ssize_t len, const needle_set *set)
{
    uint64_t found = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        const Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        const uint64_t candidates = ch < 128 ? set->first[ch] & ~found : 0;
        if (!candidates) {
            continue;
        }
        for (int k = 0; k < MAX_NEEDLES && candidates >> k; k++) {
            if (!((candidates >> k) & 1)) {
                continue;
            }
            const Py_ssize_t n = set->len[k];
            Py_ssize_t j = 1;
            while (j < n && i + j < len
                   && ascii_lower(PyUnicode_READ(kind, data, i + j)) == (Py_UCS4)set->text[k][j]) {
                j++;
            }
            if (j == n) {
                found |= (uint64_t)1 << k;
            }
        }
        if (found == set->all) {
            break;
        }
    }
    return found;
}

static PyObject *
minhash_holds(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *text, *needles;
    if (!PyArg_ParseTuple(args, "UO!", &text, &PyTuple_Type, &needles)) {
        return NULL;
    }
    const Py_ssize_t count = PyTuple_GET_SIZE(needles);
    needle_set set;
    memset(&set, 0, sizeof(set));
    char lowered[MAX_NEEDLES][32];
    int fits = count <= MAX_NEEDLES;
    for (Py_ssize_t k = 0; fits && k < count; k++) {
        PyObject *needle = PyTuple_GET_ITEM(needles, k);
        fits = PyUnicode_Check(needle) && PyUnicode_IS_ASCII(needle)
               && PyUnicode_GET_LENGTH(needle) >= 1 && PyUnicode_GET_LENGTH(needle) < 32;
        if (fits) {
            const Py_ssize_t n = PyUnicode_GET_LENGTH(needle);
            const Py_UCS1 *chars = PyUnicode_1BYTE_DATA(needle);
            for (Py_ssize_t j = 0; j < n; j++) {
                lowered[k][j] = (char)ascii_lower(chars[j]);
            }
            set.text[k] = lowered[k];
            set.len[k] = n;
            const unsigned char first = (unsigned char)chars[0];
            set.first[ascii_lower(first)] |= (uint64_t)1 << k;
            set.first[first >= 'a' && first <= 'z' ? first - ('a' - 'A') : first] |= (uint64_t)1
                                                                                    << k;
            set.all |= (uint64_t)1 << k;
        }
    }
    if (!fits) {
        PyErr_SetString(PyExc_ValueError,
                        "holds: at most 64 needles, each an ASCII str of 1 to 31 characters");
        return NULL;
    }
    const Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    const void *data = PyUnicode_DATA(text);
    uint64_t found;
    FOR_EACH_KIND(PyUnicode_KIND(text), K, found = find_needles(K, data, len, &set));
    return PyLong_FromUnsignedLongLong(found);
}

PyDoc_STRVAR(word_runs_doc,
"word_runs(text) -> str\n"
"--\n\n"
"``re.sub(r\"[^\\w\\n]+\", \" \", text)``: every run of characters that are neither word\n"
"characters nor line breaks becomes one space.");

/* The characters of a str argument; 0 with a TypeError naming ``function`` otherwise. */
typedef struct {
    Py_ssize_t len;
    int kind;
    const void *data;
} text_view;

static int
view_text(PyObject *text, const char *function, text_view *view)
{
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "%s: text must be a str", function);
        return 0;
    }
    view->len = PyUnicode_GET_LENGTH(text);
    view->kind = PyUnicode_KIND(text);
    view->data = PyUnicode_DATA(text);
    return 1;
}

static PyObject *
minhash_word_runs(PyObject *Py_UNUSED(module), PyObject *text)
{
    text_view view;
    if (!view_text(text, "word_runs", &view)) {
        return NULL;
    }
    char *out = PyMem_Malloc(view.len ? (size_t)(view.len * view.kind) : 1);
    if (out == NULL) {
        return PyErr_NoMemory();
    }
    Py_ssize_t used = 0;
    int gap = 0;
    for (Py_ssize_t i = 0; i < view.len; i++) {
        const Py_UCS4 ch = PyUnicode_READ(view.kind, view.data, i);
        if (ch == '\n' || ch == '_' || is_alnum(ch)) {
            if (gap) {
                PyUnicode_WRITE(view.kind, out, used++, ' ');
                gap = 0;
            }
            PyUnicode_WRITE(view.kind, out, used++, ch);
        }
        else {
            gap = 1;
        }
    }
    if (gap) {
        PyUnicode_WRITE(view.kind, out, used++, ' ');
    }
    /* made anew from the characters, so that its kind is the smallest that holds them */
    PyObject *result = PyUnicode_FromKindAndData(view.kind, out, used);
    PyMem_Free(out);
    return result;
}

/* Whether a character is a word character (``\w``: alphanumeric or ``_``): ASCII from
 * ascii_word, the rest of the Basic Multilingual Plane from a bitmap filled from
 * Py_UNICODE_ISALNUM on first use (up to four Unicode table lookups a character otherwise),
 * other planes from Py_UNICODE_ISALNUM itself. */
static unsigned char bmp_word[0x10000 / 8];
static int bmp_word_ready;

static void
fill_bmp_word(void)
{
    for (Py_UCS4 ch = 0; ch < 0x10000; ch++) {
        if (ch == '_' || Py_UNICODE_ISALNUM(ch)) {
            bmp_word[ch >> 3] |= (unsigned char)(1u << (ch & 7));
        }
    }
    bmp_word_ready = 1;
}

/* For each ASCII character: itself case-folded when it is a word character, else 0. Filled
 * from CPython's own tests when the module loads. */
static unsigned char ascii_word[128];

static inline int
is_word(Py_UCS4 ch)
{
    if (ch < 128) {
        return ascii_word[ch] != 0;
    }
    if (ch < 0x10000) {
        return (bmp_word[ch >> 3] >> (ch & 7)) & 1;
    }
    return Py_UNICODE_ISALNUM(ch);
}

/* Words cut, hashed, counted and fingerprinted as they are found, without a laid-out text in
 * between: each word's UTF-8 bytes go into ``joined`` (the line's words joined by single
 * spaces) and are hashed from there, as hash_words does with a laid-out text. */
typedef struct {
    uint64_t *hashes;
    int64_t *counts;
    uint64_t *prints;
    unsigned char *joined;
    Py_ssize_t words, lines, line_words, used, start;
    int in_word;
} word_sink;

/* A word begun unless one is being made: after a space when the line has words already. */
static inline void
sink_begin(word_sink *s)
{
    if (!s->in_word) {
        if (s->line_words) {
            s->joined[s->used++] = ' ';
        }
        s->start = s->used;
        s->in_word = 1;
    }
}

/* ``count`` bytes added to the word being made, or to a new one after a space. */
static inline void
sink_bytes(word_sink *s, const unsigned char *from, uint32_t count)
{
    sink_begin(s);
    for (uint32_t b = 0; b < count; b++) {
        s->joined[s->used++] = from[b];
    }
}

/* A character added to the word being made, as UTF-8. */
static inline void
sink_char(word_sink *s, Py_UCS4 ch)
{
    unsigned char out[4];
    uint32_t count;
    if (ch < 0x80) {
        out[0] = (unsigned char)ch;
        count = 1;
    }
    else if (ch < 0x800) {
        out[0] = (unsigned char)(0xC0 | (ch >> 6));
        out[1] = (unsigned char)(0x80 | (ch & 0x3F));
        count = 2;
    }
    else if (ch < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (ch >> 12));
        out[1] = (unsigned char)(0x80 | ((ch >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (ch & 0x3F));
        count = 3;
    }
    else {
        out[0] = (unsigned char)(0xF0 | (ch >> 18));
        out[1] = (unsigned char)(0x80 | ((ch >> 12) & 0x3F));
        out[2] = (unsigned char)(0x80 | ((ch >> 6) & 0x3F));
        out[3] = (unsigned char)(0x80 | (ch & 0x3F));
        count = 4;
    }
    sink_bytes(s, out, count);
}

static inline void
sink_gap(word_sink *s)
{
    if (s->in_word) {
        s->hashes[s->words++] = xxh64(s->joined + s->start, (size_t)(s->used - s->start));
        s->line_words++;
        s->in_word = 0;
    }
}

static inline void
sink_line(word_sink *s)
{
    sink_gap(s);
    s->counts[s->lines] = s->line_words;
    s->prints[s->lines] = xxh64(s->joined, (size_t)s->used);
    s->lines++;
    s->line_words = 0;
    s->used = 0;
}

/* Room for the words and lines of ``chars`` characters in ``lines`` lines, when a character
 * makes at most ``words_each`` words and adds at most ``bytes_each`` bytes of UTF-8 with the
 * spaces before its words. */
static int
sink_open(word_sink *s, Py_ssize_t chars, Py_ssize_t lines, Py_ssize_t words_each,
          Py_ssize_t bytes_each)
{
    memset(s, 0, sizeof(*s));
    s->hashes = PyMem_Malloc((size_t)(chars * words_each + 1) * sizeof(uint64_t));
    s->counts = PyMem_Malloc((size_t)(lines + 1) * sizeof(int64_t));
    s->prints = PyMem_Malloc((size_t)(lines + 1) * sizeof(uint64_t));
    s->joined = PyMem_Malloc((size_t)(bytes_each * chars + 1));
    if (s->hashes == NULL || s->counts == NULL || s->prints == NULL || s->joined == NULL) {
        PyErr_NoMemory();
        return 0;
    }
    return 1;
}

static void
sink_free(word_sink *s)
{
    PyMem_Free(s->hashes);
    PyMem_Free(s->counts);
    PyMem_Free(s->prints);
    PyMem_Free(s->joined);
}

/* (hashes, counts, fingerprints) as bytes of uint64, int64 and uint64 values. */
static PyObject *
sink_result(word_sink *s)
{
    return Py_BuildValue("(y#y#y#)", (const char *)s->hashes, s->words * 8,
                         (const char *)s->counts, s->lines * 8, (const char *)s->prints,
                         s->lines * 8);
}

/* An entry of the character table of table_words: what a character becomes in a word. */
#define TABLE_GAP 0u
#define TABLE_UNKNOWN 0xFFFFFFFFu
#define TABLE_WORD 0x80u   /* a word by itself (a CJK character) */
#define TABLE_GAPS 0x40u   /* bytes whose spaces lie between words */
#define TABLE_LENGTH 0x3Fu /* the length of its bytes in the pool */
#define TABLE_BYTES 8      /* the most bytes an entry adds */

/* One paragraph of table_words into the sink; 0 at the first character the table does not
 * know. Inlined once per string kind, so that each loop reads its kind directly. */
static DEDUP_INLINE int
table_chars(word_sink *s, int kind, const void *data, Py_ssize_t len,
            const uint32_t *restrict table, Py_ssize_t known, const unsigned char *pool,
            const unsigned char *restrict ascii)
{
    Py_ssize_t i = 0;
    while (i < len) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (ch < 128 && ascii[ch]) {
            /* a run of ASCII characters that are one byte of a word each, the most common
             * case, copied without looking at their entries */
            sink_begin(s);
            unsigned char *out = s->joined + s->used;
            do {
                *out++ = ascii[ch];
                i++;
            } while (i < len && (ch = PyUnicode_READ(kind, data, i)) < 128 && ascii[ch]);
            s->used = out - s->joined;
            continue;
        }
        i++;
        const uint32_t entry = ch < (Py_UCS4)known ? table[ch] : TABLE_UNKNOWN;
        if (entry == TABLE_UNKNOWN) {
            return 0;
        }
        if (entry == TABLE_GAP) {
            sink_gap(s);
            continue;
        }
        const unsigned char *from = pool + (entry >> 8);
        const uint32_t bytes = entry & TABLE_LENGTH;
        if (entry & TABLE_GAPS) {
            for (uint32_t b = 0; b < bytes; b++) {
                if (from[b] == ' ') {
                    sink_gap(s);
                }
                else {
                    sink_bytes(s, from + b, 1);
                }
            }
            continue;
        }
        if (entry & TABLE_WORD) {
            sink_gap(s);
        }
        sink_bytes(s, from, bytes);
        if (entry & TABLE_WORD) {
            sink_gap(s);
        }
    }
    return 1;
}

/* The table set by set_char_table: its entries, how many, and the pool they point into. */
static uint32_t *char_table;
static Py_ssize_t char_table_known;
static unsigned char *char_pool;
/* For each ASCII character whose entry is one byte of a word: that byte; else 0. */
static unsigned char char_table_ascii[128];

PyDoc_STRVAR(set_char_table_doc,
"set_char_table(table, pool)\n"
"--\n\n"
"Keep a copy of the character table of table_words: ``table`` (uint32, one entry per code\n"
"point from 0) holds 0 for a character between words, 0xFFFFFFFF for one table_words does\n"
"not know, else the offset (high 24 bits) and length (low 6 bits, 1 to 8) in ``pool`` of\n"
"the UTF-8 bytes the character adds to its word, 0x80 when they are a word by themselves\n"
"and 0x40 when their spaces lie between words.");

static PyObject *
minhash_set_char_table(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer table, pool;
    if (!PyArg_ParseTuple(args, "y*y*", &table, &pool)) {
        return NULL;
    }
    const uint32_t *entries = (const uint32_t *)table.buf;
    const Py_ssize_t known = table.len / 4;
    int fits = table.len % 4 == 0;
    for (Py_ssize_t c = 0; fits && c < known; c++) {
        const uint32_t entry = entries[c];
        fits = entry == TABLE_GAP || entry == TABLE_UNKNOWN
               || ((entry & TABLE_LENGTH) >= 1 && (entry & TABLE_LENGTH) <= TABLE_BYTES
                   && (Py_ssize_t)(entry >> 8) + (entry & TABLE_LENGTH) <= pool.len);
    }
    uint32_t *copied = fits ? PyMem_Malloc(table.len ? (size_t)table.len : 1) : NULL;
    unsigned char *copied_pool = fits ? PyMem_Malloc(pool.len ? (size_t)pool.len : 1) : NULL;
    if (copied != NULL && copied_pool != NULL) {
        memcpy(copied, table.buf, (size_t)table.len);
        memcpy(copied_pool, pool.buf, (size_t)pool.len);
    }
    PyBuffer_Release(&table);
    PyBuffer_Release(&pool);
    if (!fits) {
        PyErr_SetString(PyExc_ValueError,
                        "set_char_table: table must hold uint32 entries of 1 to 4 bytes "
                        "within pool");
        return NULL;
    }
    if (copied == NULL || copied_pool == NULL) {
        PyMem_Free(copied);
        PyMem_Free(copied_pool);
        return PyErr_NoMemory();
    }
    PyMem_Free(char_table);
    PyMem_Free(char_pool);
    char_table = copied;
    char_pool = copied_pool;
    char_table_known = known;
    for (Py_ssize_t c = 0; c < 128; c++) {
        const uint32_t entry = c < known ? copied[c] : TABLE_UNKNOWN;
        const int one_byte = entry != TABLE_GAP && entry != TABLE_UNKNOWN
                             && (entry & ~(0xFFFFFF00u | TABLE_LENGTH)) == 0
                             && (entry & TABLE_LENGTH) == 1;
        char_table_ascii[c] = one_byte ? copied_pool[entry >> 8] : 0;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(table_words_doc,
"table_words(paragraphs) -> tuple[bytes, bytes, bytes] | None\n"
"--\n\n"
"The words of each paragraph (a list of str) hashed, counted and fingerprinted as\n"
"hash_words does with the laid-out text, each character taken for what the table of\n"
"set_char_table says it becomes. None as soon as a character is not known (or no table was\n"
"set). Returns the word hashes (uint64), the word counts (int64) and the fingerprints\n"
"(uint64).");

static PyObject *
minhash_table_words(PyObject *Py_UNUSED(module), PyObject *paragraphs)
{
    if (!PyList_Check(paragraphs)) {
        PyErr_SetString(PyExc_TypeError, "table_words: paragraphs must be a list of str");
        return NULL;
    }
    const Py_ssize_t count = PyList_GET_SIZE(paragraphs);
    Py_ssize_t chars = 0;
    for (Py_ssize_t p = 0; p < count; p++) {
        PyObject *paragraph = PyList_GET_ITEM(paragraphs, p);
        if (!PyUnicode_Check(paragraph)) {
            PyErr_SetString(PyExc_TypeError, "table_words: paragraphs must be a list of str");
            return NULL;
        }
        chars += PyUnicode_GET_LENGTH(paragraph) + 1;
    }
    if (char_table == NULL) {
        Py_RETURN_NONE;
    }
    const uint32_t *entries = char_table;
    const Py_ssize_t known = char_table_known;
    word_sink s;
    PyObject *result = NULL;
    /* ``½`` makes two words of one character: TABLE_BYTES bytes with a space before each */
    if (!sink_open(&s, chars, count, TABLE_BYTES / 2, 2 * TABLE_BYTES)) {
        goto done;
    }
    const unsigned char *bytes = char_pool;
    const unsigned char *ascii = char_table_ascii;
    for (Py_ssize_t p = 0; p < count; p++) {
        PyObject *paragraph = PyList_GET_ITEM(paragraphs, p);
        const Py_ssize_t len = PyUnicode_GET_LENGTH(paragraph);
        const void *data = PyUnicode_DATA(paragraph);
        int found;
        FOR_EACH_KIND(PyUnicode_KIND(paragraph), K,
                      found = table_chars(&s, K, data, len, entries, known, bytes, ascii));
        if (!found) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        sink_line(&s);
    }
    result = sink_result(&s);
done:
    sink_free(&s);
    return result;
}

/* The characters of hash_word_runs into the sink, inlined once per string kind. */
static DEDUP_INLINE void
run_chars(word_sink *s, int kind, const void *data, Py_ssize_t len)
{
    for (Py_ssize_t i = 0; i < len; i++) {
        const Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (ch == '\n') {
            sink_line(s);
        }
        else if (is_word(ch)) {
            sink_char(s, ch);
        }
        else {
            sink_gap(s);
        }
    }
}

PyDoc_STRVAR(hash_word_runs_doc,
"hash_word_runs(text) -> tuple[bytes, bytes, bytes]\n"
"--\n\n"
"hash_words(word_runs(text).encode(), ...) without the text in between: the runs of word\n"
"characters (``\\w``) of each line of ``text``, hashed (XXH64 of their UTF-8 bytes),\n"
"counted and fingerprinted. Returns the word hashes (uint64), the word counts per line\n"
"(int64) and the fingerprints (uint64).");

static PyObject *
minhash_hash_word_runs(PyObject *Py_UNUSED(module), PyObject *text)
{
    text_view view;
    if (!view_text(text, "hash_word_runs", &view)) {
        return NULL;
    }
    const Py_ssize_t len = view.len;
    const int kind = view.kind;
    const void *data = view.data;
    Py_ssize_t lines = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        lines += PyUnicode_READ(kind, data, i) == '\n';
    }
    if (!bmp_word_ready) {
        fill_bmp_word();
    }
    word_sink s;
    PyObject *result = NULL;
    /* a word takes a character and the one after it; a character four bytes and a space */
    if (sink_open(&s, len + 1, lines + 1, 1, 5)) {
        FOR_EACH_KIND(kind, K, run_chars(&s, K, data, len));
        sink_line(&s);
        result = sink_result(&s);
    }
    sink_free(&s);
    return result;
}

static PyMethodDef minhash_methods[] = {
    {"set_char_table", minhash_set_char_table, METH_VARARGS, set_char_table_doc},
    {"table_words", minhash_table_words, METH_O, table_words_doc},
    {"hash_word_runs", minhash_hash_word_runs, METH_O, hash_word_runs_doc},
    {"word_runs", minhash_word_runs, METH_O, word_runs_doc},
    {"readable_pieces", minhash_readable_pieces, METH_VARARGS, readable_pieces_doc},
    {"holds", minhash_holds, METH_VARARGS, holds_doc},
    {"markup_pieces", minhash_markup_pieces, METH_VARARGS, markup_pieces_doc},
    {"repeat_runs", minhash_repeat_runs, METH_VARARGS, repeat_runs_doc},
    {"hash_words", minhash_hash_words, METH_VARARGS, hash_words_doc},
    {"paragraph_pieces", minhash_paragraph_pieces, METH_VARARGS, paragraph_pieces_doc},
    {"shingle_fill", minhash_shingle_fill, METH_VARARGS, shingle_fill_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef minhash_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "dedup.pipeline._minhash",
    .m_doc = "Compiled kernel of dedup.pipeline.text and dedup.pipeline.signature (optional).",
    .m_size = 0,
    .m_methods = minhash_methods,
};

PyMODINIT_FUNC
PyInit__minhash(void)
{
    for (Py_UCS4 ch = 0; ch < 128; ch++) {
        ascii_alnum[ch] = Py_UNICODE_ISALNUM(ch) ? 1 : 0;
        ascii_word[ch] = ascii_alnum[ch] || ch == '_' ? (unsigned char)Py_UNICODE_TOLOWER(ch) : 0;
    }
    for (Py_UCS4 ch = 0; ch < 256; ch++) {
        piece_classes[ch] = Py_UNICODE_ISSPACE(ch)   ? PIECE_SPACE
                            : Py_UNICODE_ISALNUM(ch) ? PIECE_ALNUM
                                                     : PIECE_CHAR;
    }
    return PyModuleDef_Init(&minhash_module);
}
