"""An OCSP responder on 127.0.0.1: http.server in threads of this
process (it cannot outlive it), answering POSTed requests and GET
requests (base64 in the path) with what answer(der) returns:
(state, DER bytes of the response, serial asked about or None), e.g.
functools.partial(pki.ocsp_answer, issuer="int").  It records the serial
of every request answered (requests) and counts the answers by state
(answers); with log_dir, each request is a line of log_dir/ocsp.log and
a failure a line of log_dir/error.log in Apache's format."""

import base64
import http.server
import os
import threading
import time
import urllib.parse

from harness import net


class OCSPResponder:
    def __init__(self, answer, port=0, log_dir=None, name="ocsp"):
        self.name = name
        self.answer = answer
        self.requests = []          # serial of each request answered
        self.answers = {}           # state -> count
        self.access_log_file = self.error_log_file = None
        if log_dir:
            os.makedirs(log_dir, exist_ok=True)
            self.access_log_file = os.path.join(log_dir, "ocsp.log")
            self.error_log_file = os.path.join(log_dir, "error.log")
        self._lock = threading.Lock()
        responder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 5             # a silent client does not hold it

            def reply(self, der):
                body = responder._respond(der, self)
                if body is None:
                    self.send_error(500)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                self.reply(self.rfile.read(min(n, 65536)))

            def do_GET(self):
                path = urllib.parse.unquote(self.path.lstrip("/"))
                try:
                    der = base64.b64decode(path, validate=False)
                except ValueError:
                    der = b""
                self.reply(der)

            def log_message(self, *_a):
                pass                # logged in _respond()

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                                       Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self._thread = None

    def _log(self, path, line):
        if path:
            with self._lock, open(path, "a") as f:
                f.write(line + "\n")

    def _respond(self, der, handler):
        try:
            state, body, serial = self.answer(der)
        except Exception as e:      # logged, and a 500
            self._log(self.error_log_file, f"[{time.ctime()}] [ocsp:error] "
                                      f"OCSP request failed: {e!r}")
            return None
        with self._lock:
            self.requests.append(serial)
            self.answers[state] = self.answers.get(state, 0) + 1
        self._log(self.access_log_file,
                  f"{time.strftime('%Y-%m-%dT%H:%M:%S')} "
                  f"{handler.client_address[0]} {handler.command} serial "
                  f"{serial if serial is None else hex(serial)} {state}")
        return body

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2},
                                        name="ocsp-responder", daemon=True)
        self._thread.start()
        net.wait_port(self.port, 5)
        return self

    def stop(self):
        if self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._thread = None
