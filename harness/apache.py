"""Private Apache httpd 2.4 instances (and the base of other private
servers).

Each instance owns a ServerRoot (conf/, logs/, run/, htdocs/), its own
PidFile, DefaultRuntimeDir and Mutex directory, listens on 127.0.0.1 only
and is driven with ``apache2 -f <conf> -k start|stop|graceful`` (never
apache2ctl, which would read the system's envvars, nor systemctl).
"""

import os
import re
import shutil
import signal
import ssl
import subprocess

from harness import REPO, HarnessError, logs, net, poll, procs

APACHE2 = os.environ.get("APACHE2", "/usr/sbin/apache2")
MODULES_DIR = os.environ.get("APACHE2_MODULES", "/usr/lib/apache2/modules")
DEFAULT_MODULE = os.path.join(REPO, ".libs", "mod_reencrypt.so")


def module_path():
    """The mod_reencrypt.so under test: $REENCRYPT_MODULE, or the build
    of this work tree."""
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


def load_module_line(name, path=None):
    """LoadModule of a stock module by its short name ("ssl",
    "proxy_http"), or of name_module from path."""
    return (f'LoadModule {name}_module '
            f'"{path or os.path.join(MODULES_DIR, f"mod_{name}.so")}"')


class Server:
    """A private server process with a root directory, a configuration
    file, a pid file and logs, started by a subclass.

    Layout (each file may be placed elsewhere by a keyword argument):
    conf/httpd.conf, logs/error_log, logs/access_log, run/httpd.pid;
    htdocs/ for documents (dirs: the directories made).  The children of
    a server started as root run as nobody: owned_dirs (run/) are theirs;
    open_dirs are made writable by anyone (what the integration tests'
    configurations may need).  create=False: the directories exist (or
    not: an instance only looked at, to stop it or see if it runs)."""

    def __init__(self, root, port=None, name=None, conf_file=None,
                 error_log_file=None, access_log_file=None, pid_file=None,
                 open_dirs=(), dirs=("conf", "logs", "run", "htdocs"),
                 owned_dirs=("run",), create=True):
        self.root = root
        self.name = name or os.path.basename(root)
        self.port = port if port is not None else net.free_port()
        if create:
            self._make_dirs(dirs, open_dirs, owned_dirs)
        self.conf_file = conf_file or os.path.join(root, "conf", "httpd.conf")
        self.error_log_file = error_log_file or os.path.join(
            root, "logs", "error_log")
        self.access_log_file = access_log_file or os.path.join(
            root, "logs", "access_log")
        self.pid_file = pid_file or os.path.join(root, "run", "httpd.pid")
        self.conf_text = None
        self.running = False
        self.started_once = False

    def _make_dirs(self, dirs, open_dirs, owned_dirs):
        os.makedirs(self.root, exist_ok=True)
        os.chmod(self.root, 0o755)
        for sub in dirs:
            d = os.path.join(self.root, sub)
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o777 if sub in open_dirs else 0o755)
        if procs.is_root():
            for sub in owned_dirs:
                shutil.chown(os.path.join(self.root, sub), "nobody",
                             procs.nobody_group())

    # ----------------------------------------------------------- config
    def write(self, text):
        """Write the configuration file; return its path."""
        self.conf_text = text
        with open(self.conf_file, "w") as f:
            f.write(text)
        return self.conf_file

    def line_of(self, needle):
        """1-based line number of the only config line containing needle."""
        hits = [i + 1 for i, line in enumerate(self.conf_text.splitlines())
                if needle in line]
        assert len(hits) == 1, (
            f"{needle!r} found on lines {hits} of the rendered config")
        return hits[0]

    # ----------------------------------------------------------- process
    def read_pid(self):
        """The pid in the pid file, or None."""
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip() or 0) or None
        except (OSError, ValueError):
            return None

    @property
    def pid(self):
        """The running server's pid, or None."""
        pid = self.read_pid()
        return pid if pid and procs.pid_alive(pid) and self.ours(pid) \
            else None

    def ours(self, pid):
        """pid was started with this configuration file (a stale pid file
        may name another process)."""
        cmd = procs.cmdline(pid)
        return self.conf_file in cmd or self.root in cmd

    def children(self):
        """Process ids of the running server's child processes."""
        pid = self.read_pid()
        return procs.children(pid) if pid else []

    def wait_started(self, timeout=10.0):
        """Wait for the pid file of a live process, then for the port."""
        if not poll(lambda: self.pid, timeout):
            raise HarnessError(f"{self.name}: no running pid in "
                               f"{self.pid_file} after {timeout}s\n"
                               f"{self.error_log()}")
        net.wait_port(self.port, timeout=timeout)

    def send_stop(self, pid):
        os.kill(pid, signal.SIGTERM)

    def stop(self, timeout=10.0):
        """Stop the server if it runs (SIGKILL after timeout seconds);
        return the pid it had, or None."""
        self.running = False
        pid = self.pid
        if pid is None:
            return None
        self.send_stop(pid)
        if not poll(lambda: not procs.pid_alive(pid), timeout):
            os.kill(pid, signal.SIGKILL)
            poll(lambda: not procs.pid_alive(pid), 5.0)
        return pid

    # ----------------------------------------------------------- logs
    def error_log(self):
        return logs.read(self.error_log_file)

    def log_lines(self):
        return logs.parse(self.error_log())

    def lines_with(self, tag):
        return [ln for ln in self.log_lines() if ln.tag == tag
                or re.search(rf"\b{re.escape(tag)}\b", ln.rest)]

    def wait_log(self, regex, timeout=5.0):
        """Poll the error log until a line matches regex; return the match."""
        return logs.wait_match(self.error_log_file, regex, timeout)

    def access_lines(self, count, path=None, timeout=5.0):
        """Poll an access log (default the access_log_file) until it holds
        at least count lines; return all its lines."""
        return logs.wait_lines(path or self.access_log_file, count, timeout)

    def access_fields(self, path, timeout=5.0):
        """The fields after the first of the access-log line whose first
        field is path (polls until it is there)."""
        def found():
            for line in logs.read(self.access_log_file).splitlines():
                fields = line.split(" ")
                if fields[0] == path:
                    return tuple(fields[1:])
            return None
        fields = poll(found, timeout)
        if fields is None:
            raise HarnessError(f"no access-log line for {path}:\n"
                               + logs.read(self.access_log_file))
        return fields


class Apache(Server):
    """One private Apache httpd."""

    tls = True          # get() speaks TLS to the first port

    def head(self, server_name="localhost", modules=(), loglevel="warn",
             listen=None, processes=1, threads=8, min_spare=None,
             server_limit=None, comment=None):
        """The global part of a configuration: ServerRoot, ServerName,
        runtime directory, pid file, mutexes, error log, LogLevel, User and
        Group when run as root, Listen (listen: a list of "port" or
        "port proto", default this instance's port; [] for none), the
        LoadModule lines of modules (short names, or (name, path)), and
        the event MPM's size: processes children of threads threads
        (min_spare spare threads, default 1 for one child and a child's
        worth for more; server_limit above processes leaves scoreboard
        slots for children that finish their connections after a graceful
        restart)."""
        r = self.root
        lines = [f"# {comment or 'private Apache instance ' + self.name}; "
                 f"started with",
                 f"#   {APACHE2} -f {self.conf_file} -k start",
                 f'ServerRoot "{r}"',
                 f"ServerName {server_name}",
                 f'DefaultRuntimeDir "{r}/run"',
                 f'PidFile "{self.pid_file}"',
                 f"Mutex file:{r}/run default",
                 f'ErrorLog "{self.error_log_file}"',
                 f"LogLevel {loglevel}"]
        if procs.is_root():
            lines += ["User nobody", f"Group {procs.nobody_group()}"]
        for port in ([self.port] if listen is None else listen):
            lines.append(f"Listen 127.0.0.1:{port}")
        lines.append("")
        for m in modules:
            lines.append(load_module_line(*m) if isinstance(m, tuple)
                         else load_module_line(m))
        if min_spare is None:
            min_spare = 1 if processes == 1 else threads
        lines += [
            "",
            f"StartServers {processes}",
            f"ServerLimit {server_limit or processes}",
            f"ThreadLimit {threads}",
            f"ThreadsPerChild {threads}",
            f"MaxRequestWorkers {threads * processes}",
            f"MinSpareThreads {min_spare}",
            f"MaxSpareThreads {threads * processes}",
        ]
        return "\n".join(lines) + "\n"

    def apache2(self, *args, timeout=30):
        """Run apache2 -f <conf> args (stdout, stderr captured)."""
        return subprocess.run([APACHE2, "-f", self.conf_file, *args],
                              capture_output=True, text=True,
                              timeout=timeout, cwd=self.root,
                              env=apache_environment())

    def configtest(self):
        """Run ``apache2 -t -f conf``: return (exit code, stderr+stdout)."""
        p = self.apache2("-t")
        return p.returncode, p.stderr + p.stdout

    def start(self, check=True, wait_timeout=10.0):
        """Start httpd; with check=False return (exit code, output) of a
        start expected to fail (stderr plus the error log).  wait_timeout
        bounds the wait for the pid file and the listening port."""
        assert self.conf_text is not None, "write the configuration first"
        assert not self.running
        p = self.apache2("-k", "start")
        out = p.stderr + p.stdout
        if not check:
            if p.returncode == 0:
                # it came up after all: record it so it is stopped
                self.running = self.started_once = True
                try:
                    self.wait_started(timeout=wait_timeout)
                except HarnessError:
                    pass
            return p.returncode, out + self.error_log()
        if p.returncode != 0:
            raise HarnessError(
                f"{self.name}: apache2 -k start failed ({p.returncode}):\n"
                f"{out}\nerror_log:\n{self.error_log()}")
        self.running = self.started_once = True
        self.wait_started(timeout=wait_timeout)
        return p.returncode, out

    def send_stop(self, pid):
        p = self.apache2("-k", "stop")
        if p.returncode != 0 and procs.pid_alive(pid):
            os.kill(pid, signal.SIGTERM)

    def graceful(self, timeout=10.0, wait=True):
        """``apache2 -k graceful`` with the configuration as written now;
        with wait, return once a new generation of children runs and every
        child of the old one has exited (so no request can reach an old
        child)."""
        assert self.running, "start() first"
        old = set(self.children())
        generations = len(self.lines_with("AH00489"))
        p = self.apache2("-k", "graceful")
        if p.returncode != 0:
            raise HarnessError(
                f"{self.name}: apache2 -k graceful failed ({p.returncode}):\n"
                f"{p.stderr}{p.stdout}\nerror_log:\n{self.error_log()}")
        if not wait:
            return

        def new_generation():
            now = set(self.children())
            return (len(self.lines_with("AH00489")) > generations
                    and now and not now & old)
        if not poll(new_generation, timeout):
            raise HarnessError(
                f"no new generation of children after {timeout}s "
                f"(old {sorted(old)}, now {sorted(self.children())}):\n"
                f"{self.error_log()}")
        net.wait_port(self.port, timeout=timeout)

    # ----------------------------------------------------------- client
    def get(self, path="/", host=None, headers=None, timeout=15.0,
            method="GET", body=None, sni=None):
        """One request on a fresh connection to the instance's port;
        returns a net.Response."""
        return net.request(self.port, path, host=host, tls=self.tls,
                           sni=sni, headers=headers, method=method,
                           body=body, timeout=timeout)
