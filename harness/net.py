"""Loopback ports and a small HTTP(S) client."""

import http.client
import random
import socket
import ssl

from harness import HarnessError, poll


def free_port():
    """A port free now, below the ephemeral range and not handed out
    before by this process (see pick_ports)."""
    return pick_ports(1)[0]


def listening(port, host="127.0.0.1"):
    """Something accepts connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def port_free(port):
    """Nothing listens on 127.0.0.1:port and it can be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return not listening(port)


# Ports handed out by this process. A port is chosen free but bound
# later (Apache's Listen, a backend's given port), so two choices made
# before either binds must not meet; servers bound to port 0 take theirs
# from the ephemeral range (32768 and up on Linux), which is never
# chosen here.
_handed_out = set()


def pick_ports(n, low=20000, high=32000):
    """n free ports below the ephemeral range, never one this process
    handed out before, so that neither an outgoing connection nor a
    server bound to port 0 can sit on one of them while its own server
    is not yet listening there."""
    rng = random.SystemRandom()
    if len(_handed_out) > (high - low) // 2:
        _handed_out.clear()         # long bound or released by now
    ports = []
    for _ in range(1000 * n):       # bounded: a busy range fails loudly
        if len(ports) == n:
            _handed_out.update(ports)
            return ports
        p = rng.randrange(low, high)
        if p not in ports and p not in _handed_out and port_free(p):
            ports.append(p)
    raise HarnessError(f"no {n} free ports in {low}-{high}")


def wait_port(port, timeout=10.0, host="127.0.0.1"):
    """Wait until something listens on host:port (HarnessError if not
    within timeout seconds)."""
    if not poll(lambda: listening(port, host), timeout):
        raise HarnessError(f"nothing listens on {host}:{port} after "
                           f"{timeout}s")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"<Response {self.status} {self.body[:200]!r}>"


class _HTTPSConnection(http.client.HTTPSConnection):
    """Connects to an address and sends the SNI given (Python sends none
    for an IP address)."""

    def __init__(self, host, port, sni, **kw):
        super().__init__(host, port, **kw)
        self._sni = sni

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(
            self.sock, server_hostname=self._sni or self.host)


def request(port, path="/", host=None, tls=True, sni=None, headers=None,
            method="GET", body=None, timeout=15.0, address="127.0.0.1"):
    """One request on a fresh connection to address:port (TLS without
    verification when tls, with SNI sni if given) with Host host (default
    localhost:port) and Connection: close; returns a Response."""
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = _HTTPSConnection(address, port, sni, timeout=timeout,
                                context=ctx)
    else:
        conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=True,
                        skip_accept_encoding=True)
        conn.putheader("Host", host or f"localhost:{port}")
        conn.putheader("Connection", "close")
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, dict(r.getheaders()), data)
    finally:
        conn.close()
