/* The UDP hot path in C: batched receive and send, and the wire cache's key and hits.
 *
 * locate(wire, tag, max_udp) -> (key, qname_end, size) | None
 *     The wire cache's key of the query `wire` without its variant octet (nameserver/wirecache.py
 *     says what it holds: `tag`, the transport's octet, then the query without its ID, its QNAME
 *     lower-cased, and without the UDP size of an OPT record right after the question), where its
 *     QNAME ends, and the size the client negotiated (TCP, tag b"t": 65535; UDP: its OPT size
 *     within 512..max_udp, else 512). None for a query that is not plain (QR=0, opcode QUERY,
 *     QDCOUNT=1, ANCOUNT=NSCOUNT=0, ARCOUNT<=1, uncompressed QNAME of at most 255 octets followed
 *     by QTYPE and QCLASS).
 *
 * serve(fd, answer, batch, cache) -> (received, unsent, hits)
 *     Reads up to `batch` datagrams from the non-blocking socket `fd` in one system call
 *     (recvmmsg on Linux; elsewhere a loop of recvfrom) and sends their replies in one (sendmmsg;
 *     elsewhere a loop of sendto). A datagram's reply is the wire cache's (`cache`, below) when it
 *     holds one the C can serve, else what `answer(data, address)` returns (bytes; None: nothing
 *     to send now); the address as the socket module gives it: (host, port) for IPv4, (host, port,
 *     flowinfo, scope_id) for IPv6. `received` is the number of datagrams read (0: none was
 *     waiting); `unsent` lists the (reply, address) pairs the socket had no room for
 *     (EAGAIN/ENOBUFS), for the caller to send when it is writable; `hits` the replies the cache
 *     gave. A reply the kernel refuses for another reason (e.g. an address it cannot reach) is
 *     dropped, as a datagram transport drops it. An exception raised by `answer` stops the batch:
 *     the replies gathered so far are sent, then the exception propagates.
 *
 *     `cache` is None or (entries, store, owner, max_udp): the WireCache's dict, the zone store and
 *     the catalog the entries belong to. A datagram is answered from it when its key (with the
 *     whole-answer variant octet) names an entry kept for the catalog's lifetime (no expiry) whose
 *     answer fits the client's size; the entry becomes the most recently used and the reply is
 *     the answer with the query's ID and QNAME octets (`wire.splice_question`). Anything else goes
 *     to `answer`, and once the store's current catalog is no longer `owner` (an UPDATE answered
 *     in this batch), every later datagram of the batch does too. The caller passes a cache only
 *     when nothing else must see each reply (no rate limiting, metrics or query log, no
 *     recursion ACL).
 *
 * One call per readable event carries many packets across the Python/C boundary and the kernel
 * boundary at once. The calls never block (MSG_DONTWAIT) and keep the GIL: the buffers are the
 * module's, one batch at a time.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#define MAX_BATCH 64
#define BUFFER_SIZE 65536 /* the largest UDP payload: nothing a client sends is cut */

#define QUESTION_START 12
#define MAX_NAME 255
#define OPT_TYPE 41
#define OPT_FIXED 11 /* root owner, type, payload (class), TTL, RDLENGTH */
#define MIN_UDP 512
#define MAX_TCP 65535
#define WHOLE 'W'

/* Where the QNAME of the plain query `w` ends, or -1 (see `locate`; wire.plain_qname_end). */
static Py_ssize_t plain_qname_end(const uint8_t *w, Py_ssize_t n) {
    Py_ssize_t offset = QUESTION_START;
    if (n < 17 || (w[2] & 0xF8) || w[4] || w[5] != 1 || w[6] || w[7] || w[8] || w[9] || w[10] || w[11] > 1)
        return -1;
    while (offset < n) {
        uint8_t length = w[offset];
        if (length == 0) {
            offset += 1;
            return (offset - QUESTION_START > MAX_NAME || offset + 4 > n) ? -1 : offset;
        }
        if (length > 63) return -1;
        offset += length + 1;
    }
    return -1;
}

/* The UDP size of an OPT record right after the question, or -1 (wire.opt_payload). */
static long opt_payload(const uint8_t *w, Py_ssize_t n, Py_ssize_t end) {
    Py_ssize_t start = end + 4;
    if (w[11] != 1 || n < start + OPT_FIXED) return -1;
    if (w[start] != 0 || ((w[start + 1] << 8) | w[start + 2]) != OPT_TYPE) return -1;
    return (w[start + 3] << 8) | w[start + 4];
}

/* The key of the plain query `w` (QNAME ending at `end`, OPT size octets at end + 7 left out
 * when `payload` >= 0), `variant` appended unless 0. A new reference, or NULL. */
static PyObject *make_key(const uint8_t *w, Py_ssize_t n, Py_ssize_t end, long payload, char tag, char variant) {
    Py_ssize_t cut = payload >= 0 ? 2 : 0, size = 1 + (n - 2) - cut + (variant ? 1 : 0), i;
    PyObject *key = PyBytes_FromStringAndSize(NULL, size);
    uint8_t *k;
    if (!key) return NULL;
    k = (uint8_t *)PyBytes_AS_STRING(key);
    *k++ = (uint8_t)tag;
    memcpy(k, w + 2, QUESTION_START - 2);
    k += QUESTION_START - 2;
    for (i = QUESTION_START; i < end; i++) {
        uint8_t c = w[i];
        *k++ = (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
    }
    if (cut) {
        memcpy(k, w + end, 7);
        k += 7;
        memcpy(k, w + end + 9, (size_t)(n - end - 9));
        k += n - end - 9;
    } else {
        memcpy(k, w + end, (size_t)(n - end));
        k += n - end;
    }
    if (variant) *k = (uint8_t)variant;
    return key;
}

static long negotiated(long payload, int udp, long max_udp) {
    if (!udp) return MAX_TCP;
    if (payload < 0) return MIN_UDP;
    return payload < MIN_UDP ? MIN_UDP : (payload > max_udp ? max_udp : payload);
}

static PyObject *locate(PyObject *self, PyObject *args) {
    const char *wire, *tag;
    Py_ssize_t n, tag_size, end;
    long max_udp, payload;
    PyObject *key;
    (void)self;
    if (!PyArg_ParseTuple(args, "y#y#l:locate", &wire, &n, &tag, &tag_size, &max_udp)) return NULL;
    if (tag_size != 1) {
        PyErr_SetString(PyExc_ValueError, "tag must be one octet");
        return NULL;
    }
    end = plain_qname_end((const uint8_t *)wire, n);
    if (end < 0) Py_RETURN_NONE;
    payload = opt_payload((const uint8_t *)wire, n, end);
    key = make_key((const uint8_t *)wire, n, end, payload, tag[0], 0);
    if (!key) return NULL;
    return Py_BuildValue("(Nnl)", key, end, negotiated(payload, tag[0] == 'u', max_udp));
}

/* The cache's reply to the datagram `w` (a new reference), or NULL without an exception when the
 * cache cannot serve it, or NULL with one on failure. */
static PyObject *cached_reply(const uint8_t *w, Py_ssize_t n, PyObject *entries, long max_udp) {
    Py_ssize_t end = plain_qname_end(w, n), size;
    long payload;
    PyObject *key, *entry, *answer, *reply;
    const uint8_t *a;
    uint8_t *r;
    if (end < 0) return NULL;
    payload = opt_payload(w, n, end);
    key = make_key(w, n, end, payload, 'u', WHOLE);
    if (!key) return NULL;
    entry = PyDict_GetItemWithError(entries, key);
    if (!entry || !PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) < 5 || PyTuple_GET_ITEM(entry, 1) != Py_None) {
        Py_DECREF(key);
        return NULL;
    }
    answer = PyTuple_GET_ITEM(entry, 0);
    if (!PyBytes_Check(answer) || PyBytes_GET_SIZE(answer) < end ||
        negotiated(payload, 1, max_udp) < PyLong_AsLong(PyTuple_GET_ITEM(entry, 4))) {
        Py_DECREF(key);
        return NULL; /* an exception only if the limit was no int */
    }
    Py_INCREF(entry); /* the most recently used goes last */
    if (PyDict_DelItem(entries, key) < 0 || PyDict_SetItem(entries, key, entry) < 0) {
        Py_DECREF(entry);
        Py_DECREF(key);
        return NULL;
    }
    Py_DECREF(entry);
    Py_DECREF(key);
    size = PyBytes_GET_SIZE(answer);
    reply = PyBytes_FromStringAndSize(NULL, size);
    if (!reply) return NULL;
    a = (const uint8_t *)PyBytes_AS_STRING(answer);
    r = (uint8_t *)PyBytes_AS_STRING(reply);
    memcpy(r, w, 2);
    memcpy(r + 2, a + 2, QUESTION_START - 2);
    memcpy(r + QUESTION_START, w + QUESTION_START, (size_t)(end - QUESTION_START));
    memcpy(r + end, a + end, (size_t)(size - end));
    return reply;
}

typedef struct {
    struct sockaddr_storage address;
    socklen_t address_len;
} Peer;

static char buffers[MAX_BATCH][BUFFER_SIZE];
static Peer peers[MAX_BATCH];

/* The Python form of a socket address (as socket.recvfrom gives it). */
static PyObject *address_object(const struct sockaddr_storage *address) {
    char host[INET6_ADDRSTRLEN];
    if (address->ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)address;
        if (!inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host)) return PyErr_SetFromErrno(PyExc_OSError);
        return Py_BuildValue("(si)", host, (int)ntohs(in4->sin_port));
    }
    if (address->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)address;
        if (!inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host)) return PyErr_SetFromErrno(PyExc_OSError);
        return Py_BuildValue("(siII)", host, (int)ntohs(in6->sin6_port), (unsigned int)ntohl(in6->sin6_flowinfo),
                             (unsigned int)in6->sin6_scope_id);
    }
    PyErr_Format(PyExc_ValueError, "address family %d is not IPv4 or IPv6", (int)address->ss_family);
    return NULL;
}

/* Read up to `batch` datagrams into buffers/peers; their lengths into `lengths`. -1 on error. */
static int receive(int fd, int batch, Py_ssize_t *lengths) {
#ifdef __linux__
    struct mmsghdr messages[MAX_BATCH];
    struct iovec vectors[MAX_BATCH];
    int i, n;
    memset(messages, 0, sizeof(struct mmsghdr) * (size_t)batch);
    for (i = 0; i < batch; i++) {
        vectors[i].iov_base = buffers[i];
        vectors[i].iov_len = BUFFER_SIZE;
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        messages[i].msg_hdr.msg_name = &peers[i].address;
        messages[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
    }
    n = recvmmsg(fd, messages, (unsigned int)batch, MSG_DONTWAIT, NULL);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    for (i = 0; i < n; i++) {
        lengths[i] = (Py_ssize_t)messages[i].msg_len;
        peers[i].address_len = messages[i].msg_hdr.msg_namelen;
    }
    return n;
#else
    int n = 0;
    while (n < batch) {
        ssize_t got;
        peers[n].address_len = sizeof(struct sockaddr_storage);
        got = recvfrom(fd, buffers[n], BUFFER_SIZE, MSG_DONTWAIT, (struct sockaddr *)&peers[n].address,
                       &peers[n].address_len);
        if (got < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
            return n ? n : -1;
        }
        lengths[n++] = (Py_ssize_t)got;
    }
    return n;
#endif
}

static int is_full(int error) { return error == EAGAIN || error == EWOULDBLOCK || error == ENOBUFS; }

/* Send replies[i] to peers[targets[i]] for i < count; those the socket has no room for go into
 * `unsent` as (reply, address) pairs. 0, or -1 with an exception set. */
static int transmit(int fd, PyObject **replies, const int *targets, int count, PyObject *unsent) {
    int sent = 0;
    while (sent < count) {
        int error = 0, done;
#ifdef __linux__
        struct mmsghdr messages[MAX_BATCH];
        struct iovec vectors[MAX_BATCH];
        int i, n = count - sent;
        memset(messages, 0, sizeof(struct mmsghdr) * (size_t)n);
        for (i = 0; i < n; i++) {
            Peer *peer = &peers[targets[sent + i]];
            vectors[i].iov_base = PyBytes_AS_STRING(replies[sent + i]);
            vectors[i].iov_len = (size_t)PyBytes_GET_SIZE(replies[sent + i]);
            messages[i].msg_hdr.msg_iov = &vectors[i];
            messages[i].msg_hdr.msg_iovlen = 1;
            messages[i].msg_hdr.msg_name = &peer->address;
            messages[i].msg_hdr.msg_namelen = peer->address_len;
        }
        done = sendmmsg(fd, messages, (unsigned int)n, MSG_DONTWAIT);
        if (done < 0) error = errno;
#else
        Peer *peer = &peers[targets[sent]];
        ssize_t wrote = sendto(fd, PyBytes_AS_STRING(replies[sent]), (size_t)PyBytes_GET_SIZE(replies[sent]),
                               MSG_DONTWAIT, (struct sockaddr *)&peer->address, peer->address_len);
        done = wrote < 0 ? -1 : 1;
        if (wrote < 0) error = errno;
#endif
        if (done > 0) {
            sent += done;
            continue;
        }
        if (error == EINTR) continue;
        if (!is_full(error)) { /* this reply cannot go: drop it, send the others */
            sent += 1;
            continue;
        }
        for (; sent < count; sent++) { /* no room now: the caller sends them when writable */
            PyObject *address = address_object(&peers[targets[sent]].address), *pair;
            if (!address) return -1;
            pair = PyTuple_Pack(2, replies[sent], address);
            Py_DECREF(address);
            if (!pair || PyList_Append(unsent, pair) < 0) {
                Py_XDECREF(pair);
                return -1;
            }
            Py_DECREF(pair);
        }
    }
    return 0;
}

/* Whether the store's current catalog is still `owner`: 1, 0, or -1 with an exception. */
static int still_owned(PyObject *store, PyObject *owner) {
    PyObject *current = PyObject_GetAttrString(store, "current");
    if (!current) return -1;
    Py_DECREF(current);
    return current == owner;
}

static PyObject *serve(PyObject *self, PyObject *args) {
    int fd, batch, n, i, count = 0, failed = 0, hits = 0, fast = 0;
    long max_udp = 0;
    PyObject *answer, *cache, *entries = NULL, *store = NULL, *owner = NULL, *unsent, *replies[MAX_BATCH];
    Py_ssize_t lengths[MAX_BATCH];
    int targets[MAX_BATCH];
    (void)self;
    if (!PyArg_ParseTuple(args, "iOiO:serve", &fd, &answer, &batch, &cache)) return NULL;
    if (batch < 1 || batch > MAX_BATCH) {
        PyErr_Format(PyExc_ValueError, "batch must be 1..%d", MAX_BATCH);
        return NULL;
    }
    if (cache != Py_None) {
        if (!PyArg_ParseTuple(cache, "O!OOl:serve's cache", &PyDict_Type, &entries, &store, &owner, &max_udp)) return NULL;
        fast = still_owned(store, owner);
        if (fast < 0) return NULL;
    }
    n = receive(fd, batch, lengths);
    if (n < 0) return PyErr_SetFromErrno(PyExc_OSError);
    for (i = 0; i < n; i++) {
        PyObject *data, *address, *reply = NULL;
        if (fast) {
            reply = cached_reply((const uint8_t *)buffers[i], lengths[i], entries, max_udp);
            if (!reply && PyErr_Occurred()) {
                failed = 1;
                break;
            }
            if (reply) {
                hits++;
                replies[count] = reply;
                targets[count++] = i;
                continue;
            }
        }
        data = PyBytes_FromStringAndSize(buffers[i], lengths[i]);
        address = data ? address_object(&peers[i].address) : NULL;
        reply = address ? PyObject_CallFunctionObjArgs(answer, data, address, NULL) : NULL;
        Py_XDECREF(data);
        Py_XDECREF(address);
        if (fast && reply && (fast = still_owned(store, owner)) < 0) Py_CLEAR(reply);
        if (!reply) {
            failed = 1;
            break;
        }
        if (reply == Py_None) {
            Py_DECREF(reply);
            continue;
        }
        if (!PyBytes_Check(reply)) {
            PyErr_Format(PyExc_TypeError, "answer() returned %.100s, not bytes or None", Py_TYPE(reply)->tp_name);
            Py_DECREF(reply);
            failed = 1;
            break;
        }
        replies[count] = reply;
        targets[count++] = i;
    }
    unsent = PyList_New(0);
    if (unsent && transmit(fd, replies, targets, count, unsent) < 0) Py_CLEAR(unsent);
    for (i = 0; i < count; i++) Py_DECREF(replies[i]);
    if (failed || !unsent) { /* the batch's exception wins over one of building `unsent` */
        Py_XDECREF(unsent);
        return NULL;
    }
    return Py_BuildValue("(iNi)", n, unsent, hits);
}

static PyMethodDef methods[] = {
    {"serve", serve, METH_VARARGS,
     "serve(fd, answer, batch, cache) -> (received, unsent, hits): read up to `batch` datagrams, answer them, "
     "send the replies."},
    {"locate", locate, METH_VARARGS,
     "locate(wire, tag, max_udp) -> (key, qname_end, size) | None: the wire cache's key of a plain query."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "nameserver._hotpath", "The UDP hot path: batched receive/send and the wire cache's key and hits.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__hotpath(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "MAX_BATCH", MAX_BATCH) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
