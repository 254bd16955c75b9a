"""A real TLS WebSocket backend and client for the integration tests,
written with python3-websockets (Debian's 10.4, its asyncio API).

The backend runs an asyncio event loop in a thread of its own, listens on
127.0.0.1:<ephemeral port> (or a given address and port), presents a
certificate chain and echoes every message of every WebSocket it accepts.
It records what a test needs to say whether a proxy reached it:

    be = WSBackend(pki.chain("good"), pki.key("good")).start()
    ...
    assert be.hellos == ["good.test"]   # SNI of every ClientHello
    assert be.handshakes_ok == 1        # TLS handshakes completed
    assert be.app_bytes == 0            # bytes received after them
    assert be.upgrades == [("/x", ...)] # upgrade requests accepted
    be.stop()

The client side, ws_echo(), opens a WebSocket through the frontend (TLS,
its test certificate not verified), sends one message and returns the
echo, or the HTTP status the frontend answered the upgrade with.  Every
wait of both sides is bounded by a timeout.
"""

import asyncio
import logging
import socket
import ssl
import threading
import time

try:
    import websockets
    import websockets.exceptions
    import websockets.legacy.server
except ImportError as e:
    raise ImportError("the WebSocket tests need python3-websockets "
                      "(apt-get install python3-websockets)") from e

# a TLS handshake the proxy aborts is an error of the backend's event
# loop, logged by asyncio; the tests read what the backend recorded
logging.getLogger("asyncio").setLevel(logging.CRITICAL)
logging.getLogger("websockets").setLevel(logging.CRITICAL)

TIMEOUT = 10.0


class WSBackend:
    """TLS WebSocket echo server recording what it received."""

    def __init__(self, chain_file, key_file, host="127.0.0.1", port=0,
                 max_version=None, num_tickets=None):
        """port=0 picks an ephemeral port; max_version limits the TLS
        version (ssl.TLSVersion); num_tickets sets how many TLS 1.3
        session tickets follow a handshake (OpenSSL's default: 2)."""
        self.max_version = max_version
        self.num_tickets = num_tickets
        self.chain_file = chain_file
        self.key_file = key_file
        self.host = host
        self._want_port = port
        self.port = None
        self._lock = threading.Lock()
        self._hellos = []           # SNI of each ClientHello (None: none)
        self._handshakes_ok = 0     # TLS handshakes completed
        self._app = bytearray()     # every byte received after them
        self._upgrades = []         # (path, headers) of accepted upgrades
        self._messages = []         # messages echoed
        self._loop = None
        self._server = None
        self._thread = None
        self._ready = threading.Event()
        self._error = None

    # ------------------------------------------------------------ records
    @property
    def hellos(self):
        with self._lock:
            return list(self._hellos)

    @property
    def handshakes_ok(self):
        with self._lock:
            return self._handshakes_ok

    @property
    def app_bytes(self):
        with self._lock:
            return len(self._app)

    @property
    def received(self):
        with self._lock:
            return bytes(self._app)

    @property
    def upgrades(self):
        with self._lock:
            return list(self._upgrades)

    @property
    def messages(self):
        with self._lock:
            return list(self._messages)

    def describe(self):
        return (f"<WSBackend {self.host}:{self.port} hellos={self.hellos} "
                f"handshakes_ok={self.handshakes_ok} "
                f"app_bytes={self.app_bytes} "
                f"upgrades={[p for p, _ in self.upgrades]} "
                f"messages={self.messages}>")

    def wait_for(self, predicate, timeout=5.0, what="condition"):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"backend: no {what} within {timeout}s:"
                                     f" {self.describe()}")
            time.sleep(0.02)  # polling interval, bounded by the deadline

    # ------------------------------------------------------------ server
    def _ctx(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.chain_file, self.key_file)
        if self.max_version is not None:
            ctx.maximum_version = self.max_version
        if self.num_tickets is not None:
            ctx.num_tickets = self.num_tickets

        def on_hello(sslobj, server_name, _ctx):
            with self._lock:
                self._hellos.append(server_name)
        ctx.sni_callback = on_hello
        return ctx

    def _protocol(self):
        backend = self

        class Recording(websockets.legacy.server.WebSocketServerProtocol):
            # asyncio calls connection_made once the TLS handshake is
            # done, and data_received with the bytes it decrypted
            def connection_made(self, transport):
                with backend._lock:
                    backend._handshakes_ok += 1
                super().connection_made(transport)

            def data_received(self, data):
                with backend._lock:
                    backend._app += data
                super().data_received(data)

            async def process_request(self, path, headers):
                with backend._lock:
                    backend._upgrades.append((path, headers))
                return None
        return Recording

    async def _echo(self, ws):
        async for message in ws:
            with self._lock:
                self._messages.append(message)
            await ws.send(message)

    def start(self):
        """Bind (an OSError, e.g. the port is taken, is raised here), then
        serve from a thread of its own."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._want_port))
            sock.listen(64)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, args=(sock,),
                                        daemon=True,
                                        name=f"ws-backend-{self.port}")
        self._thread.start()
        if not self._ready.wait(TIMEOUT):
            raise AssertionError("WebSocket backend did not start")
        if self._error:
            raise self._error
        return self

    def _run(self, sock):
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def open_server():
            return await websockets.serve(
                self._echo, sock=sock, ssl=self._ctx(),
                create_protocol=self._protocol(),
                ssl_handshake_timeout=TIMEOUT, close_timeout=2,
                ping_interval=None)
        try:
            self._server = loop.run_until_complete(open_server())
        except Exception as e:  # reported to start()
            self._error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    def stop(self):
        loop, server = self._loop, self._server
        if loop is None or server is None or loop.is_closed():
            return

        async def close():
            server.close()
            try:
                await asyncio.wait_for(server.wait_closed(), TIMEOUT)
            finally:
                loop.stop()
        try:
            asyncio.run_coroutine_threadsafe(close(), loop)
        except RuntimeError:
            return      # the loop is gone already
        self._thread.join(TIMEOUT + 2)
        assert not self._thread.is_alive(), "WebSocket backend did not stop"

    @property
    def url_ip(self):
        return f"wss://{self.host}:{self.port}/"


# ---------------------------------------------------------------- client
class Refused(Exception):
    """The frontend answered the upgrade request with a status, not 101."""

    def __init__(self, status):
        super().__init__(f"upgrade answered {status}")
        self.status = status


async def _echo_once(url, message, timeout):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE     # the frontend's test certificate
    try:
        async with websockets.connect(url, ssl=ctx, open_timeout=timeout,
                                      close_timeout=2,
                                      ping_interval=None) as ws:
            await ws.send(message)
            return await asyncio.wait_for(ws.recv(), timeout)
    except websockets.exceptions.InvalidStatusCode as e:
        raise Refused(e.status_code)


def ws_echo(env, path, message, timeout=TIMEOUT):
    """Open wss://127.0.0.1:<env.port><path>, send message, return the
    message received back; raise Refused(status) when the frontend
    answers the upgrade with another status than 101."""
    return asyncio.run(asyncio.wait_for(
        _echo_once(f"wss://127.0.0.1:{env.port}{path}", message, timeout),
        timeout + 5))


def ws_status(env, path, message="ping", timeout=TIMEOUT):
    """101 when the WebSocket echoes message, else the status the frontend
    answered the upgrade with."""
    try:
        echo = ws_echo(env, path, message, timeout)
    except Refused as e:
        return e.status
    assert echo == message, (echo, message)
    return 101
