"""Loopback TCP servers that serve each connection in a thread of its
own: the base of the integration tests' backends (TLSBackend, the libssl
backend, the broken backends of the fault tests, a silent cache)."""

import socket
import threading
import time


class LoopbackServer:
    """Listens on host (127.0.0.1) and a port (port=0: an ephemeral one,
    known as .port once constructed).  start() runs the accept loop in a
    thread: for each connection on_accept(sock, peer, cid) runs in that
    thread (record the connection there, cid counts from 1) and
    handle(sock, record) in a new one.  stop() closes the listener, shuts
    every tracked socket down (and closes it, if close_on_stop) and joins
    the threads (5 s each at most)."""

    close_on_stop = True
    label = "server"

    def __init__(self, port=0, host="127.0.0.1", backlog=64):
        self.host = host
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._socks = []
        self._threads = []
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(backlog)
        self.port = self._listener.getsockname()[1]

    # ------------------------------------------------------------ lifecycle
    def start(self):
        self._spawn(self._accept_loop, f"{self.label}-{self.port}")
        return self

    def stop(self):
        self._stop.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            socks = list(self._socks)
            threads = list(self._threads)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            if self.close_on_stop:
                try:
                    s.close()
                except OSError:
                    pass
        for t in threads:
            t.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url_ip(self):
        return f"https://127.0.0.1:{self.port}/"

    # ------------------------------------------------------------ hooks
    def on_accept(self, sock, peer, cid):
        """Record a new connection (in the accept thread); the value is
        handed to handle()."""
        return None

    def handle(self, sock, record):
        raise NotImplementedError

    def describe(self):
        return ""

    # ------------------------------------------------------------ helpers
    def track(self, sock):
        """A socket that stop() shuts down."""
        with self._lock:
            self._socks.append(sock)

    def notify(self):
        with self._cond:
            self._cond.notify_all()

    def wait_until(self, check, timeout=5.0, what="condition"):
        """Wait until check() is true (woken by notify(), or every 20 ms);
        AssertionError with describe() if not within timeout."""
        deadline = time.monotonic() + timeout
        while not check():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.label} :{self.port}: timeout waiting for "
                    f"{what} ({timeout}s); connections:\n{self.describe()}")
            with self._cond:
                self._cond.wait(min(remaining, 0.02))

    def read_until_stopped(self, sock, keep):
        """Read sock until the peer closes it or stop() is called, and
        hand each piece to keep() (under the lock); never answer."""
        sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                data = sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            with self._lock:
                keep(data)

    def _spawn(self, target, name, *args):
        t = threading.Thread(target=target, args=args, daemon=True,
                             name=name)
        with self._lock:
            self._threads.append(t)
        t.start()

    def _accept_loop(self):
        cid = 0
        while not self._stop.is_set():
            try:
                sock, peer = self._listener.accept()
            except OSError:
                break
            cid += 1
            self.track(sock)
            record = self.on_accept(sock, peer, cid)
            self.notify()
            self._spawn(self.handle, f"{self.label}-{self.port}-c{cid}",
                        sock, record)
