"""A real TLS backend server for the integration tests.

The server listens on 127.0.0.1:<ephemeral port>, presents a certificate chain
and answers every HTTP/1.1 request with ``200`` and the body
``backend-ok <path>\\n`` (keep-alive unless the client asks to close).

Everything it observes is recorded per TCP connection so that tests can
assert, for example, that a refused backend received zero bytes of
application data, which SNI the proxy sent, and how many TLS connections
were accepted:

    be = TLSBackend(pki.chain("good"), pki.key("good")).start()
    ...
    assert be.app_bytes == 0
    assert be.snis == ["good.test"]
    assert be.accepted == 1

TLS session resumption is observed from the server side too: every
connection records whether the ClientHello offered a session (a TLS 1.3
pre_shared_key or a non-empty TLS 1.2 session ticket) and whether the
handshake resumed one (``session_reused``):

    be = TLSBackend(chain, key, max_version=ssl.TLSVersion.TLSv1_2).start()
    ...
    assert be.resumed == 39 and be.full == 1

With ``client_ca=<PEM file>`` the backend asks for a client certificate
(optional: a client may send none) and verifies one against that file;
every connection records the commonName of the client certificate the
TLS session carries, or None (``client_cn``).  A resumed session carries
the certificate of the full handshake that made it: the client sends none
again.
"""

import socket
import ssl
import struct
import threading
import time

from cryptography import x509
from cryptography.x509.oid import NameOID

from harness.servers import LoopbackServer

# TLS extension numbers looked for in a ClientHello (RFC 8446, RFC 5077)
_EXT_SESSION_TICKET = 35
_EXT_PRE_SHARED_KEY = 41


def _client_hello_offers_session(record):
    """Does this TLS record (a ClientHello) offer a session to resume?
    True / False, or None when it cannot be parsed."""
    try:
        if len(record) < 9 or record[0] != 22 or record[5] != 1:
            return None
        body = record[9:]
        pos = 2 + 32                                    # version, random
        pos += 1 + body[pos]                            # session id
        pos += 2 + struct.unpack_from("!H", body, pos)[0]   # cipher suites
        pos += 1 + body[pos]                            # compression
        if pos + 2 > len(body):
            return False                                # no extensions
        end = pos + 2 + struct.unpack_from("!H", body, pos)[0]
        pos += 2
        offered = False
        while pos + 4 <= end:
            etype, elen = struct.unpack_from("!HH", body, pos)
            if etype == _EXT_PRE_SHARED_KEY or (
                    etype == _EXT_SESSION_TICKET and elen > 0):
                offered = True
            pos += 4 + elen
        return offered
    except (IndexError, struct.error):
        return None


def _client_cn(tls):
    """CN of the client certificate the TLS session carries, or None."""
    der = tls.getpeercert(binary_form=True)
    if not der:
        return None
    names = x509.load_der_x509_certificate(der).subject \
        .get_attributes_for_oid(NameOID.COMMON_NAME)
    return names[0].value if names else ""


class Connection:
    """What the backend saw on one accepted TCP connection."""

    def __init__(self, cid, peer):
        self.id = cid
        self.peer = peer
        self.sni = None             # server_name sent by the client, or None
        self.sni_seen = False       # the SNI callback ran
        self.handshake_ok = None    # None: in progress, True / False: done
        self.handshake_error = None
        self.tls_version = None
        self.session_reused = None  # the handshake resumed a session
        self.session_offered = None  # the ClientHello offered one
        self.client_cn = None       # CN of the client certificate, or None
        self.data = bytearray()     # every byte of application data received
        self.requests = []          # (method, target) of each parsed request
        self.closed = False

    def __repr__(self):
        return (f"<Connection #{self.id} sni={self.sni!r} "
                f"handshake_ok={self.handshake_ok} "
                f"error={self.handshake_error!r} bytes={len(self.data)} "
                f"requests={self.requests} closed={self.closed} "
                f"version={self.tls_version} offered={self.session_offered} "
                f"reused={self.session_reused} "
                f"client={self.client_cn!r}>")


class TLSBackend(LoopbackServer):
    """Threaded TLS + HTTP/1.1 server recording all it receives."""

    label = "backend"

    def __init__(self, chain_file, key_file, min_version=None,
                 max_version=None, host="127.0.0.1", idle_timeout=30.0,
                 port=0, resumption=True, num_tickets=None,
                 client_ca=None, handshake_delay=0.0):
        """port=0 picks an ephemeral port; a given port lets a test
        restart a backend where the proxy expects it.

        resumption=False: every connection gets an SSL context of its own
        (its own session cache and ticket keys), so a session the client
        offers is never one this server can resume: the offer is declined
        and a full handshake follows.  num_tickets sets how many TLS 1.3
        session tickets are sent after a handshake (OpenSSL's default: 2;
        0 sends none).  client_ca: a PEM file of CAs; the backend then
        asks for a client certificate (CERT_OPTIONAL: none is accepted
        too) and verifies one sent against these CAs.  handshake_delay:
        seconds the backend waits with its answer to a ClientHello (a slow
        backend: the proxy's handshake ends that much later)."""
        super().__init__(port=port, host=host)
        self.chain_file = chain_file
        self.key_file = key_file
        self.idle_timeout = idle_timeout
        self._conns = []
        self._local = threading.local()
        self.min_version = min_version
        self.max_version = max_version
        self.resumption = resumption
        self.num_tickets = num_tickets
        self.client_ca = client_ca
        self.handshake_delay = handshake_delay
        self.ctx = self._new_ctx()

    def _new_ctx(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.chain_file, self.key_file)
        if self.min_version is not None:
            ctx.minimum_version = self.min_version
        if self.max_version is not None:
            ctx.maximum_version = self.max_version
        if self.num_tickets is not None:
            ctx.num_tickets = self.num_tickets
        if self.client_ca is not None:
            ctx.load_verify_locations(cafile=self.client_ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.sni_callback = self._on_sni
        return ctx

    # ------------------------------------------------------------ recording
    @property
    def connections(self):
        with self._lock:
            return list(self._conns)

    @property
    def accepted(self):
        """Number of TCP connections accepted (each one a TLS attempt)."""
        with self._lock:
            return len(self._conns)

    @property
    def handshakes_ok(self):
        with self._lock:
            return sum(1 for c in self._conns if c.handshake_ok is True)

    @property
    def handshakes_failed(self):
        with self._lock:
            return sum(1 for c in self._conns if c.handshake_ok is False)

    @property
    def app_bytes(self):
        """Total bytes of application data received over all connections."""
        with self._lock:
            return sum(len(c.data) for c in self._conns)

    @property
    def received(self):
        """All application data received, connections concatenated."""
        with self._lock:
            return b"".join(bytes(c.data) for c in self._conns)

    @property
    def resumed(self):
        """Number of completed handshakes that resumed a session."""
        with self._lock:
            return sum(1 for c in self._conns
                       if c.handshake_ok is True and c.session_reused)

    @property
    def full(self):
        """Number of completed full (not resumed) handshakes."""
        with self._lock:
            return sum(1 for c in self._conns
                       if c.handshake_ok is True and not c.session_reused)

    @property
    def offers(self):
        """Number of ClientHellos that offered a session to resume."""
        with self._lock:
            return sum(1 for c in self._conns if c.session_offered)

    @property
    def snis(self):
        """The SNI of every connection whose ClientHello was processed."""
        with self._lock:
            return [c.sni for c in self._conns if c.sni_seen]

    @property
    def client_cns(self):
        """The client certificate's CN (or None) of every completed
        handshake, in the order of the connections."""
        with self._lock:
            return [c.client_cn for c in self._conns
                    if c.handshake_ok is True]

    @property
    def requests(self):
        with self._lock:
            return [r for c in self._conns for r in c.requests]

    def wait_for(self, predicate, timeout=5.0, what="condition"):
        """Wait until predicate(self) is true; raise AssertionError if not."""
        self.wait_until(lambda: predicate(self), timeout, what)

    def wait_settled(self, timeout=5.0):
        """Wait until no accepted connection is still handshaking."""
        self.wait_for(
            lambda b: all(c.handshake_ok is not None for c in b.connections),
            timeout, "all handshakes to finish")

    def describe(self):
        return "\n".join(repr(c) for c in self.connections) or "(none)"

    # ------------------------------------------------------------ internals
    def _on_sni(self, sslobj, server_name, ctx):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.sni = server_name
            conn.sni_seen = True
        return None

    def on_accept(self, sock, peer, cid):
        conn = Connection(cid, peer)
        with self._lock:
            self._conns.append(conn)
        return conn

    def handle(self, raw, conn):
        self._local.conn = conn
        raw.settimeout(self.idle_timeout)
        tls = None
        try:
            conn.session_offered = self._peek_client_hello(raw)
            if self.handshake_delay:
                time.sleep(self.handshake_delay)    # a slow backend
            ctx = self.ctx if self.resumption else self._new_ctx()
            try:
                tls = ctx.wrap_socket(raw, server_side=True,
                                      do_handshake_on_connect=False)
                self.track(tls)
                tls.do_handshake()
            except (ssl.SSLError, OSError) as e:
                conn.handshake_ok = False
                conn.handshake_error = f"{type(e).__name__}: {e}"
                self.notify()
                return
            conn.client_cn = _client_cn(tls)
            conn.tls_version = tls.version()
            conn.session_reused = tls.session_reused
            conn.handshake_ok = True
            self.notify()
            self._http_loop(tls, conn)
        finally:
            conn.closed = True
            for s in (tls, raw):
                if s is None:
                    continue
                try:
                    s.close()
                except OSError:
                    pass
            self.notify()

    def _peek_client_hello(self, raw):
        """Look at the first TLS record without consuming it: does the
        ClientHello offer a session?  None if it cannot be read."""
        deadline = time.monotonic() + self.idle_timeout
        want = 5
        try:
            while True:
                data = raw.recv(want, socket.MSG_PEEK)
                if not data or data[0] != 22:
                    return None
                if want == 5 and len(data) >= 5:
                    want = 5 + struct.unpack("!H", data[3:5])[0]
                    continue
                if len(data) >= want:
                    return _client_hello_offers_session(data)
                if time.monotonic() > deadline:
                    return None
                # the rest of the record is on its way: wait for it
                time.sleep(0.001)  # bounded by the deadline
        except OSError:
            return None

    def _http_loop(self, tls, conn):
        buf = b""
        while True:
            try:
                chunk = tls.recv(65536)
            except (ssl.SSLError, OSError):
                return
            if not chunk:
                return
            with self._lock:
                conn.data += chunk
            self.notify()
            buf += chunk
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = buf[:end].decode("latin-1")
                lines = head.split("\r\n")
                parts = lines[0].split(" ")
                method = parts[0]
                target = parts[1] if len(parts) > 1 else ""
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                clen = int(headers.get("content-length", "0") or 0)
                if len(buf) < end + 4 + clen:
                    break  # wait for the rest of the body
                buf = buf[end + 4 + clen:]
                with self._lock:
                    conn.requests.append((method, target))
                self.notify()
                close = headers.get("connection", "").lower() == "close"
                body = f"backend-ok {target}\n".encode()
                resp = (
                    "HTTP/1.1 200 OK\r\n"
                    "Content-Type: text/plain\r\n"
                    f"Content-Length: {len(body)}\r\n"
                    f"X-Backend-SNI: {conn.sni or '-'}\r\n"
                    f"Connection: {'close' if close else 'keep-alive'}\r\n"
                    "\r\n").encode() + (body if method != "HEAD" else b"")
                try:
                    tls.sendall(resp)
                except (ssl.SSLError, OSError):
                    return
                if close:
                    return
