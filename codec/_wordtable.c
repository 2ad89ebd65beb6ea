/* The word table's two loops (codec/wordtable.py gives the grammar), one pass each over the octets.
 *
 * index(words) -> bytes: hash slots over `words` (a tuple of distinct bytes, entry i has code i).
 * encode(data, words, slots) -> bytes: the same output as WordTable._encode_python.
 * decode(data, words, limit) -> bytes: `words` is the table (a tuple of bytes, entry i has code i),
 *     `limit` the most octets the output may have (-1: none); raises ValueError(message) on a
 *     corrupt payload, as WordTable._decode_python raises CorruptPayload.
 *
 * Plain C99 and the stable part of the CPython API; built by setuptools on install. The Python
 * versions in wordtable.py stay the reference the property tests compare against.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#define N_SINGLES 89
#define MAX_WORD 64

static int16_t single_index[256]; /* one-octet code -> entry, else -1 */
static int16_t lead_index[256];   /* two-octet code lead -> 0..11, else -1 */
static uint8_t reserved[256];
static uint8_t letter[256];
static uint8_t seq_len[256]; /* continuation octets a UTF-8 lead takes (1..3), else 0 */
static uint8_t single_octet[N_SINGLES]; /* entry -> its one-octet code */
static const uint8_t lead_octet[12] = {0xC0, 0xC1, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE};

#define SLOTS 8192 /* open addressing over the words (at most 3161): uint16 entry + 1, 0 = empty */

static void init_tables(void) {
    int i, n = 0;
    for (i = 0; i < 256; i++) {
        single_index[i] = -1;
        lead_index[i] = -1;
        reserved[i] = i >= 0x80;
        letter[i] = (i >= 'A' && i <= 'Z') || (i >= 'a' && i <= 'z');
        seq_len[i] = i >= 0xC2 && i <= 0xDF ? 1 : i >= 0xE0 && i <= 0xEF ? 2 : i >= 0xF0 && i <= 0xF4 ? 3 : 0;
    }
    for (i = 0x01; i < 0x20; i++) {
        if (i >= 0x09 && i <= 0x0D) continue;
        if (i == 0x1B) continue;
        single_octet[n] = (uint8_t)i;
        single_index[i] = (int16_t)n++;
        reserved[i] = 1;
    }
    for (i = 0x80; i < 0xC0; i++) {
        single_octet[n] = (uint8_t)i;
        single_index[i] = (int16_t)n++;
    }
    lead_index[0xC0] = 0;
    lead_index[0xC1] = 1;
    for (i = 0xF5; i < 0xFF; i++) lead_index[i] = (int16_t)(i - 0xF5 + 2);
}

/* A UTF-8 sequence at data[i]: its length (2..4), else 0. */
static inline Py_ssize_t sequence_at(const uint8_t *data, Py_ssize_t n, Py_ssize_t i) {
    Py_ssize_t k = seq_len[data[i]], j;
    if (!k || i + k >= n) return 0;
    for (j = 1; j <= k; j++)
        if ((data[i + j] & 0xC0) != 0x80) return 0;
    return k + 1;
}

typedef struct {
    uint8_t *buf;
    Py_ssize_t len, cap;
} out_t;

static int out_reserve(out_t *out, Py_ssize_t more) {
    if (out->len + more <= out->cap) return 0;
    Py_ssize_t cap = out->cap * 2;
    if (cap < out->len + more) cap = out->len + more;
    uint8_t *grown = PyMem_Realloc(out->buf, (size_t)cap);
    if (!grown) {
        PyErr_NoMemory();
        return -1;
    }
    out->buf = grown;
    out->cap = cap;
    return 0;
}

static inline int out_put(out_t *out, const void *src, Py_ssize_t size) {
    if (out_reserve(out, size) < 0) return -1;
    memcpy(out->buf + out->len, src, (size_t)size);
    out->len += size;
    return 0;
}

static PyObject *out_finish(out_t *out) {
    PyObject *result = PyBytes_FromStringAndSize((const char *)out->buf, out->len);
    PyMem_Free(out->buf);
    return result;
}

static inline uint32_t hash(const uint8_t *token, Py_ssize_t size) {
    uint32_t h = 2166136261u;
    for (Py_ssize_t j = 0; j < size; j++) h = (h ^ token[j]) * 16777619u;
    return h;
}

/* The entry of `token` among `words` through `slots` (see index()), else -1; -2 when `slots` names
   an entry past `words` or one that is not bytes (slots that are not index(words)). */
static inline Py_ssize_t lookup(PyObject *words, const uint16_t *slots, const uint8_t *token, Py_ssize_t size) {
    uint32_t slot = hash(token, size) & (SLOTS - 1);
    for (;; slot = (slot + 1) & (SLOTS - 1)) {
        uint16_t entry = slots[slot];
        if (!entry) return -1;
        if (entry > PyTuple_GET_SIZE(words)) return -2;
        PyObject *word = PyTuple_GET_ITEM(words, entry - 1);
        if (!PyBytes_Check(word)) return -2;
        if (PyBytes_GET_SIZE(word) == size && !memcmp(PyBytes_AS_STRING(word), token, (size_t)size)) return entry - 1;
    }
}

static int put_code(out_t *out, Py_ssize_t entry) {
    uint8_t code[2];
    if (entry < N_SINGLES) {
        code[0] = single_octet[entry];
        return out_put(out, code, 1);
    }
    code[0] = lead_octet[(entry - N_SINGLES) / 256];
    code[1] = (uint8_t)((entry - N_SINGLES) % 256);
    return out_put(out, code, 2);
}

/* The number of words only: each word's type is checked where it is used, not on every call (a
   table of 3,161 words costs microseconds to walk, as much as a 2 KB payload takes to decode). */
static int check_words(PyObject *words) {
    if (PyTuple_GET_SIZE(words) > N_SINGLES + 12 * 256) {
        PyErr_SetString(PyExc_ValueError, "more words than codes");
        return -1;
    }
    return 0;
}

static int not_bytes(void) {
    PyErr_SetString(PyExc_TypeError, "word table words must be bytes (and slots index(words))");
    return -1;
}

/* index(words) -> bytes: the hash slots encode() looks words up in (distinct words assumed). */
static PyObject *index_words(PyObject *self, PyObject *args) {
    PyObject *words;
    if (!PyArg_ParseTuple(args, "O!:index", &PyTuple_Type, &words)) return NULL;
    if (check_words(words) < 0) return NULL;
    PyObject *result = PyBytes_FromStringAndSize(NULL, SLOTS * sizeof(uint16_t));
    if (!result) return NULL;
    uint16_t *slots = (uint16_t *)PyBytes_AS_STRING(result);
    memset(slots, 0, SLOTS * sizeof(uint16_t));
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(words); k++) {
        PyObject *word = PyTuple_GET_ITEM(words, k);
        if (!PyBytes_Check(word)) {
            Py_DECREF(result);
            not_bytes();
            return NULL;
        }
        uint32_t slot = hash((const uint8_t *)PyBytes_AS_STRING(word), PyBytes_GET_SIZE(word)) & (SLOTS - 1);
        while (slots[slot]) slot = (slot + 1) & (SLOTS - 1);
        slots[slot] = (uint16_t)(k + 1);
    }
    return result;
}

static PyObject *encode(PyObject *self, PyObject *args) {
    Py_buffer view, slots_view;
    PyObject *words;
    if (!PyArg_ParseTuple(args, "y*O!y*:encode", &view, &PyTuple_Type, &words, &slots_view)) return NULL;
    if (slots_view.len != SLOTS * (Py_ssize_t)sizeof(uint16_t) || check_words(words) < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "encode: slots are not index(words)");
        PyBuffer_Release(&slots_view);
        PyBuffer_Release(&view);
        return NULL;
    }
    const uint16_t *slots = slots_view.buf;
    const uint8_t *data = view.buf;
    Py_ssize_t n = view.len, i = 0;
    out_t out = {PyMem_Malloc((size_t)n + 16), 0, n + 16};
    if (!out.buf) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    while (i < n) {
        uint8_t octet = data[i];
        Py_ssize_t start = i, k;
        if (letter[octet] || (octet == ' ' && i + 1 < n && letter[data[i + 1]])) {
            i++;
            while (i < n && letter[data[i]]) i++;
            Py_ssize_t size = i - start;
            Py_ssize_t entry = -1;
            if (size <= MAX_WORD) {
                entry = lookup(words, slots, data + start, size);
                if (entry == -1 && octet == ' ') {
                    entry = lookup(words, slots, data + start + 1, size - 1);
                    if (entry >= 0 && out_put(&out, " ", 1) < 0) goto fail;
                }
                if (entry == -2) {
                    not_bytes();
                    goto fail;
                }
            }
            if (entry >= 0) {
                if (put_code(&out, entry) < 0) goto fail;
            } else if (out_put(&out, data + start, size) < 0) {
                goto fail;
            }
        } else if ((k = sequence_at(data, n, i)) != 0) {
            if (out_put(&out, data + i, k) < 0) goto fail;
            i += k;
        } else if (reserved[octet]) {
            uint8_t escaped[2] = {0xFF, octet};
            if (out_put(&out, escaped, 2) < 0) goto fail;
            i++;
        } else {
            /* a run of octets that stand for themselves */
            while (i < n && !reserved[data[i]] && !letter[data[i]] && data[i] != ' ') i++;
            if (i == start) i++; /* a space not before a letter */
            if (out_put(&out, data + start, i - start) < 0) goto fail;
        }
    }
    PyBuffer_Release(&slots_view);
    PyBuffer_Release(&view);
    return out_finish(&out);
fail:
    PyBuffer_Release(&slots_view);
    PyBuffer_Release(&view);
    PyMem_Free(out.buf);
    return NULL;
}

static PyObject *corrupt(out_t *out, Py_buffer *view, const char *format, ...) {
    va_list vargs;
    va_start(vargs, format);
    PyObject *message = PyUnicode_FromFormatV(format, vargs);
    va_end(vargs);
    if (message) {
        PyErr_SetObject(PyExc_ValueError, message);
        Py_DECREF(message);
    }
    PyMem_Free(out->buf);
    PyBuffer_Release(view);
    return NULL;
}

static PyObject *decode(PyObject *self, PyObject *args) {
    Py_buffer view;
    PyObject *words;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "y*O!n:decode", &view, &PyTuple_Type, &words, &limit)) return NULL;
    const uint8_t *data = view.buf;
    Py_ssize_t n = view.len, i = 0, nwords = PyTuple_GET_SIZE(words);
    Py_ssize_t k;
    if (check_words(words) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    out_t out = {PyMem_Malloc((size_t)n * 3 + 16), 0, n * 3 + 16};
    if (!out.buf) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    while (i < n) {
        uint8_t octet = data[i];
        Py_ssize_t index;
        if (!reserved[octet]) { /* a run of octets that stand for themselves */
            Py_ssize_t start = i;
            while (i < n && !reserved[data[i]]) i++;
            if (out_put(&out, data + start, i - start) < 0) goto fail;
            continue;
        }
        if (octet == 0xFF) {
            if (i + 1 >= n || !reserved[data[i + 1]])
                return corrupt(&out, &view, "word table of the library: code ff is reserved (a stray escape, lead or octet)");
            if (out_put(&out, data + i + 1, 1) < 0) goto fail;
            i += 2;
            continue;
        }
        if (single_index[octet] >= 0) {
            index = single_index[octet];
            i += 1;
        } else if (lead_index[octet] >= 0 && i + 1 < n) {
            index = N_SINGLES + lead_index[octet] * 256 + data[i + 1];
            i += 2;
        } else if ((k = sequence_at(data, n, i)) != 0) {
            if (out_put(&out, data + i, k) < 0) goto fail;
            i += k;
            continue;
        } else {
            return corrupt(&out, &view,
                           "word table of the library: code %02x is reserved (a stray escape, lead or octet)", octet);
        }
        if (index >= nwords) {
            if (index < N_SINGLES)
                return corrupt(&out, &view, "word table of the library: code %02x is not assigned", octet);
            return corrupt(&out, &view, "word table of the library: code %02x%02x is not assigned", data[i - 2],
                           data[i - 1]);
        }
        PyObject *word = PyTuple_GET_ITEM(words, index);
        if (!PyBytes_Check(word)) {
            not_bytes();
            goto fail;
        }
        if (out_put(&out, PyBytes_AS_STRING(word), PyBytes_GET_SIZE(word)) < 0) goto fail;
        if (limit >= 0 && out.len > limit)
            return corrupt(&out, &view, "the word table expands the payload beyond %zd octets", limit);
    }
    PyBuffer_Release(&view);
    return out_finish(&out);
fail:
    PyBuffer_Release(&view);
    PyMem_Free(out.buf);
    return NULL;
}

static PyMethodDef methods[] = {
    {"index", index_words, METH_VARARGS, "index(words) -> bytes: the hash slots encode() needs."},
    {"encode", encode, METH_VARARGS, "encode(data, words, slots) -> bytes: table words replaced by their codes."},
    {"decode", decode, METH_VARARGS, "decode(data, words, limit) -> bytes; ValueError on a corrupt payload."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "codec._wordtable", NULL, -1, methods};

PyMODINIT_FUNC PyInit__wordtable(void) {
    init_tables();
    return PyModule_Create(&module);
}
