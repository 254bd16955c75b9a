"""What bench/run and bench/soak share: wrk and its output, the
machine's description, the load average, CPU time of processes, and the
installation of a missing Debian package when run as root."""

import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile

from harness.apache import APACHE2
from harness.procs import is_root

NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
WRK = os.environ.get("WRK", "/usr/bin/wrk")
OPENSSL = "openssl"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def say(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, check=True, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    try:
        p = subprocess.run(cmd, **kw)
    except FileNotFoundError as e:
        if check:
            raise RuntimeError(f"{cmd[0]}: {e}") from e
        return subprocess.CompletedProcess(cmd, 127, "", str(e))
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n"
                           f"{p.stdout}{p.stderr}")
    return p


def apt_install(pkg):
    """Install one Debian package when we are root; True if it is there."""
    if not is_root():
        return False
    say(f"installing the Debian package {pkg} (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "install", "-y", "-q", "--no-install-recommends",
                 pkg],
                ["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                 pkg]):
        p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, timeout=300)
        if cmd[1] == "install" and p.returncode == 0:
            return True
    return False


def cpu_ticks(pids):
    """user + system clock ticks of these processes (all their threads)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


def machine_lines():
    lines = []
    try:
        model = ""
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            mem = f.readline().split()[1]
        lines.append(f"machine: {os.cpu_count()} CPUs ({model}), "
                     f"{int(mem) // 1024} MiB, Linux {platform.release()}")
    except OSError:
        pass
    v = run([APACHE2, "-v"], check=False).stdout.splitlines()
    lines.append("apache: " + (v[0].split(":", 1)[1].strip() if v else "?"))
    if os.access(NGINX, os.X_OK):
        v = run([NGINX, "-v"], check=False).stderr.strip()
        lines.append("nginx: " + v.split(":", 1)[-1].strip())
    lines.append("openssl: " + (run([OPENSSL, "version"], check=False)
                                .stdout.strip() or "?"))
    v = run(["dpkg-query", "-W", "-f=${Version}", "wrk"], check=False)
    lines.append("wrk: " + (v.stdout.strip() or "?"))
    return lines


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


WRK_RE = {
    "rps": re.compile(r"Requests/sec:\s+([\d.]+)"),
    "requests": re.compile(r"(\d+) requests in"),
    "non2xx": re.compile(r"Non-2xx or 3xx responses:\s+(\d+)"),
    "sockerr": re.compile(r"Socket errors: connect (\d+), read (\d+), "
                          r"write (\d+), timeout (\d+)"),
    "p50": re.compile(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", re.M),
    "p99": re.compile(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", re.M),
}


def parse_wrk(out):
    """What wrk printed: rps, requests, non2xx, the socket errors (connect,
    read, write, timeout, their sum sockerr and wrk's line
    sockerr_detail), errors (non2xx + sockerr), the p50 and p99 latencies
    in ms (--latency; None without) and the text itself (raw)."""
    res = {"rps": 0.0, "requests": 0, "non2xx": 0, "sockerr": 0,
           "sockerr_detail": "", "p50": None, "p99": None, "raw": out}
    for key, conv in (("rps", float), ("requests", int), ("non2xx", int)):
        m = WRK_RE[key].search(out)
        if m:
            res[key] = conv(m.group(1))
    m = WRK_RE["sockerr"].search(out)
    counts = [int(x) for x in m.groups()] if m else [0, 0, 0, 0]
    res.update(zip(("connect", "read", "write", "timeout"), counts))
    res["sockerr"] = sum(counts)
    res["sockerr_detail"] = m.group(0) if m else ""
    res["errors"] = res["sockerr"] + res["non2xx"]
    for q in ("p50", "p99"):
        m = WRK_RE[q].search(out)
        if m:
            v = float(m.group(1))
            res[q] = v / 1000 if m.group(2) == "us" else (
                v * 1000 if m.group(2) == "s" else v)
    return res


# the modules every Apache of the benchmarks loads first
BASE_MODULES = ("mpm_event", "authz_core", "socache_shmcb", "ssl")


def apache_head(inst, server_name, modules=(), processes=2, threads=25,
                min_spare=5, server_limit=None, listen=(),
                origin="bench/run"):
    """The global part of a benchmark Apache's configuration: LogLevel
    warn, BASE_MODULES and modules, processes children of threads threads,
    connections kept alive without limit (30 s), Listen lines only for
    listen (a list of "port" or "port proto")."""
    return inst.head(server_name, modules=BASE_MODULES + tuple(modules),
                     listen=list(listen), processes=processes,
                     threads=threads, min_spare=min_spare,
                     server_limit=server_limit,
                     comment=f'private Apache instance "{inst.name}" of '
                             f'{origin}') + """MaxConnectionsPerChild 0

KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 30
Timeout 30
"""


def run_main(prog, prefix, args, body, fail_rc=1, children=None):
    """Run body(work, instances, children, stop_all) in a fresh work
    directory (prefix, under args.workdir; kept if args.keep) and return
    its exit code: fail_rc after a RuntimeError, HarnessError or
    subprocess error.  On the way out, and on SIGINT, SIGTERM or SIGHUP,
    the child processes still running (children, a list body fills) are
    killed and the instances it started (.stop()) stopped, the last
    first."""
    from harness import HarnessError
    work = tempfile.mkdtemp(prefix=prefix, dir=args.workdir)
    os.chmod(work, 0o755)
    instances = []
    children = [] if children is None else children
    stopped = []

    def stop_all():
        """Stop every instance this run started (only those)."""
        if stopped:
            return
        stopped.append(True)
        for p in list(children):
            if p.poll() is None:
                p.kill()
        for inst in reversed(instances):
            try:
                inst.stop()
            except Exception as e:      # keep stopping the others
                say(f"{inst.name}: stop failed: {e}")

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        return body(work, instances, children, stop_all)
    except (RuntimeError, HarnessError, subprocess.SubprocessError) as e:
        say(f"{prog}: {e}")
        return fail_rc
    finally:
        stop_all()
        if args.keep:
            say(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
