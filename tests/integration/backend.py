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
"""

import socket
import ssl
import threading
import time


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
        self.data = bytearray()     # every byte of application data received
        self.requests = []          # (method, target) of each parsed request
        self.closed = False

    def __repr__(self):
        return (f"<Connection #{self.id} sni={self.sni!r} "
                f"handshake_ok={self.handshake_ok} "
                f"error={self.handshake_error!r} bytes={len(self.data)} "
                f"requests={self.requests} closed={self.closed}>")


class TLSBackend:
    """Threaded TLS + HTTP/1.1 server recording all it receives."""

    def __init__(self, chain_file, key_file, min_version=None,
                 max_version=None, host="127.0.0.1", idle_timeout=30.0):
        self.chain_file = chain_file
        self.key_file = key_file
        self.host = host
        self.idle_timeout = idle_timeout
        self.port = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._conns = []
        self._socks = []
        self._threads = []
        self._local = threading.local()
        self._stopping = False
        self._listener = None
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(chain_file, key_file)
        if min_version is not None:
            self.ctx.minimum_version = min_version
        if max_version is not None:
            self.ctx.maximum_version = max_version
        self.ctx.sni_callback = self._on_sni

    # ------------------------------------------------------------ lifecycle
    def start(self):
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((self.host, 0))
        lsock.listen(64)
        self.port = lsock.getsockname()[1]
        self._listener = lsock
        t = threading.Thread(target=self._accept_loop, daemon=True,
                             name=f"backend-{self.port}")
        t.start()
        self._threads.append(t)
        return self

    def stop(self):
        self._stopping = True
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url_ip(self):
        return f"https://127.0.0.1:{self.port}/"

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
    def snis(self):
        """The SNI of every connection whose ClientHello was processed."""
        with self._lock:
            return [c.sni for c in self._conns if c.sni_seen]

    @property
    def requests(self):
        with self._lock:
            return [r for c in self._conns for r in c.requests]

    def wait_for(self, predicate, timeout=5.0, what="condition"):
        """Wait until predicate(self) is true; raise AssertionError if not."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"backend :{self.port}: timeout waiting for {what}; "
                    f"connections:\n{self.describe()}")
            with self._cond:
                self._cond.wait(min(remaining, 0.05))

    def wait_settled(self, timeout=5.0):
        """Wait until no accepted connection is still handshaking."""
        self.wait_for(
            lambda b: all(c.handshake_ok is not None for c in b.connections),
            timeout, "all handshakes to finish")

    def describe(self):
        return "\n".join(repr(c) for c in self.connections) or "(none)"

    # ------------------------------------------------------------ internals
    def _notify(self):
        with self._cond:
            self._cond.notify_all()

    def _on_sni(self, sslobj, server_name, ctx):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.sni = server_name
            conn.sni_seen = True
        return None

    def _accept_loop(self):
        cid = 0
        while not self._stopping:
            try:
                sock, peer = self._listener.accept()
            except OSError:
                break
            cid += 1
            conn = Connection(cid, peer)
            with self._lock:
                self._conns.append(conn)
                self._socks.append(sock)
            self._notify()
            t = threading.Thread(target=self._serve, args=(sock, conn),
                                 daemon=True,
                                 name=f"backend-{self.port}-c{cid}")
            t.start()
            with self._lock:
                self._threads.append(t)

    def _serve(self, raw, conn):
        self._local.conn = conn
        raw.settimeout(self.idle_timeout)
        tls = None
        try:
            try:
                tls = self.ctx.wrap_socket(raw, server_side=True,
                                           do_handshake_on_connect=False)
                with self._lock:
                    self._socks.append(tls)
                tls.do_handshake()
            except (ssl.SSLError, OSError) as e:
                conn.handshake_ok = False
                conn.handshake_error = f"{type(e).__name__}: {e}"
                self._notify()
                return
            conn.handshake_ok = True
            conn.tls_version = tls.version()
            self._notify()
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
            self._notify()

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
            self._notify()
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
                self._notify()
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
