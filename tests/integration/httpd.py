"""A private Apache httpd 2.4 instance for the integration tests.

Each HttpdEnv owns a ServerRoot in a fresh temporary directory, listens on an
ephemeral loopback port, runs the event MPM with a single child process and is
driven with ``apache2 -f <conf> -k start|stop`` (never apache2ctl, which would
read the system envvars).  The configuration is rendered from a virtual host
body chosen by the test.
"""

import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

APACHE2 = os.environ.get("APACHE2", "/usr/sbin/apache2")
MODULES_DIR = os.environ.get("APACHE2_MODULES", "/usr/lib/apache2/modules")
DEFAULT_MODULE = os.path.join(REPO, ".libs", "mod_reencrypt.so")


def module_path():
    return os.environ.get("REENCRYPT_MODULE") or DEFAULT_MODULE


def apache_environment():
    """The environment every apache2 of the harness runs with: this
    process's, plus LD_PRELOAD=$REENCRYPT_APACHE_PRELOAD when that is set
    (``make check-asan`` sets it to the AddressSanitizer runtime, so that a
    module built with -fsanitize=address,undefined loads into the
    uninstrumented apache2).  Only apache2 gets it: the Python backends and
    the other programs the tests start run without it."""
    env = dict(os.environ)
    preload = env.pop("REENCRYPT_APACHE_PRELOAD", "")
    if preload:
        env["LD_PRELOAD"] = preload
    return env


# modules loaded by default, in this order; "reencrypt" is placed by the
# reencrypt= argument of HttpdEnv.write_config()
STOCK_MODULES = [
    ("mpm_event_module", "mod_mpm_event.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("socache_shmcb_module", "mod_socache_shmcb.so"),
    ("ssl_module", "mod_ssl.so"),
    ("proxy_module", "mod_proxy.so"),
    ("proxy_http_module", "mod_proxy_http.so"),
]
MODULE_ALIASES = {
    "mpm_event": "mpm_event_module",
    "authz_core": "authz_core_module",
    "socache_shmcb": "socache_shmcb_module",
    "ssl": "ssl_module",
    "proxy": "proxy_module",
    "proxy_http": "proxy_http_module",
}

# levels the error-log guard refuses unless a test declared the line
GUARDED_LEVELS = ("emerg", "alert", "crit", "error", "warn")
# notice lines it refuses as well: httpd logs a process killed by a signal
# it did not send itself (a crash: SIGSEGV, SIGBUS, SIGABRT, ...) at
# notice level, which LogLevel cannot hide
GUARDED_NOTICES = (
    "AH00051",  # child pid N exit signal S, possible coredump in DIR
    "AH00052",  # child pid N exit signal S
    "AH00060",  # seg fault or similar nasty error detected in the parent
)


def _version_tuple(text):
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def environment_warnings():
    """Warnings every httpd on this machine logs whatever its configuration,
    as {tag: (cause, fix)}: what the machine's packages cause, not a test.

    AH01882: mod_ssl was built against a newer OpenSSL than the libssl3
    installed (Debian's apache2 depends on "libssl3 (>= 3.0.0)" only, so
    installing it does not upgrade an older libssl3)."""
    found = {}
    mod_ssl = os.path.join(MODULES_DIR, "mod_ssl.so")
    try:
        with open(mod_ssl, "rb") as f:
            m = re.search(rb"OpenSSL (\d+\.\d+\.\d+)[a-z]* \d+ [A-Z][a-z]+ \d+",
                          f.read())
    except OSError:
        m = None
    if m:
        built = m.group(1).decode()
        lv = re.search(r"(\d+\.\d+\.\d+)", ssl.OPENSSL_VERSION)
        loaded = lv.group(1) if lv else built
        if _version_tuple(built) > _version_tuple(loaded):
            found["AH01882"] = (
                f"mod_ssl was built against OpenSSL {built}, the installed "
                f"libssl3 is {loaded}",
                "apt-get install libssl3 openssl (tests/run and "
                "tools/match-libssl do it)")
    return found


ENVIRONMENT_WARNINGS = environment_warnings()

# what a sanitizer writes to stderr (the error log) when it cannot write
# its report file
SANITIZER_LINE_RE = re.compile(
    r"(Sanitizer|: runtime error: |ERROR: Can't open file: )")

LOG_LINE_RE = re.compile(
    r"^\[(?P<date>[^\]]+)\] \[(?:(?P<module>[^:\]\s]+):)?"
    r"(?P<level>emerg|alert|crit|error|warn|notice|info|debug|trace\d)\]"
    r"(?P<rest>.*)$")
TAG_RE = re.compile(r"\b((?:AH|RE)\d{5})\b")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0, host="127.0.0.1"):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on {host}:{port} "
                                     f"after {timeout}s")
            time.sleep(0.02)  # polling interval, bounded by the deadline


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


class LogLine:
    def __init__(self, raw, m):
        self.raw = raw
        self.module = m.group("module")
        self.level = m.group("level")
        self.rest = m.group("rest")
        t = TAG_RE.search(self.rest)
        self.tag = t.group(1) if t else None

    @property
    def message(self):
        """The text after the [pid] / [client] / tag prefixes."""
        return self.rest

    def __repr__(self):
        return self.raw


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


class HttpdEnv:
    """One private httpd: config rendering, configtest, start/stop, logs."""

    def __init__(self, pki, base_dir=None, name="httpd"):
        self.pki = pki
        if base_dir is None:
            base_dir = tempfile.mkdtemp(prefix="reencrypt-httpd-")
        self.root = os.path.join(base_dir, name)
        os.makedirs(self.root, exist_ok=True)
        for sub in ("conf", "logs", "run", "htdocs"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        # the children run as nobody:nogroup when we are root
        for d in (base_dir, self.root):
            os.chmod(d, 0o755)
        for sub in ("logs", "run", "htdocs"):
            os.chmod(os.path.join(self.root, sub), 0o777)
        self.conf_file = os.path.join(self.root, "conf", "httpd.conf")
        self.error_log_file = os.path.join(self.root, "logs", "error_log")
        self.pid_file = os.path.join(self.root, "run", "httpd.pid")
        # for CustomLog lines written by a test's configuration
        self.access_log_file = os.path.join(self.root, "logs", "access_log")
        self.port = free_port()
        self.conf_text = None
        self.running = False
        self.started_once = False
        self._expected_tags = set()
        self._expected_res = []
        self.log_checked = False

    # ----------------------------------------------------------- config
    @property
    def module(self):
        return module_path()

    def write_config(self, vhost="", server="", reencrypt="after",
                     modules=None, frontend_tls=True, loglevel="warn",
                     extra_listen=False, processes=1, threads=8):
        """Render conf/httpd.conf and return its path.

        vhost       directives inside the frontend <VirtualHost>
        server      directives at server-config level (after LoadModules)
        reencrypt   "after": LoadModule reencrypt_module after the stock
                    modules; "before": right after the MPM, before mod_ssl,
                    mod_proxy and mod_proxy_http; None: not loaded
        modules     stock modules to load (names like "ssl", "proxy"),
                    default all of STOCK_MODULES
        frontend_tls the frontend virtual host speaks TLS (needs mod_ssl)
        processes   number of child processes the server keeps running
                    (threads each; default 1, so that every request
                    shares one backend connection pool)
        threads     worker threads of each child process (default 8)
        """
        if reencrypt and not os.path.exists(self.module):
            raise AssertionError(
                f"mod_reencrypt not found at {self.module}: build it first "
                f"(autoreconf -fi && ./configure && make) or set "
                f"REENCRYPT_MODULE")
        if modules is None:
            wanted = [m for m, _ in STOCK_MODULES]
        else:
            wanted = ["mpm_event_module"] + [
                MODULE_ALIASES.get(m, m) for m in modules]
        if frontend_tls and "ssl_module" not in wanted:
            raise ValueError("a TLS frontend needs mod_ssl")
        load = []
        re_line = (f'LoadModule reencrypt_module "{self.module}"'
                   if reencrypt else None)
        for mod, so in STOCK_MODULES:
            if mod not in wanted:
                continue
            load.append(f'LoadModule {mod} "{MODULES_DIR}/{so}"')
            if mod == "mpm_event_module" and reencrypt == "before":
                load.append(re_line)
        if reencrypt == "after":
            load.append(re_line)
        elif reencrypt not in (None, "before"):
            raise ValueError(f"reencrypt={reencrypt!r}")

        r = self.root
        lines = [
            "# generated by the mod_reencrypt integration tests",
            f'ServerRoot "{r}"',
            f'DefaultRuntimeDir "{r}/run"',
            f'PidFile "{r}/run/httpd.pid"',
            f'ErrorLog "{r}/logs/error_log"',
            f"LogLevel {loglevel}",
            "ServerName localhost",
            f'DocumentRoot "{r}/htdocs"',
            f"Listen 127.0.0.1:{self.port}",
            "",
            *load,
            "",
            f"Mutex file:{r}/run default",
            f"StartServers {processes}",
            f"ServerLimit {processes}",
            f"ThreadLimit {threads}",
            f"ThreadsPerChild {threads}",
            f"MaxRequestWorkers {threads * processes}",
            # with several children: one child's worth of spare threads
            # at least (the MPM raises MaxSpareThreads above the threads of
            # all children, so none is stopped); fewer concurrent requests
            # than threads never ask for a child beyond ServerLimit
            f"MinSpareThreads {1 if processes == 1 else threads}",
            f"MaxSpareThreads {threads * processes}",
            "KeepAliveTimeout 5",
            "Timeout 20",
        ]
        if os.geteuid() == 0:
            lines += ["User nobody", "Group nogroup"]
        if "ssl_module" in wanted and "socache_shmcb_module" in wanted:
            lines += [f'SSLSessionCache "shmcb:{r}/run/ssl_scache(512000)"']
        lines += ["", server, ""]
        lines += [f"<VirtualHost 127.0.0.1:{self.port}>",
                  "    ServerName localhost"]
        if frontend_tls:
            lines += [
                "    SSLEngine on",
                f'    SSLCertificateFile "{self.pki.chain("frontend")}"',
                f'    SSLCertificateKeyFile "{self.pki.key("frontend")}"',
            ]
        lines += [_indent(vhost, 4), "</VirtualHost>", ""]
        self.frontend_tls = frontend_tls
        self.conf_text = "\n".join(lines)
        with open(self.conf_file, "w") as f:
            f.write(self.conf_text)
        return self.conf_file

    def line_of(self, needle):
        """1-based line number of the only config line containing needle."""
        hits = [i + 1 for i, line in enumerate(self.conf_text.splitlines())
                if needle in line]
        assert len(hits) == 1, (
            f"{needle!r} found on lines {hits} of the rendered config")
        return hits[0]

    # ----------------------------------------------------------- control
    def _run(self, *args, timeout=30):
        return subprocess.run([APACHE2, "-f", self.conf_file, *args],
                              capture_output=True, text=True,
                              timeout=timeout, cwd=self.root,
                              env=apache_environment())

    def configtest(self):
        """Run ``apache2 -t -f conf``: return (exit code, stderr+stdout)."""
        p = self._run("-t")
        return p.returncode, p.stderr + p.stdout

    def start(self, check=True, wait_timeout=10.0):
        """Start httpd; with check=False return (exit code, output) of a
        start expected to fail (stderr plus the error log).  wait_timeout
        bounds the wait for the pid file and the listening port."""
        assert self.conf_text is not None, "write_config() first"
        assert not self.running
        p = self._run("-k", "start")
        out = p.stderr + p.stdout
        if not check:
            if p.returncode == 0:
                # it came up after all: record it so it is stopped
                self.running = True
                self.started_once = True
                try:
                    self._wait_started(timeout=wait_timeout)
                except AssertionError:
                    pass
            return p.returncode, out + self.error_log()
        if p.returncode != 0:
            raise AssertionError(
                f"apache2 -k start failed ({p.returncode}):\n{out}\n"
                f"error_log:\n{self.error_log()}")
        self.running = True
        self.started_once = True
        self._wait_started(timeout=wait_timeout)
        return p.returncode, out

    def _wait_started(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.pid_file):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"httpd wrote no pid file\n{self.error_log()}")
            time.sleep(0.02)  # polling interval, bounded by the deadline
        wait_port(self.port, timeout=max(0.5, deadline - time.monotonic()))

    def _pid(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self, timeout=10.0):
        if not self.running:
            return
        pid = self._pid()
        self._run("-k", "stop")
        deadline = time.monotonic() + timeout
        while pid is not None and _pid_alive(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.02)  # polling interval, bounded by the deadline
        self.running = False

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def children(self):
        """Process ids of the running server's child processes."""
        parent = self._pid()
        out = []
        if parent is None:
            return out
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == parent and fields[0] not in ("Z", "X"):
                out.append(int(d))
        return out

    def graceful(self, timeout=10.0):
        """``apache2 -k graceful`` with the configuration as written now;
        return once a new generation of children runs and every child of
        the old one has exited (so no request can reach an old child)."""
        assert self.running, "start() first"
        old = set(self.children())
        generations = len(self.lines_with("AH00489"))
        p = self._run("-k", "graceful")
        if p.returncode != 0:
            raise AssertionError(
                f"apache2 -k graceful failed ({p.returncode}):\n"
                f"{p.stderr}{p.stdout}\nerror_log:\n{self.error_log()}")
        deadline = time.monotonic() + timeout
        while True:
            now = set(self.children())
            if (len(self.lines_with("AH00489")) > generations
                    and now and not now & old):
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no new generation of children after {timeout}s "
                    f"(old {sorted(old)}, now {sorted(now)}):\n"
                    f"{self.error_log()}")
            time.sleep(0.02)  # polling interval, bounded by the deadline
        wait_port(self.port, timeout=max(0.5, deadline - time.monotonic()))

    # ----------------------------------------------------------- logs
    def error_log(self):
        try:
            with open(self.error_log_file, encoding="utf-8",
                      errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_lines(self):
        out = []
        for raw in self.error_log().splitlines():
            m = LOG_LINE_RE.match(raw)
            if m:
                out.append(LogLine(raw, m))
        return out

    def lines_with(self, tag):
        return [ln for ln in self.log_lines() if ln.tag == tag
                or re.search(rf"\b{re.escape(tag)}\b", ln.rest)]

    def wait_log(self, regex, timeout=5.0):
        """Poll the error log until a line matches regex; return the match."""
        rx = re.compile(regex, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.error_log())
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no error-log line matches {regex!r} within "
                    f"{timeout}s:\n{self.error_log()}")
            time.sleep(0.02)  # polling interval, bounded by the deadline

    def access_lines(self, count, path=None, timeout=5.0):
        """Poll an access log (default logs/access_log) until it holds at
        least count lines; return all its lines.  httpd writes the line
        after the response, so a client may see the response first."""
        path = path or self.access_log_file
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    lines = f.read().splitlines()
            except FileNotFoundError:
                lines = []
            if len(lines) >= count:
                return lines
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{path} has {len(lines)} lines after {timeout}s, "
                    f"expected {count}:\n" + "\n".join(lines))
            time.sleep(0.02)  # polling interval, bounded by the deadline

    def expect_log(self, *tags):
        """Declare message tags (AH01084, RE00010, ...) that may appear at
        warn level or above without failing the test."""
        for t in tags:
            assert TAG_RE.fullmatch(t), f"not a message tag: {t!r}"
            self._expected_tags.add(t)

    def expect_log_re(self, regex):
        """Declare a regex for untagged warn+ lines that are expected."""
        self._expected_res.append(re.compile(regex))

    def unexpected_log_lines(self):
        bad = [raw for raw in self.error_log().splitlines()
               if not LOG_LINE_RE.match(raw) and SANITIZER_LINE_RE.search(raw)]
        for ln in self.log_lines():
            if (ln.level not in GUARDED_LEVELS
                    and ln.tag not in GUARDED_NOTICES):
                continue
            if ln.tag and ln.tag in self._expected_tags:
                continue
            if ln.tag and ln.tag in ENVIRONMENT_WARNINGS:
                continue    # reported once at the start of the run
            if any(rx.search(ln.raw) for rx in self._expected_res):
                continue
            bad.append(ln.raw)
        return bad

    # ----------------------------------------------------------- client
    def get(self, path="/", host=None, headers=None, timeout=15.0,
            method="GET", body=None):
        """One request on a fresh frontend connection; returns Response."""
        if self.frontend_tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection("127.0.0.1", self.port,
                                               timeout=timeout, context=ctx)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                              timeout=timeout)
        try:
            conn.putrequest(method, path, skip_host=True,
                            skip_accept_encoding=True)
            conn.putheader("Host", host or f"localhost:{self.port}")
            conn.putheader("Connection", "close")
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            body = r.read()
            return Response(r.status, dict(r.getheaders()), body)
        finally:
            conn.close()


def _indent(text, n):
    pad = " " * n
    text = textwrap.dedent(text).strip("\n")
    return "\n".join(pad + line if line.strip() else line
                     for line in text.splitlines())
