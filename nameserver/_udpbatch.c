/* Batched UDP receive and send for the server's hot path (nameserver/udp.py drives it).
 *
 * serve(fd, answer, batch) -> (received, unsent)
 *     Reads up to `batch` datagrams from the non-blocking socket `fd` in one system call
 *     (recvmmsg on Linux; elsewhere a loop of recvfrom), calls `answer(data, address)` for each
 *     (address as the socket module gives it: (host, port) for IPv4, (host, port, flowinfo,
 *     scope_id) for IPv6) and sends every reply it returns (bytes; None: nothing to send) to that
 *     address in one system call (sendmmsg; elsewhere a loop of sendto). `received` is the number
 *     of datagrams read (0: none was waiting); `unsent` lists the (reply, address) pairs the socket
 *     had no room for (EAGAIN/ENOBUFS), for the caller to send when it is writable. A reply the
 *     kernel refuses for another reason (e.g. an address it cannot reach) is dropped, as a
 *     datagram transport drops it. An exception raised by `answer` stops the batch: the replies
 *     gathered so far are sent, then the exception propagates.
 *
 * One call per readable event carries many packets across the Python/C boundary and the kernel
 * boundary at once: the per-packet cost left in Python is `answer` itself. The calls never block
 * (MSG_DONTWAIT) and keep the GIL: the buffers are the module's, one batch at a time.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#define MAX_BATCH 64
#define BUFFER_SIZE 65536 /* the largest UDP payload: nothing a client sends is cut */

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

static PyObject *serve(PyObject *self, PyObject *args) {
    int fd, batch, n, i, count = 0, failed = 0;
    PyObject *answer, *unsent, *replies[MAX_BATCH];
    Py_ssize_t lengths[MAX_BATCH];
    int targets[MAX_BATCH];
    (void)self;
    if (!PyArg_ParseTuple(args, "iOi:serve", &fd, &answer, &batch)) return NULL;
    if (batch < 1 || batch > MAX_BATCH) {
        PyErr_Format(PyExc_ValueError, "batch must be 1..%d", MAX_BATCH);
        return NULL;
    }
    n = receive(fd, batch, lengths);
    if (n < 0) return PyErr_SetFromErrno(PyExc_OSError);
    for (i = 0; i < n; i++) {
        PyObject *data, *address, *reply;
        data = PyBytes_FromStringAndSize(buffers[i], lengths[i]);
        address = data ? address_object(&peers[i].address) : NULL;
        reply = address ? PyObject_CallFunctionObjArgs(answer, data, address, NULL) : NULL;
        Py_XDECREF(data);
        Py_XDECREF(address);
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
    if (failed || !unsent) { /* `answer`'s exception wins over one of building `unsent` */
        Py_XDECREF(unsent);
        return NULL;
    }
    return Py_BuildValue("(iN)", n, unsent);
}

static PyMethodDef methods[] = {
    {"serve", serve, METH_VARARGS,
     "serve(fd, answer, batch) -> (received, unsent): read up to `batch` datagrams, answer them, send the replies."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "nameserver._udpbatch", "Batched UDP receive and send (recvmmsg/sendmmsg).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__udpbatch(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "MAX_BATCH", MAX_BATCH) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
