"""One apache2 -X under valgrind's memcheck, driven through the module's
paths against real TLS backends (docs/building.md, "Valgrind").

Run by tests/valgrind/run; reuses the integration harness (pki.py,
backend.py, httpd.py) for the test PKI, the backends, the configuration
and the client.  Exit status 0 when memcheck found no error, every request
was answered as expected and the error log holds only the lines the
refusals cause; 1 otherwise.
"""

import argparse
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.dont_write_bytecode = True

from backend import TLSBackend  # noqa: E402
from httpd import (APACHE2, MODULES_DIR, HttpdEnv,  # noqa: E402
                   module_path, wait_port)
from pki import TestPKI  # noqa: E402

SUPPRESSIONS = os.path.join(HERE, "memcheck.supp")
# what mod_proxy logs for a handshake the module refused, and what Report
# mode logs
EXPECTED_TAGS = ("RE00010", "AH01084", "AH00898", "AH01097", "RE00018")
SUMMARY_RE = re.compile(r"ERROR SUMMARY: (\d+) errors from (\d+) contexts")
LEAK_RE = re.compile(r"definitely lost: ([\d,]+) bytes in ([\d,]+) blocks")


def server_lines():
    mods = [("slotmem_shm_module", "mod_slotmem_shm.so"),
            ("proxy_balancer_module", "mod_proxy_balancer.so"),
            ("lbmethod_byrequests_module", "mod_lbmethod_byrequests.so"),
            ("authz_host_module", "mod_authz_host.so"),
            ("status_module", "mod_status.so")]
    lines = [f'LoadModule {m} "{MODULES_DIR}/{so}"' for m, so in mods]
    lines.append("ReencryptStatusBackends 16")
    # httpd 2.4.71 in one-process mode (-X) reads freed memory at exit
    # when its event MPM holds transaction pools for reuse: at exit it
    # destroys pconf, whose newer subpools (the transaction pools) go
    # before the older one that holds the MPM's queue, and that queue's
    # cleanup then walks its list of pools kept for reuse
    # (server/mpm_fdqueue.c, queue_info_cleanup). valgrind reports it,
    # often as a crash, the pools' memory being unmapped by then. With
    # MaxMemFree set the MPM keeps pools for 3/4 of its worker threads:
    # with one thread (see main), for none.
    lines.append("MaxMemFree 2048")
    return "\n".join(lines)


def vhost_lines(pki, bes):
    return f"""
SSLProxyEngine On
# the policy checks validity; lets Report mode report it (RE00035)
SSLProxyCheckPeerExpire Off
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ReencryptSNI good.test
# success, on pooled connections
ProxyPass /ok/ {bes["good"].url_ip}ok/
# refusal: a chain to another root
ProxyPass /refused/ {bes["other"].url_ip}refused/
# Report mode: a name mismatch, logged (RE00018) and served
ProxyPass /report/ {bes["report"].url_ip}report/
<Location /report/>
    ReencryptMode Report
</Location>
# session resumption, TLS 1.3 (tickets) and TLS 1.2: a new connection, so
# a handshake, per request
ProxyPass /resume/ {bes["resume"].url_ip}resume/ disablereuse=On
ProxyPass /resume12/ {bes["resume12"].url_ip}resume12/ disablereuse=On
<Proxy balancer://app>
    BalancerMember https://127.0.0.1:{bes["lb_a"].port} retry=60
    BalancerMember https://127.0.0.1:{bes["lb_b"].port} retry=60
    ProxySet lbmethod=byrequests
</Proxy>
ProxyPass /lb/ balancer://app/lb/
<Location /reencrypt-status>
    SetHandler reencrypt-status
    Require ip 127.0.0.1
</Location>
<Location /server-status>
    SetHandler server-status
    Require ip 127.0.0.1
</Location>
"""


class Driver:
    def __init__(self, env):
        self.env = env
        self.requests = 0
        self.failures = []

    def get(self, path, status, check=None):
        self.requests += 1
        try:
            r = self.env.get(path, timeout=120)
        except OSError as e:
            self.failures.append(f"GET {path}: {e!r}")
            return None
        if r.status != status:
            self.failures.append(f"GET {path}: {r.status}, expected "
                                 f"{status}: {r.text[:200]!r}")
        elif check is not None and not check(r):
            self.failures.append(f"GET {path}: unexpected body "
                                 f"{r.text[:200]!r}")
        return r

    def expect(self, cond, what):
        if not cond:
            self.failures.append(what)


def drive(d, bes, rounds):
    def body(path):
        return lambda r: r.text == f"backend-ok {path}\n"

    for i in range(rounds):
        p = f"/ok/{i}"
        d.get(p, 200, body(p))
    for i in range(rounds):
        d.get(f"/refused/{i}", 502)
    d.expect(bes["other"].app_bytes == 0,
             f"the refused backend received {bes['other'].app_bytes} bytes")
    for i in range(rounds):
        p = f"/report/{i}"
        d.get(p, 200, body(p))
    for name in ("resume", "resume12"):
        be = bes[name]
        for i in range(rounds):
            p = f"/{name}/{i}"
            d.get(p, 200, body(p))
        be.wait_settled(timeout=60)
        d.expect(be.resumed >= 1,
                 f"no resumed handshake at /{name}/:\n{be.describe()}")
    for i in range(2 * rounds):
        p = f"/lb/{i}"
        d.get(p, 200, body(p))
    d.expect(bes["lb_a"].requests and bes["lb_b"].requests,
             f"the balancer used one member only: "
             f"{len(bes['lb_a'].requests)} / {len(bes['lb_b'].requests)} "
             f"requests")
    d.get("/reencrypt-status", 200, lambda r: "<html" in r.text.lower())
    r = d.get("/reencrypt-status?json", 200)
    if r is not None and r.status == 200:
        try:
            json.loads(r.text)
        except ValueError as e:
            d.failures.append(f"?json is not JSON: {e}")
    d.get("/reencrypt-status?prometheus", 200,
          lambda r: "reencrypt_" in r.text)
    d.get("/server-status", 200, lambda r: "reencrypt" in r.text.lower())
    d.get("/server-status?auto", 200)


def valgrind_cmd(env, log_pattern, track_origins):
    cmd = ["valgrind", "--tool=memcheck", "--error-exitcode=99", "--vgdb=no",
           "--leak-check=full", "--show-leak-kinds=definite",
           "--errors-for-leak-kinds=definite", "--num-callers=40",
           f"--suppressions={SUPPRESSIONS}", f"--log-file={log_pattern}"]
    if track_origins:
        cmd.append("--track-origins=yes")
    return cmd + [APACHE2, "-X", "-f", env.conf_file]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10,
                    help="requests per path (balancer: twice as many); "
                         "default 10")
    ap.add_argument("--no-track-origins", action="store_true",
                    help="faster, but uninitialised values are reported "
                         "without where they came from")
    ap.add_argument("--keep", action="store_true",
                    help="keep the work directory (configuration, error "
                         "log, valgrind log) also when all went well")
    args = ap.parse_args()

    mod = module_path()
    if not os.path.exists(mod):
        print(f"valgrind: {mod} is missing: build it first (make)",
              file=sys.stderr)
        return 1
    start = time.monotonic()
    work = tempfile.mkdtemp(prefix="reencrypt-valgrind-")
    os.chmod(work, 0o755)
    pki = TestPKI(os.path.join(work, "pki"))
    tls12 = {"max_version": ssl.TLSVersion.TLSv1_2}
    bes = {name: TLSBackend(pki.chain(leaf), pki.key(leaf), **kw).start()
           for name, leaf, kw in (("good", "good", {}),
                                  ("other", "other-ca", {}),
                                  ("report", "wrong-name", {}),
                                  ("resume", "good", {}),
                                  ("resume12", "good", tls12),
                                  ("lb_a", "good", {}),
                                  ("lb_b", "good-ec", {}))}
    env = HttpdEnv(pki, base_dir=work, name="httpd")
    env.write_config(server=server_lines(), vhost=vhost_lines(pki, bes),
                     threads=1)     # MaxMemFree in server_lines() says why
    log_pattern = os.path.join(work, "memcheck.%p.log")
    cmd = valgrind_cmd(env, log_pattern, not args.no_track_origins)
    print("valgrind: " + " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, cwd=env.root, stdin=subprocess.DEVNULL)
    d = Driver(env)
    try:
        wait_port(env.port, timeout=300)
        started = time.monotonic()
        print(f"valgrind: apache2 -X up after {started - start:.0f} s",
              flush=True)
        drive(d, bes, args.rounds)
    except AssertionError as e:
        d.failures.append(str(e))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
            d.failures.append("apache2 -X did not stop within 300 s of "
                              "SIGTERM")
        for be in bes.values():
            be.stop()

    errors, leaked = 0, 0
    logs = sorted(f for f in os.listdir(work) if f.startswith("memcheck."))
    for name in logs:
        with open(os.path.join(work, name)) as f:
            text = f.read()
        m = SUMMARY_RE.findall(text)
        if not m:
            d.failures.append(f"{name}: no ERROR SUMMARY line")
        # the last summary counts (a process whose threads race to exit
        # may print it twice)
        if m:
            errors += int(m[-1][0])
        leaks = LEAK_RE.findall(text)
        if leaks:
            leaked += int(leaks[-1][0].replace(",", ""))
    if not logs:
        d.failures.append("valgrind wrote no log")
    if rc not in (0, 99):
        d.failures.append(f"valgrind exited with status {rc}")
    if rc == 99 and not errors:
        d.failures.append("valgrind exited with its error status")
    env.expect_log(*EXPECTED_TAGS)
    bad = env.unexpected_log_lines()
    if bad:
        d.failures.append("undeclared warn/error lines in the error log:\n  "
                          + "\n  ".join(bad))

    elapsed = time.monotonic() - start
    for f in d.failures:
        print(f"valgrind: FAILED: {f}")
    if errors or d.failures:
        for name in logs:
            print(f"==== {os.path.join(work, name)}")
            with open(os.path.join(work, name)) as f:
                sys.stdout.write(f.read())
    print(f"valgrind: memcheck errors: {errors} (definitely lost: {leaked} "
          f"bytes); requests: {d.requests}; {elapsed:.0f} s; "
          f"valgrind log: {', '.join(logs)}")
    ok = errors == 0 and not d.failures
    if ok and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"valgrind: work directory kept: {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
