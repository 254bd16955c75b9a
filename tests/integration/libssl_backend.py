"""A TLS backend that drives libssl itself, for post-handshake messages
that Python's ssl module cannot send.

The server listens on 127.0.0.1:<ephemeral port> and calls the system's
libssl (the one Python's ssl module and mod_ssl use) through ctypes. For
every HTTP/1.1 request it reads, it first does what the path asks, then
answers ``200`` with the body ``backend-ok <path>\\n`` (keep-alive):

    /hello-request/answer  TLS 1.2: ask for a renegotiation (HelloRequest)
                           and send the response at once, whatever the
                           proxy replies (a backend that ignores a
                           declined renegotiation)
    /hello-request/wait    TLS 1.2: ask for a renegotiation and then send
                           nothing, until the backend is stopped
    /hello-request/mid-body  TLS 1.2: send the head and the first half of
                           the body (MID_BODY_FIRST), wait until the test
                           sets ``mid_body_go``, ask for a renegotiation,
                           send the second half (MID_BODY_SECOND)
    /hello-request/after-response  TLS 1.2: send the response, then ask
                           for a renegotiation while the connection is
                           idle
    /key-update            TLS 1.3: send a KeyUpdate that asks the proxy
                           to update its keys too, then the response
    anything else          the response only

It records, per TCP connection, the request paths read, every byte of
application data received (``data``), the responses sent, the
HelloRequests sent, the TLS version and whether the handshake completed
and resumed a session (``connections``).

OCSP stapling (RFC 6066 status_request): with ``staple=`` the backend
installs a status callback (SSL_CTX_set_tlsext_status_cb). It runs only
when the client's ClientHello asks for a staple, and records that on the
connection (``status_requested``); it then staples those bytes as they
are (an OCSP response, or anything else), or nothing when staple is None.
``staple`` may be changed between connections. A resumed handshake sends
no certificate and so no staple. Without ``staple=`` no callback is
installed (the backend never staples).
"""

import ctypes
import ctypes.util
import socket
import threading

import _repo  # noqa: F401  (puts harness/ on sys.path)
from harness.servers import LoopbackServer

TLS1_2_VERSION = 0x0303
TLS1_3_VERSION = 0x0304
_SSL_CTRL_SET_MIN_PROTO_VERSION = 123
_SSL_CTRL_SET_MAX_PROTO_VERSION = 124
_SSL_FILETYPE_PEM = 1
_SSL_KEY_UPDATE_REQUESTED = 1
# SSL_CTX_set_tlsext_status_cb and SSL_set_tlsext_status_ocsp_resp are
# macros over these controls (openssl/ssl.h, openssl/tls1.h)
_SSL_CTRL_SET_TLSEXT_STATUS_REQ_CB = 63
_SSL_CTRL_SET_TLSEXT_STATUS_REQ_OCSP_RESP = 71
_SSL_TLSEXT_ERR_OK = 0
_SSL_TLSEXT_ERR_NOACK = 3

# the status callback: int cb(SSL *s, void *arg)
_STATUS_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)

# staple= not given: no status callback at all
NO_CALLBACK = object()

# how long a connection that was told to wait keeps quiet at most
_WAIT_LIMIT = 30.0

MID_BODY_FIRST = b"first half, before the HelloRequest\n"
MID_BODY_SECOND = b"second half, after the HelloRequest\n"


def _libssl():
    name = ctypes.util.find_library("ssl")
    assert name, "libssl not found"
    lib = ctypes.CDLL(name)
    vp, ci, cc = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    for fn, res, args in (
            ("TLS_server_method", vp, []),
            ("SSL_CTX_new", vp, [vp]),
            ("SSL_CTX_free", None, [vp]),
            ("SSL_CTX_ctrl", ctypes.c_long, [vp, ci, ctypes.c_long, vp]),
            ("SSL_CTX_use_certificate_chain_file", ci, [vp, cc]),
            ("SSL_CTX_use_PrivateKey_file", ci, [vp, cc, ci]),
            ("SSL_new", vp, [vp]),
            ("SSL_free", None, [vp]),
            ("SSL_set_fd", ci, [vp, ci]),
            ("SSL_accept", ci, [vp]),
            ("SSL_read", ci, [vp, vp, ci]),
            ("SSL_write", ci, [vp, cc, ci]),
            ("SSL_renegotiate", ci, [vp]),
            ("SSL_do_handshake", ci, [vp]),
            ("SSL_key_update", ci, [vp, ci]),
            ("SSL_shutdown", ci, [vp]),
            ("SSL_CTX_callback_ctrl", ctypes.c_long, [vp, ci, vp]),
            ("SSL_ctrl", ctypes.c_long, [vp, ci, ctypes.c_long, vp]),
            ("SSL_session_reused", ci, [vp]),
            ("SSL_version", ci, [vp]),
            ("ERR_clear_error", None, [])):
        f = getattr(lib, fn)
        f.restype = res
        f.argtypes = args
    return lib


def _libcrypto():
    """The libcrypto of that libssl: a staple handed to libssl must come
    from its allocator (CRYPTO_malloc), as libssl frees it."""
    name = ctypes.util.find_library("crypto")
    assert name, "libcrypto not found"
    lib = ctypes.CDLL(name)
    lib.CRYPTO_malloc.restype = ctypes.c_void_p
    lib.CRYPTO_malloc.argtypes = [ctypes.c_size_t, ctypes.c_char_p,
                                  ctypes.c_int]
    return lib


class Connection:
    def __init__(self, cid):
        self.cid = cid
        self.requests = []      # paths read
        self.answered = []      # paths whose response was sent
        self.hello_requests = 0  # HelloRequests sent
        self.error = None       # what ended the connection early
        self.data = bytearray()  # every byte of application data read
        self.handshake_ok = None  # None: in progress; True / False
        self.resumed = None     # the handshake resumed a session
        self.version = None     # "TLSv1.2" / "TLSv1.3"
        self.status_requested = False  # the ClientHello asked for a staple
        self.stapled = None     # the bytes stapled, or None
        self.closed = False     # the connection has ended

    def __repr__(self):
        return (f"<conn {self.cid} {self.version} "
                f"handshake_ok={self.handshake_ok} resumed={self.resumed} "
                f"status_requested={self.status_requested} "
                f"stapled="
                f"{None if self.stapled is None else len(self.stapled)} "
                f"bytes={len(self.data)} requests={self.requests} "
                f"answered={self.answered} "
                f"hello_requests={self.hello_requests} error={self.error} "
                f"closed={self.closed}>")


class LibsslBackend(LoopbackServer):
    label = "libssl backend"
    close_on_stop = False       # libssl still holds the descriptors

    def __init__(self, chain_file, key_file, version, staple=NO_CALLBACK):
        """version: TLS1_2_VERSION or TLS1_3_VERSION (the only one
        spoken); staple: see the module's docstring."""
        super().__init__(backlog=16)
        self.version = version
        self._lib = _libssl()
        lib = self._lib
        self._ctx = lib.SSL_CTX_new(lib.TLS_server_method())
        assert self._ctx, "SSL_CTX_new failed"
        for ctrl in (_SSL_CTRL_SET_MIN_PROTO_VERSION,
                     _SSL_CTRL_SET_MAX_PROTO_VERSION):
            assert lib.SSL_CTX_ctrl(self._ctx, ctrl, version, None) == 1
        assert lib.SSL_CTX_use_certificate_chain_file(
            self._ctx, chain_file.encode()) == 1, chain_file
        assert lib.SSL_CTX_use_PrivateKey_file(
            self._ctx, key_file.encode(), _SSL_FILETYPE_PEM) == 1, key_file
        self._conn_of = {}      # SSL * -> Connection, while it handshakes
        self._status_cb = None
        self.staple = None
        if staple is not NO_CALLBACK:
            self.staple = staple
            self._crypto = _libcrypto()
            # kept referenced: libssl calls it for the life of the context
            self._status_cb = _STATUS_CB(self._on_status_request)
            assert lib.SSL_CTX_callback_ctrl(
                self._ctx, _SSL_CTRL_SET_TLSEXT_STATUS_REQ_CB,
                ctypes.cast(self._status_cb, ctypes.c_void_p)) == 1
        self.connections = []
        self.mid_body_go = threading.Event()

    def stop(self):
        self.mid_body_go.set()
        super().stop()
        self._lib.SSL_CTX_free(self._ctx)

    def describe(self):
        return "\n".join(repr(c) for c in self.connections)

    def served(self):
        """Every (connection, path) whose response was sent."""
        with self._lock:
            return [(c.cid, p) for c in self.connections for p in c.answered]

    @property
    def app_bytes(self):
        """Bytes of application data received over all connections."""
        with self._lock:
            return sum(len(c.data) for c in self.connections)

    def wait_closed(self, timeout=5.0):
        """Wait until every accepted connection has ended (after a
        refusal: the proxy closed it)."""
        self.wait_for(lambda: all(c.closed for c in self.connections),
                      timeout, "connections closed")

    def _on_status_request(self, ssl, arg):
        """libssl's status callback: the ClientHello asked for a staple."""
        with self._lock:
            conn = self._conn_of.get(ssl)
            staple = self.staple
        if conn is not None:
            conn.status_requested = True
        if staple is None:
            return _SSL_TLSEXT_ERR_NOACK
        buf = self._crypto.CRYPTO_malloc(max(len(staple), 1),
                                         b"libssl_backend.py", 0)
        if not buf:
            return _SSL_TLSEXT_ERR_NOACK
        ctypes.memmove(buf, staple, len(staple))
        # libssl owns (and frees) buf from here on
        if self._lib.SSL_ctrl(ssl, _SSL_CTRL_SET_TLSEXT_STATUS_REQ_OCSP_RESP,
                              len(staple), buf) != 1:
            return _SSL_TLSEXT_ERR_NOACK
        if conn is not None:
            conn.stapled = bytes(staple)
        return _SSL_TLSEXT_ERR_OK

    def wait_for(self, predicate, timeout=5.0, what="condition"):
        """Wait until predicate() is true; raise AssertionError if not."""
        self.wait_until(predicate, timeout, what)

    def on_accept(self, raw, peer, cid):
        # each record goes out when written (a HelloRequest after a
        # response must not wait for the proxy's ACK of the response)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            conn = Connection(len(self.connections))
            self.connections.append(conn)
        return conn

    def handle(self, raw, conn):
        lib = self._lib
        ssl = lib.SSL_new(self._ctx)
        try:
            with self._lock:
                self._conn_of[ssl] = conn
            lib.SSL_set_fd(ssl, raw.fileno())
            ok = lib.SSL_accept(ssl) == 1
            with self._lock:
                del self._conn_of[ssl]
            if not ok:
                conn.handshake_ok = False
                conn.error = "handshake failed"
                return
            conn.version = {TLS1_2_VERSION: "TLSv1.2",
                            TLS1_3_VERSION: "TLSv1.3"}.get(
                                lib.SSL_version(ssl), "other")
            conn.resumed = bool(lib.SSL_session_reused(ssl))
            conn.handshake_ok = True
            buf = ctypes.create_string_buffer(16384)
            data = b""
            while not self._stop.is_set():
                while b"\r\n\r\n" not in data:
                    n = lib.SSL_read(ssl, buf, len(buf))
                    if n <= 0:
                        conn.error = conn.error or "read ended"
                        return
                    with self._lock:
                        conn.data += buf.raw[:n]
                    data += buf.raw[:n]
                head, data = data.split(b"\r\n\r\n", 1)
                path = head.split(b"\r\n", 1)[0].split(b" ")[1].decode()
                with self._lock:
                    conn.requests.append(path)
                if not self._before_response(ssl, path, conn):
                    return
                if path == "/hello-request/mid-body":
                    parts = [MID_BODY_FIRST, MID_BODY_SECOND]
                else:
                    parts = [f"backend-ok {path}\n".encode()]
                head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                        b"Content-Length: %d\r\n\r\n"
                        % sum(len(p) for p in parts))
                if not self._write(ssl, head + parts[0], conn):
                    return
                if len(parts) > 1:
                    self.mid_body_go.wait(_WAIT_LIMIT)
                    if not self._hello_request(ssl, conn):
                        return
                    if not self._write(ssl, parts[1], conn):
                        return
                with self._lock:
                    conn.answered.append(path)
                if (path == "/hello-request/after-response"
                        and not self._hello_request(ssl, conn)):
                    return
        finally:
            lib.SSL_free(ssl)
            lib.ERR_clear_error()
            raw.close()
            conn.closed = True

    def _write(self, ssl, data, conn):
        if self._lib.SSL_write(ssl, data, len(data)) != len(data):
            conn.error = "write failed"
            return False
        return True

    def _hello_request(self, ssl, conn):
        lib = self._lib
        if lib.SSL_renegotiate(ssl) != 1 or lib.SSL_do_handshake(ssl) != 1:
            conn.error = "cannot send HelloRequest"
            return False
        with self._lock:
            conn.hello_requests += 1
        return True

    def _before_response(self, ssl, path, conn):
        """Do what path asks before the response; False: send none."""
        lib = self._lib
        if path in ("/hello-request/answer", "/hello-request/wait"):
            if not self._hello_request(ssl, conn):
                return False
            if path == "/hello-request/wait":
                self._stop.wait(_WAIT_LIMIT)
                conn.error = "waited"
                return False
        elif path == "/key-update":
            if (lib.SSL_key_update(ssl, _SSL_KEY_UPDATE_REQUESTED) != 1
                    or lib.SSL_do_handshake(ssl) != 1):
                conn.error = "cannot send KeyUpdate"
                return False
        return True
