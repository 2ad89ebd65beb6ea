/* The word table's two loops (codec/wordtable.py gives the grammar), one pass each over the octets.
 *
 * pack(words) -> table: `words` (a tuple of distinct bytes of 1 to MAX_WORD octets, entry i has code
 *     i) in one block of memory (table_t, in a capsule): a payload touches a few cache lines of it,
 *     not a Python object a word, and decode() turns each literal octet or one-octet code into its
 *     output through one lookup and one fixed-size copy.
 * encode(data, table) -> bytes: the same output as WordTable._encode_python.
 * decode(data, table, limit) -> bytes: `limit` the most octets the output may have (-1: none),
 *     counted as WordTable._decode_python counts it; raises ValueError(message) on a corrupt payload,
 *     as that raises CorruptPayload.
 * check_frame(payload) -> int: codec/frame.py's check of a trimmed zstd frame (the decoder's first
 *     step, here to spare it a Python walk of the block headers).
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

#define MAX_WINDOW_EXPONENT 21 /* of a frame's Window_Descriptor: libzstd refuses windows over 2 GiB */
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

/* The table pack() makes: one block, what encode() and decode() read (no Python object a word). */
typedef struct {
    Py_ssize_t count;                 /* words */
    Py_ssize_t octets;                /* where the 256 octets start in text (escapes decode to them) */
    uint32_t first[256];              /* octet -> what it decodes to alone (offset << 8 | length in text), 0: more to see */
    uint16_t slots[SLOTS];            /* hash slots over the words: entry + 1, 0 = empty */
    uint32_t entry[N_SINGLES + 12 * 256]; /* entry -> offset << 8 | length in text */
    uint8_t text[];                   /* the words, most frequent first, then the 256 octets, then COPY of padding */
} table_t;

#define COPY 16 /* octets a word copy moves at once: text and output keep that many spare at their ends */
#define TABLE_NAME "codec._wordtable.table"

static void free_table(PyObject *capsule) { PyMem_Free(PyCapsule_GetPointer(capsule, TABLE_NAME)); }

/* The table of a pack() capsule, else NULL with TypeError set. */
static const table_t *table_of(PyObject *capsule) {
    if (!PyCapsule_IsValid(capsule, TABLE_NAME)) {
        PyErr_SetString(PyExc_TypeError, "word table: not the output of pack(words)");
        return NULL;
    }
    return PyCapsule_GetPointer(capsule, TABLE_NAME);
}

/* The entry of `token` among the words, else -1. */
static inline Py_ssize_t lookup(const table_t *table, const uint8_t *token, Py_ssize_t size) {
    uint32_t slot = hash(token, size) & (SLOTS - 1);
    for (;; slot = (slot + 1) & (SLOTS - 1)) {
        uint16_t entry = table->slots[slot];
        if (!entry) return -1;
        uint32_t word = table->entry[entry - 1];
        if ((Py_ssize_t)(word & 0xFF) == size && !memcmp(table->text + (word >> 8), token, (size_t)size)) return entry - 1;
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

static PyObject *pack(PyObject *self, PyObject *args) {
    PyObject *words;
    if (!PyArg_ParseTuple(args, "O!:pack", &PyTuple_Type, &words)) return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(words), total = 0, k;
    if (count > N_SINGLES + 12 * 256) {
        PyErr_SetString(PyExc_ValueError, "more words than codes");
        return NULL;
    }
    for (k = 0; k < count; k++) {
        PyObject *word = PyTuple_GET_ITEM(words, k);
        if (!PyBytes_Check(word) || PyBytes_GET_SIZE(word) < 1 || PyBytes_GET_SIZE(word) > MAX_WORD) {
            PyErr_SetString(PyExc_TypeError, "word table words must be bytes of 1 to 64 octets");
            return NULL;
        }
        total += PyBytes_GET_SIZE(word);
    }
    table_t *table = PyMem_Calloc(1, sizeof(table_t) + (size_t)total + 256 + COPY);
    if (!table) return PyErr_NoMemory();
    table->count = count;
    Py_ssize_t offset = 0;
    for (k = 0; k < count; k++) {
        PyObject *word = PyTuple_GET_ITEM(words, k);
        const uint8_t *octets = (const uint8_t *)PyBytes_AS_STRING(word);
        Py_ssize_t size = PyBytes_GET_SIZE(word);
        table->entry[k] = (uint32_t)(offset << 8 | size);
        memcpy(table->text + offset, octets, (size_t)size);
        offset += size;
        uint32_t slot = hash(octets, size) & (SLOTS - 1);
        while (table->slots[slot]) slot = (slot + 1) & (SLOTS - 1);
        table->slots[slot] = (uint16_t)(k + 1);
    }
    table->octets = offset;
    for (k = 0; k < 256; k++) {
        table->text[offset + k] = (uint8_t)k;
        if (!reserved[k]) /* stands for itself */
            table->first[k] = (uint32_t)((offset + k) << 8 | 1);
        else if (single_index[k] >= 0 && single_index[k] < count) /* an assigned one-octet code */
            table->first[k] = table->entry[single_index[k]];
    }
    PyObject *capsule = PyCapsule_New(table, TABLE_NAME, free_table);
    if (!capsule) PyMem_Free(table);
    return capsule;
}

static PyObject *encode(PyObject *self, PyObject *args) {
    Py_buffer view;
    PyObject *capsule;
    if (!PyArg_ParseTuple(args, "y*O:encode", &view, &capsule)) return NULL;
    const table_t *table = table_of(capsule);
    if (!table) {
        PyBuffer_Release(&view);
        return NULL;
    }
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
                entry = lookup(table, data + start, size);
                if (entry == -1 && octet == ' ') {
                    entry = lookup(table, data + start + 1, size - 1);
                    if (entry >= 0 && out_put(&out, " ", 1) < 0) goto fail;
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
    PyBuffer_Release(&view);
    return out_finish(&out);
fail:
    PyBuffer_Release(&view);
    PyMem_Free(out.buf);
    return NULL;
}

static Py_ssize_t corrupt(const char *format, ...) {
    va_list vargs;
    va_start(vargs, format);
    PyObject *message = PyUnicode_FromFormatV(format, vargs);
    va_end(vargs);
    if (message) {
        PyErr_SetObject(PyExc_ValueError, message);
        Py_DECREF(message);
    }
    return -1;
}

static PyObject *decode(PyObject *self, PyObject *args) {
    Py_buffer view;
    PyObject *capsule;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "y*On:decode", &view, &capsule, &limit)) return NULL;
    const uint8_t *data = view.buf;
    Py_ssize_t n = view.len, i = 0, k, index;
    Py_ssize_t stop = limit < 0 ? PY_SSIZE_T_MAX : limit;
    out_t out = {NULL, 0, 0};
    const table_t *table = table_of(capsule);
    if (!table) goto fail;
    if (!(out.buf = PyMem_Malloc((size_t)n * 3 + MAX_WORD + COPY))) {
        PyErr_NoMemory();
        goto fail;
    }
    out.cap = n * 3 + MAX_WORD + COPY;
    while (i < n) {
        if (out.cap - out.len < MAX_WORD + COPY && out_reserve(&out, MAX_WORD + COPY) < 0) goto fail;
        uint8_t octet = data[i];
        uint32_t word = table->first[octet]; /* most octets: a literal or a one-octet code */
        if (word) {
            i += 1;
        } else if (single_index[octet] >= 0) {
            corrupt("word table of the library: code %02x is not assigned", octet);
            goto fail;
        } else if (octet == 0xFF && i + 1 < n && reserved[data[i + 1]]) {
            word = (uint32_t)((table->octets + data[i + 1]) << 8 | 1); /* the escaped octet */
            i += 2;
        } else if (lead_index[octet] >= 0 && i + 1 < n) {
            index = N_SINGLES + lead_index[octet] * 256 + data[i + 1];
            if (index >= table->count) {
                corrupt("word table of the library: code %02x%02x is not assigned", octet, data[i + 1]);
                goto fail;
            }
            word = table->entry[index];
            i += 2;
        } else if ((k = sequence_at(data, n, i)) != 0) {
            memcpy(out.buf + out.len, data + i, (size_t)k);
            out.len += k;
            i += k;
            continue;
        } else {
            corrupt("word table of the library: code %02x is reserved (a stray escape, lead or octet)", octet);
            goto fail;
        }
        Py_ssize_t size = word & 0xFF;
        const uint8_t *from = table->text + (word >> 8);
        memcpy(out.buf + out.len, from, COPY);
        if (size > COPY) memcpy(out.buf + out.len + COPY, from + COPY, (size_t)(size - COPY));
        out.len += size;
        if (out.len + (n - i) > stop && reserved[octet]) { /* at a code, as the reference: the rest counts as it stands */
            corrupt("the word table expands the payload beyond %zd octets", limit);
            goto fail;
        }
    }
    PyBuffer_Release(&view);
    return out_finish(&out);
fail:
    PyBuffer_Release(&view);
    PyMem_Free(out.buf);
    return NULL;
}

/* The dictionary id of a trimmed frame that is whole, else NULL and the message of what is wrong
   (`*after`: octets after the frame, when that is it). frame.check_python, octet for octet. */
static const char *frame_error(const uint8_t *at, Py_ssize_t n, uint32_t *dict_id, Py_ssize_t *after) {
    Py_ssize_t header = !n ? 0 : at[0] == 0x01 ? 3 : at[0] == 0x02 ? 4 : at[0] == 0x03 ? 6 : 0, position = header;
    if (!header) return "not a zstd frame (standard or trimmed)";
    for (;;) {
        if (position + 3 > n) return "cut zstd frame";
        uint32_t value = at[position] | (uint32_t)at[position + 1] << 8 | (uint32_t)at[position + 2] << 16;
        uint32_t kind = (value >> 1) & 3;
        if (kind == 3) return "damaged zstd frame: reserved block type";
        position += 3 + (kind == 1 ? 1 : value >> 3); /* an RLE block holds one octet */
        if (value & 1) break;                           /* the last block */
    }
    if (position > n) return "cut zstd frame";
    if (position < n) {
        *after = n - position;
        return "octets after the zstd frame";
    }
    if (at[1] >> 3 > MAX_WINDOW_EXPONENT) return "not a zstd frame: its window is too large";
    for (*dict_id = 0; --header >= 2;) *dict_id = *dict_id << 8 | at[header];
    return NULL;
}

static PyObject *check_frame(PyObject *self, PyObject *arg) {
    Py_buffer view;
    uint32_t dict_id;
    Py_ssize_t after = 0;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const char *error = frame_error(view.buf, view.len, &dict_id, &after);
    PyBuffer_Release(&view);
    if (!error) return PyLong_FromUnsignedLong(dict_id);
    if (after)
        PyErr_Format(PyExc_ValueError, "%zd %s", after, error);
    else
        PyErr_SetString(PyExc_ValueError, error);
    return NULL;
}

static PyMethodDef methods[] = {
    {"pack", pack, METH_VARARGS, "pack(words) -> bytes: the table encode() and decode() read."},
    {"encode", encode, METH_VARARGS, "encode(data, table) -> bytes: table words replaced by their codes."},
    {"decode", decode, METH_VARARGS, "decode(data, table, limit) -> bytes; ValueError on a corrupt payload."},
    {"check_frame", check_frame, METH_O, "check_frame(payload) -> int: a trimmed frame's dictionary id; ValueError."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "codec._wordtable", NULL, -1, methods};

PyMODINIT_FUNC PyInit__wordtable(void) {
    init_tables();
    return PyModule_Create(&module);
}
