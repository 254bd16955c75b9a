"""Backend statistics and the status views.

With `ReencryptEngine On` somewhere and mod_slotmem_shm loaded,
mod_reencrypt keeps, per backend and SNI, the certificate last presented
and handshake counters in shared memory (ReencryptStatusBackends slots),
so that every child process adds to the same numbers.  Every passed
handshake counts once as full or resumed, a request sent over an already
verified pooled connection as a reuse, a refused handshake as a refusal by
reason and a ReencryptMode Report violation as a report violation by
reason.  They are shown by `SetHandler reencrypt-status` (HTML, `?json`,
`?prometheus`) and, with mod_status, in server-status and its `?auto`
lines.

The standard scene: one frontend with two child processes and backends
that are good (SNI backend.test), refused (a certificate of another CA:
502), expiring (20 days left, ReencryptWarnExpiringWithin 30d) and, where
asked for, report-only (a name mismatch let through by ReencryptMode
Report).  The numbers shown are compared with what the backends themselves
saw: TLS connections accepted, sessions resumed, requests received.
Each backend also shows what the revocation check (CRLs) and the OCSP
staple of its last full handshake said, and the views list the CRL files
of the configuration with their issuers, entries and nextUpdate.

Prerequisites beyond the suite's (Debian 12 packages): python3-jsonschema
(the ?json document is validated against docs/status-schema.json),
prometheus (/usr/bin/promtool checks the ?prometheus text), chromium (the
HTML page is rendered headless).  Set REENCRYPT_STATUS_SCREENSHOT=<file>
to keep the screenshot of the rendered page (docs/status-page.png is one).
"""

import base64
import calendar
import collections
import concurrent.futures
import datetime
import html.parser
import http.client
import json
import os
import random
import re
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import zlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from checks import (PROXY_HANDSHAKE_FAILURE_TAGS, asn1_time,
                    assert_startup_error, re18_lines)
from httpd import MODULES_DIR, REPO

SCHEMA_FILE = os.path.join(REPO, "docs", "status-schema.json")
PROMTOOL = os.environ.get("PROMTOOL", "/usr/bin/promtool")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

STATUS = "/reencrypt-status"
STATUS_DENIED = "/reencrypt-status-denied"
SERVER_STATUS = "/server-status"

REASONS = ("no-certificate", "untrusted-chain", "not-yet-valid", "expired",
           "depth-exceeded", "pin-mismatch", "expiring-within",
           "name-mismatch", "revoked", "crl-expired", "crl-missing",
           "crl-invalid", "staple-revoked", "staple-unknown",
           "staple-missing", "staple-expired", "staple-invalid")
WARN_WITHIN = 30 * 86400
AUTO_KEYS = ("ReencryptBackends", "ReencryptHandshakesFull",
             "ReencryptHandshakesResumed", "ReencryptReuses",
             "ReencryptRefusals", "ReencryptReportViolations",
             "ReencryptExpiringBackends")
# backends by what the revocation check and the staple of their last full
# handshake said
AUTO_REVOCATION_KEYS = tuple(
    [f"ReencryptRevocation{k}" for k in (
        "Good", "NoCRL", "Revoked", "CRLExpired", "CRLMissing",
        "CRLInvalid")]
    + [f"ReencryptStaple{k}" for k in (
        "Good", "Revoked", "Unknown", "Absent", "Expired", "Invalid")])

# access log of the scene: pid of the child, status, path
PID_LOG_FORMAT = 'LogFormat "%P %>s %U" status15'


# ------------------------------------------------------------------ config

def _server(slots=None, slotmem=True, status=True):
    """Server-level lines: the modules the views need (mod_authz_host for
    `Require ip`) and ReencryptStatusBackends if slots is given."""
    lines = [f'LoadModule authz_host_module "{MODULES_DIR}/mod_authz_host.so"']
    if slotmem:
        lines.append(f'LoadModule slotmem_shm_module '
                     f'"{MODULES_DIR}/mod_slotmem_shm.so"')
    if status:
        lines.append(f'LoadModule status_module "{MODULES_DIR}/mod_status.so"')
    if slots is not None:
        lines.append(f"ReencryptStatusBackends {slots}")
    return "\n".join(lines)


def _status_locations(status=True):
    """The statistics for 127.0.0.1 only, the same handler for a client
    that is not us, and server-status."""
    out = f"""
<Location {STATUS}>
    SetHandler reencrypt-status
    Require ip 127.0.0.1
</Location>
<Location {STATUS_DENIED}>
    SetHandler reencrypt-status
    Require ip 192.0.2.1
</Location>
"""
    if status:
        out += f"""
<Location {SERVER_STATUS}>
    SetHandler server-status
    Require ip 127.0.0.1
</Location>
"""
    return out


def _access_log(env):
    return f'{PID_LOG_FORMAT}\nCustomLog "{env.access_log_file}" status15'


def _fetch(env, path, keylog=None, timeout=15.0):
    """GET path on a new frontend connection (TLS secrets of the
    connection appended to keylog if given); returns (status, headers,
    body text)."""
    if env.frontend_tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if keylog:
            ctx.keylog_filename = keylog
        conn = http.client.HTTPSConnection("127.0.0.1", env.port,
                                           timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", env.port,
                                          timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode("utf-8")
    finally:
        conn.close()


def _view(env, query="", path=STATUS, keylog=None):
    status, headers, text = _fetch(env, path + query, keylog=keylog)
    assert status == 200, (path + query, status, text[:500])
    return headers, text


def _json(env, keylog=None):
    headers, text = _view(env, "?json", keylog=keylog)
    assert headers.get("Content-Type") == "application/json", headers
    assert headers.get("Cache-Control") == "no-store", headers
    return json.loads(text)


def _auto(env, keylog=None):
    """server-status?auto as {key: value} (the Reencrypt* lines)."""
    _, text = _view(env, "?auto", path=SERVER_STATUS, keylog=keylog)
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition(": ")
        if sep and k.startswith("Reencrypt"):
            assert k not in out, f"{k} twice in server-status?auto:\n{text}"
            out[k] = v
    return out, text


# ------------------------------------------------------------------ schema

def _validator():
    try:
        import jsonschema
    except ImportError:
        raise AssertionError(
            "python3-jsonschema is needed to validate the ?json document "
            "(apt-get install python3-jsonschema)") from None
    with open(SCHEMA_FILE) as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _assert_valid(validator, doc):
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, (
        f"the ?json document does not match {SCHEMA_FILE}:\n"
        + "\n".join(f"  at {'/'.join(map(str, e.path)) or '(root)'}: "
                    f"{e.message}" for e in errors)
        + "\n" + json.dumps(doc, indent=1)[:3000])


# ------------------------------------------------------------------ scene

def _unix(dt):
    """A naive UTC datetime (as pki gives them) in seconds since 1970."""
    return calendar.timegm(dt.timetuple())


class Role:
    """One backend of the scene and what the frontend should show of it."""

    def __init__(self, name, leaf, sni, requests, status, result,
                 chain_length, location=""):
        self.name = name
        self.leaf = leaf
        self.sni = sni
        self.requests = requests
        self.status = status
        self.result = result
        self.chain_length = chain_length
        self.location = location
        self.be = None

    @property
    def prefix(self):
        return f"/{self.name}/"

    @property
    def backend(self):
        return f"127.0.0.1:{self.be.port}"

    @property
    def slotted(self):
        """A handshake that passes takes a slot; a refused one does not,
        so a backend refused from its first handshake has none."""
        return self.status != 502

    def paths(self):
        return [f"{self.prefix}{i}" for i in range(self.requests)]


class Scene:
    def __init__(self, env, pki, roles):
        self.env = env
        self.pki = pki
        self.roles = roles
        self.by_name = {r.name: r for r in roles}
        self.started = None
        self.finished = None

    def __getitem__(self, name):
        return self.by_name[name]

    @property
    def slotted(self):
        """The roles that have a slot (an entry in the views)."""
        return [r for r in self.roles if r.slotted]

    def entry(self, doc, name):
        """The ?json backends entry of a role."""
        role = self[name]
        found = [b for b in doc["backends"] if b["backend"] == role.backend]
        assert len(found) == 1, (role.backend, doc)
        return found[0]

    def expected_order(self):
        """The roles with a slot, soonest notAfter first, ties by backend
        name."""
        return [r.name for r in sorted(
            self.slotted, key=lambda r: (_unix(self.pki[r.leaf].not_after),
                                         r.backend))]


def _other_ca_leaf(pki):
    """A leaf of the Other Root CA ending in 90 days (between the
    expiring one and the good one)."""
    name = "status-other-ca"
    if name not in pki.certs:
        pki.fresh_leaf(name, "other-ca.status.test", dns=("good.test",),
                       issuer="other-root",
                       not_after=datetime.timedelta(days=90))
    return name


def _scene(env, backend, pki, report=False, frontend_tls=True, slots=8,
           keylog=None):
    """Start the backends and a two-process frontend proxying to them,
    send every role's requests (one new client connection each, the roles
    interleaved) and check what the client got.  Returns the Scene."""
    roles = [
        Role("good", "good", "backend.test", 6, 200, "ok", 3,
             location="ReencryptSNI backend.test"),
        Role("refused", _other_ca_leaf(pki), "good.test", 2, 502,
             "refused:untrusted-chain", 1),
        Role("expiring", "expiring-20d", "good.test", 3, 200, "ok", 3),
    ]
    if report:
        roles.append(Role("report", "wrong-name", "good.test", 2, 200,
                          "report:name-mismatch", 3,
                          location="ReencryptMode Report"))
    vhost = ["SSLProxyEngine On",
             "SSLProxyCheckPeerExpire Off",
             "ReencryptEngine On",
             f'ReencryptCACertificateFile "{pki.ca_file}"',
             "ReencryptSNI good.test",
             "ReencryptWarnExpiringWithin 30d"]
    for role in roles:
        role.be = backend(role.leaf)
        if keylog:
            role.be.ctx.keylog_filename = keylog
        vhost.append(f"ProxyPass {role.prefix} "
                     f"{role.be.url_ip}{role.name}/")
        if role.location:
            vhost += [f"<Location {role.prefix}>",
                      f"    {role.location}", "</Location>"]
    env.write_config(processes=2, threads=16, frontend_tls=frontend_tls,
                     server=_server(slots=slots),
                     vhost="\n".join(vhost) + _status_locations()
                     + _access_log(env))
    env.expect_log("RE00010", *PROXY_HANDSHAKE_FAILURE_TAGS)  # refused
    env.expect_log("RE00019")                                 # expiring
    if report:
        env.expect_log("RE00018")
    env.start()
    scene = Scene(env, pki, roles)

    scene.started = int(time.time())
    queues = [collections.deque(r.paths()) for r in roles]
    while any(queues):
        for role, q in zip(roles, queues):
            if not q:
                continue
            path = q.popleft()
            status, _, text = _fetch(env, path)
            assert status == role.status, (path, status, text[:300],
                                           env.error_log())
            if status == 200:
                assert text == f"backend-ok {path}\n", (path, text[:300])
    for role in roles:
        role.be.wait_settled()
    scene.finished = int(time.time()) + 1
    return scene


# -------------------------------------------------------- load, children

def _load(env, paths, connections, timeout=60.0):
    """GET every path once through the frontend from `connections` client
    threads, each over keep-alive connections of its own.  Returns
    ({path: (status, body)}, reconnects after a kept-alive connection was
    closed by the server before it answered)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout

    def connect():
        return http.client.HTTPSConnection("127.0.0.1", env.port,
                                           timeout=20, context=ctx)

    def worker(k):
        out, reconnects = {}, 0
        conn = connect()
        try:
            for path in paths[k::connections]:
                assert time.monotonic() < deadline, "load took too long"
                for attempt in range(3):
                    try:
                        conn.request("GET", path)
                        r = conn.getresponse()
                        out[path] = (r.status, r.read())
                        break
                    except (http.client.RemoteDisconnected,
                            ConnectionResetError, BrokenPipeError):
                        # the server closed an idle kept-alive connection:
                        # nothing was answered on it; retry on a new one
                        # (a request served twice shows at the backend)
                        conn.close()
                        conn = connect()
                        reconnects += 1
                        if attempt == 2:
                            raise
        finally:
            conn.close()
        return out, reconnects

    results, reconnects = {}, 0
    with concurrent.futures.ThreadPoolExecutor(connections) as pool:
        for out, n in pool.map(worker, range(connections)):
            results.update(out)
            reconnects += n
    return results, reconnects


def _load_pids(env, count, timeout=10.0):
    """{child pid: requests} of the access log's 200 lines for /pooled/ and
    /fresh/, once it holds count of them (httpd writes a line after its
    response, and the log holds the status reads too)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = collections.Counter(
            int(pid) for pid, status, path in (
                ln.split(" ") for ln in env.access_lines(0))
            if path.startswith(("/pooled/", "/fresh/")) and status == "200")
        if sum(pids.values()) >= count:
            assert sum(pids.values()) == count, pids
            return pids
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{sum(pids.values())} load lines of {count} in "
                f"{env.access_log_file} after {timeout}s")
        time.sleep(0.02)  # polling interval, bounded by the deadline


def test_reencrypt_15_001_counters_add_up_across_children(
        env, backend, module_so, pki):
    """2,400 requests from 16 client threads (keep-alive) to one backend,
    through a frontend of two child processes: 2,000 over pooled backend
    connections, 400 over a new backend connection each
    (disablereuse=On), interleaved.  Every request counts exactly once, as
    a full or a resumed handshake or as a reuse, whichever child sent it:
    the sum equals the requests sent, the 200s and the requests the
    backend received; the handshakes equal the TLS connections the backend
    accepted, the resumed ones those it resumed.  ?json read while the
    load runs only ever grows and always matches the schema."""
    validator = _validator()
    be = backend("good")
    pooled, fresh, connections = 2000, 400, 16
    env.write_config(processes=2, threads=24, server=_server(), vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ReencryptSNI good.test
ProxyPass /fresh/ {be.url_ip}fresh/ disablereuse=On
ProxyPass /pooled/ {be.url_ip}pooled/
""" + _status_locations() + _access_log(env))
    env.start()
    paths = ([f"/pooled/{i}" for i in range(pooled)]
             + [f"/fresh/{i}" for i in range(fresh)])
    random.Random(15).shuffle(paths)

    # a reader of the statistics while the load runs
    snapshots, failures, stop = [], [], threading.Event()

    def read_status():
        while not stop.is_set():
            try:
                snapshots.append(_json(env))
            except Exception as e:  # reported by the test, not the thread
                failures.append(repr(e))
                return
            stop.wait(0.05)  # pacing of the reader, not a synchronisation

    reader = threading.Thread(target=read_status, daemon=True)
    reader.start()
    try:
        results, reconnects = _load(env, paths, connections)
    finally:
        stop.set()
        reader.join(timeout=20)
    be.wait_settled()

    statuses = collections.Counter(s for s, _ in results.values())
    assert len(results) == len(paths) and statuses == {200: len(paths)}, (
        statuses, env.error_log()[-3000:])
    wrong = [p for p, (_, body) in results.items()
             if body != f"backend-ok {p}\n".encode()]
    assert not wrong, wrong[:10]
    received = collections.Counter(target for _, target in be.requests)
    assert sorted(received) == sorted(paths), "backend requests differ"
    assert set(received.values()) == {1}, (
        f"served twice ({reconnects} client reconnects): "
        f"{[p for p, n in received.items() if n > 1][:10]}")

    doc = _json(env)
    _assert_valid(validator, doc)
    assert doc["slots"] == 64 and doc["slots_used"] == 1, doc
    entry = doc["backends"][0]
    assert entry["backend"] == f"127.0.0.1:{be.port}"
    assert entry["sni"] == "good.test"
    c = entry["counters"]
    counted = c["handshakes_full"] + c["handshakes_resumed"] + c["reuses"]
    assert counted == len(paths), (
        f"{len(paths)} requests sent and answered 200, counted {counted}: "
        f"{c}")
    assert c["handshakes_full"] + c["handshakes_resumed"] == be.accepted, (
        c, be.accepted)
    assert be.handshakes_ok == be.accepted
    assert c["handshakes_resumed"] == be.resumed, (c, be.resumed)
    assert c["handshakes_full"] == be.full, (c, be.full)
    assert be.accepted >= fresh, be.accepted
    assert c["reuses"] == len(paths) - be.accepted
    assert c["refusals"] == dict.fromkeys(REASONS, 0)
    assert c["report_violations"] == dict.fromkeys(REASONS, 0)

    # what was read during the load
    assert not failures, failures
    assert len(snapshots) >= 2, len(snapshots)
    totals = []
    for snap in snapshots:
        _assert_valid(validator, snap)
        cs = [b["counters"] for b in snap["backends"]]
        totals.append(sum(x["handshakes_full"] + x["handshakes_resumed"]
                          + x["reuses"] for x in cs))
    assert totals == sorted(totals), totals
    assert totals[-1] <= len(paths), totals

    # server-status?auto says the same
    auto, _ = _auto(env)
    assert {k: auto[k] for k in AUTO_KEYS} == {
        "ReencryptBackends": "1",
        "ReencryptHandshakesFull": str(c["handshakes_full"]),
        "ReencryptHandshakesResumed": str(c["handshakes_resumed"]),
        "ReencryptReuses": str(c["reuses"]),
        "ReencryptRefusals": "0",
        "ReencryptReportViolations": "0",
        "ReencryptExpiringBackends": "0"}, auto

    # both children served the load (the access log's %P)
    children = set(env.children())
    pids = _load_pids(env, len(paths))
    assert len(pids) == 2 and set(pids) <= children, (
        f"requests by child pid: {dict(pids)}, children: {children}")


# ------------------------------------------------------------------ JSON

def test_reencrypt_15_010_json_matches_schema_and_facts(
        env, backend, module_so, pki):
    """?json validates against docs/status-schema.json and says, for each
    backend and SNI, the certificate it presented (subject, issuer, SANs,
    serial, the pin of its key, validity, chain length), the last
    handshake and counters that agree with what the backends saw; the
    soonest expiry comes first.  The backend refused from its first
    handshake has no entry: its refusals are counted under "other"."""
    validator = _validator()
    scene = _scene(env, backend, pki, report=True)
    before = int(time.time())
    doc = _json(env)
    after = time.time()
    _assert_valid(validator, doc)

    assert doc["schema"] == 1
    assert re.fullmatch(r"mod_reencrypt/\d+\.\d+\.\d+", doc["module"]), doc
    assert before <= doc["generated_unix"] <= after, (before, doc, after)
    assert doc["generated"] == asn1_time(
        datetime.datetime.utcfromtimestamp(doc["generated_unix"]))
    assert doc["slots"] == 8
    assert doc["slots_used"] == len(scene.slotted) == len(doc["backends"])
    assert len(scene.slotted) == len(scene.roles) - 1
    assert [b["backend"] for b in doc["backends"]] == [
        scene[n].backend for n in scene.expected_order()], (
        "not sorted soonest expiry first: "
        + ", ".join(f"{b['backend']} {b['certificate']['not_after']}"
                    for b in doc["backends"]))
    assert scene.expected_order()[0] == "expiring"
    lefts = [b["certificate"]["seconds_left"] for b in doc["backends"]]
    assert lefts == sorted(lefts), lefts

    # refused from the start: no slot, its refusals under "other"
    refused = scene["refused"]
    assert refused.backend not in [b["backend"] for b in doc["backends"]]
    assert refused.be.accepted == refused.requests
    assert refused.be.handshakes_ok == 0
    assert doc["other"] == {
        "handshakes_full": 0, "handshakes_resumed": 0, "reuses": 0,
        "refusals": dict(dict.fromkeys(REASONS, 0),
                         **{"untrusted-chain": refused.requests}),
        "report_violations": dict.fromkeys(REASONS, 0)}, doc["other"]
    assert (doc["slot_reclaims"], doc["slot_overflows"]) == (0, 0), doc
    assert doc["crl_files"] == [], doc["crl_files"]

    for role in scene.slotted:
        e = scene.entry(doc, role.name)
        assert e["sni_from_client"] is False, e
        issued = pki[role.leaf]
        cert = issued.cert
        assert e["sni"] == role.sni, (role.name, e)
        assert e["expiring"] is (role.name == "expiring"), (role.name, e)
        assert e["warn_within_seconds"] == WARN_WITHIN, e

        ce = e["certificate"]
        issuer_cn = issued.issuer.cert.subject.rfc4514_string()
        assert ce["subject"] == f"CN={issued.cn}", ce
        assert ce["issuer"] == issuer_cn, ce
        san = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value
        sans = ", ".join(f"DNS:{d}"
                         for d in san.get_values_for_type(x509.DNSName))
        assert ce["sans"] == sans, ce
        assert int(ce["serial"], 16) == cert.serial_number, ce
        assert ce["pin"] == pki.pin(role.leaf), (role.name, ce["pin"])
        assert ce["not_before"] == asn1_time(issued.cert.not_valid_before)
        assert ce["not_after"] == asn1_time(issued.not_after), ce
        assert ce["not_after_unix"] == _unix(issued.not_after), ce
        # the time left when the document was made
        assert ce["seconds_left"] == (_unix(issued.not_after)
                                      - doc["generated_unix"]), ce
        assert ce["chain_length"] == role.chain_length, (role.name, ce)

        lh = e["last_handshake"]
        assert lh["result"] == role.result, (role.name, lh)
        assert scene.started <= lh["time_unix"] <= scene.finished, (
            scene.started, lh, scene.finished)
        assert lh["time"] == asn1_time(
            datetime.datetime.utcfromtimestamp(lh["time_unix"]))
        assert lh["protocol"] == "TLSv1.3", lh
        assert re.fullmatch(r"TLS_[A-Z0-9_]+", lh["cipher"]), lh

        # no CRL, no stapling: what the last full handshake checked
        full = e["last_full_handshake"]
        assert scene.started <= full["time_unix"] <= lh["time_unix"], (
            scene.started, full, lh)
        assert full == {"time": asn1_time(datetime.datetime.utcfromtimestamp(
                                  full["time_unix"])),
                        "time_unix": full["time_unix"],
                        "revocation": "not-checked", "staple": "not-checked",
                        "staple_next_update": None,
                        "staple_next_update_unix": None}, (role.name, full)

        c = e["counters"]
        be = role.be
        refusals = dict.fromkeys(REASONS, 0)
        reported = dict.fromkeys(REASONS, 0)
        assert (c["handshakes_full"] + c["handshakes_resumed"]
                + c["reuses"]) == role.requests, (role.name, c)
        assert (c["handshakes_full"] + c["handshakes_resumed"]
                == be.handshakes_ok == be.accepted), (role.name, c,
                                                     be.describe())
        assert c["handshakes_resumed"] == be.resumed, (role.name, c)
        if role.name == "report":
            # each handshake is a violation (and never resumed: Report
            # mode keeps no session)
            reported["name-mismatch"] = be.accepted
            assert c["handshakes_resumed"] == 0, c
            assert len(re18_lines(env)) == be.accepted, env.error_log()
        assert c["refusals"] == refusals, (role.name, c)
        assert c["report_violations"] == reported, (role.name, c)


def test_reencrypt_15_011_schema_is_strict(env, backend, module_so, pki):
    """The schema rejects what the module never writes: an unknown or
    missing reason, an unknown field, a counter of the wrong type, a
    pin that is no pin."""
    validator = _validator()
    _scene(env, backend, pki)
    doc = _json(env)
    _assert_valid(validator, doc)

    def broken(change):
        d = json.loads(json.dumps(doc))
        change(d)
        return list(validator.iter_errors(d))

    b0 = ("backends", 0)

    def at(d, *path):
        for k in b0 + path:
            d = d[k]
        return d

    cases = {
        "unknown reason": lambda d: at(d, "counters", "refusals").update(
            {"ok": 0}),
        "missing reason": lambda d: at(d, "counters",
                                       "report_violations").pop("expired"),
        "unknown field": lambda d: at(d).update({"secret": "x"}),
        "unknown top-level field": lambda d: d.update({"extra": 1}),
        "counter as string": lambda d: at(d, "counters").update(
            {"reuses": "1"}),
        "negative counter": lambda d: at(d, "counters").update(
            {"handshakes_full": -1}),
        "pin not a pin": lambda d: at(d, "certificate").update(
            {"pin": "sha1//abc"}),
        "expiring as string": lambda d: at(d).update({"expiring": "true"}),
        "schema 2": lambda d: d.update({"schema": 2}),
        "expiring without a certificate": lambda d: at(d).update(
            {"expiring": True, "certificate": None}),
        "no time but a time_unix": lambda d: at(d, "last_handshake").update(
            {"time": None}),
        "result unknown": lambda d: at(d, "last_handshake").update(
            {"result": "refused:bogus"}),
        "sni_from_client as string": lambda d: at(d).update(
            {"sni_from_client": "false"}),
        "no other": lambda d: d.pop("other"),
        "other with an unknown reason": lambda d: d["other"][
            "refusals"].update({"ok": 0}),
        "negative overflows": lambda d: d.update({"slot_overflows": -1}),
        "no reclaims": lambda d: d.pop("slot_reclaims"),
        "no crl_files": lambda d: d.pop("crl_files"),
        "no last_full_handshake": lambda d: at(d).pop("last_full_handshake"),
        "revocation unknown": lambda d: at(d, "last_full_handshake").update(
            {"revocation": "maybe"}),
        "staple resumed": lambda d: at(d, "last_full_handshake").update(
            {"staple": "resumed"}),
        "staple nextUpdate without its time": lambda d: at(
            d, "last_full_handshake").update(
                {"staple_next_update_unix": 1795771200}),
        "a CRL file without CRLs": lambda d: d["crl_files"].append(
            {"path": "/x.crl", "warn_within_seconds": 0, "crls": []}),
        "a CRL with negative entries": lambda d: d["crl_files"].append(
            {"path": "/x.crl", "warn_within_seconds": 0, "crls": [
                {"issuer": "CN=x", "last_update": None,
                 "last_update_unix": None, "next_update": None,
                 "next_update_unix": None, "seconds_left": None,
                 "expiring": False, "entries": -1}]}),
        "a CRL expiring without a window": lambda d: d["crl_files"].append(
            {"path": "/x.crl", "warn_within_seconds": 0, "crls": [
                {"issuer": "CN=x", "last_update": None,
                 "last_update_unix": None,
                 "next_update": "2026-01-01T00:00:00Z",
                 "next_update_unix": 1767225600, "seconds_left": -1,
                 "expiring": True, "entries": 0}]}),
    }
    for what, change in cases.items():
        assert broken(change), f"the schema accepts a document with {what}"


# ------------------------------------------------------------ Prometheus

SAMPLE_RE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)'
    r'\{(?P<labels>(?:[^"}]|"(?:[^"\\]|\\.)*")*)\} (?P<value>\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def _samples(text):
    """{(metric, ((label, value), ...)): value} of a Prometheus text;
    every line is a comment or a sample with labels."""
    out = {}
    for line in text.splitlines():
        if line.startswith("# "):
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = tuple((k, v) for k, v, _ in LABEL_RE.findall(
            m.group("labels")))
        key = (m.group("name"), labels)
        assert key not in out, f"sample twice: {line}"
        out[key] = float(m.group("value"))
    return out


def _promtool(text, tmp_path):
    assert os.path.exists(PROMTOOL), (
        f"{PROMTOOL} not found: apt-get install prometheus (it provides "
        f"promtool)")
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and not (p.stdout + p.stderr).strip(), (
        f"promtool check metrics: exit {p.returncode}\n{p.stdout}"
        f"{p.stderr}\n--- the text checked:\n{text[:4000]}")


def test_reencrypt_15_020_prometheus_text(env, backend, module_so, pki,
                                          tmp_path):
    """?prometheus passes `promtool check metrics` and carries, with
    backend and sni labels, the notAfter of each certificate, handshakes
    by kind, reuses, refusals and report-only violations by reason, with
    the values ?json shows; what no slot holds (the backend refused from
    its first handshake) with the labels backend="other", sni=""; and the
    slots reclaimed and overflowed."""
    scene = _scene(env, backend, pki, report=True)
    headers, text = _view(env, "?prometheus")
    doc = _json(env)
    assert headers.get("Content-Type") == (
        "text/plain; version=0.0.4; charset=utf-8"), headers
    _promtool(text, tmp_path)
    samples = _samples(text)
    for family, kind in (
            ("reencrypt_backend_cert_not_after_timestamp_seconds", "gauge"),
            ("reencrypt_backend_staple_next_update_seconds", "gauge"),
            ("reencrypt_handshakes_total", "counter"),
            ("reencrypt_connection_reuses_total", "counter"),
            ("reencrypt_refusals_total", "counter"),
            ("reencrypt_report_violations_total", "counter")):
        assert f"# TYPE {family} {kind}\n" in text, family

    for role in scene.slotted:
        e = scene.entry(doc, role.name)
        c = e["counters"]
        ids = (("backend", role.backend), ("sni", role.sni))

        def value(name, *more):
            key = (name, ids + more)
            assert key in samples, (
                f"no sample {name}{{{dict(ids + more)}}} in:\n{text}")
            return samples[key]

        assert value("reencrypt_backend_cert_not_after_timestamp_seconds") \
            == _unix(pki[role.leaf].not_after)
        assert value("reencrypt_backend_cert_not_before_timestamp_seconds") \
            == _unix(pki[role.leaf].cert.not_valid_before)
        assert value("reencrypt_backend_cert_expiring") == (
            1 if role.name == "expiring" else 0)
        assert value("reencrypt_handshakes_total", ("kind", "full")) \
            == c["handshakes_full"]
        assert value("reencrypt_handshakes_total", ("kind", "resumed")) \
            == c["handshakes_resumed"]
        assert value("reencrypt_connection_reuses_total") == c["reuses"]
        for reason in REASONS:
            assert value("reencrypt_refusals_total", ("reason", reason)) \
                == c["refusals"][reason]
            assert value("reencrypt_report_violations_total",
                         ("reason", reason)) \
                == c["report_violations"][reason]
        info = [lb for (n, lb) in samples if n == "reencrypt_backend_info"
                and lb[:2] == ids]
        assert len(info) == 1, info
        info = dict(info[0])
        assert info["pin"] == pki.pin(role.leaf)
        assert info["subject"] == f"CN={pki[role.leaf].cn}"
        assert info["result"] == role.result
        assert (info["revocation"], info["staple"]) == (
            "not-checked", "not-checked"), info

    refused = scene["refused"]
    assert not [lb for (n, lb) in samples
                if ("backend", refused.backend) in lb], text
    other = (("backend", "other"), ("sni", ""))
    assert samples[("reencrypt_refusals_total", other + (
        ("reason", "untrusted-chain"),))] == refused.requests
    for reason in REASONS:
        assert samples[("reencrypt_refusals_total", other + (
            ("reason", reason),))] == doc["other"]["refusals"][reason]
        assert samples[("reencrypt_report_violations_total", other + (
            ("reason", reason),))] == 0
    for kind in ("full", "resumed"):
        assert samples[("reencrypt_handshakes_total", other + (
            ("kind", kind),))] == 0
    assert samples[("reencrypt_connection_reuses_total", other)] == 0
    assert not [n for (n, lb) in samples if lb[:2] == other and n not in (
        "reencrypt_handshakes_total", "reencrypt_connection_reuses_total",
        "reencrypt_refusals_total", "reencrypt_report_violations_total")]
    assert samples[("reencrypt_status_slots", (("state", "total"),))] == 8
    assert samples[("reencrypt_status_slots", (("state", "used"),))] == \
        len(scene.slotted)
    for event in ("reclaimed", "overflowed"):
        assert samples[("reencrypt_status_slot_events_total",
                        (("event", event),))] == 0
    # nothing but the families of the module, each sample labelled
    assert {n for n, _ in samples} == {
        "reencrypt_backend_info",
        "reencrypt_backend_cert_not_after_timestamp_seconds",
        "reencrypt_backend_cert_not_before_timestamp_seconds",
        "reencrypt_backend_cert_expiring",
        "reencrypt_backend_last_handshake_timestamp_seconds",
        "reencrypt_handshakes_total", "reencrypt_connection_reuses_total",
        "reencrypt_refusals_total", "reencrypt_report_violations_total",
        "reencrypt_status_slots", "reencrypt_status_slot_events_total"}


# ---------------------------------------------------------- server-status

def test_reencrypt_15_030_server_status_section_and_auto(
        env, backend, module_so, pki):
    """With mod_status, server-status has a mod_reencrypt section and
    ?auto the Reencrypt* lines, with the totals over all backends (those
    without a slot included), the statistics slots and the soonest
    expiry."""
    scene = _scene(env, backend, pki, report=True)
    doc = _json(env)
    cs = [b["counters"] for b in doc["backends"]] + [doc["other"]]
    full = sum(c["handshakes_full"] for c in cs)
    resumed = sum(c["handshakes_resumed"] for c in cs)
    reuses = sum(c["reuses"] for c in cs)
    refused = sum(sum(c["refusals"].values()) for c in cs)
    reported = sum(sum(c["report_violations"].values()) for c in cs)
    assert refused == scene["refused"].requests
    assert reported == scene["report"].be.accepted >= 1
    assert full + resumed + reuses == sum(
        r.requests for r in scene.roles if r.name != "refused")
    exp = scene["expiring"]
    na = pki[exp.leaf].not_after

    before = int(time.time())
    auto, text = _auto(env)
    after = time.time()
    left = int(auto.pop("ReencryptSoonestExpirySeconds"))
    assert _unix(na) - after <= left <= _unix(na) - before, (
        left, _unix(na) - before)
    assert auto == {
        "ReencryptBackends": str(len(scene.slotted)),
        "ReencryptHandshakesFull": str(full),
        "ReencryptHandshakesResumed": str(resumed),
        "ReencryptReuses": str(reuses),
        "ReencryptRefusals": str(refused),
        "ReencryptReportViolations": str(reported),
        "ReencryptExpiringBackends": "1",
        "ReencryptSlotReclaims": "0",
        "ReencryptSlotOverflows": "0",
        "ReencryptSoonestExpiryBackend": exp.backend,
        **dict.fromkeys(AUTO_REVOCATION_KEYS, "0")}, text
    assert "ServerMPM: event" in text and "Processes: 2" in text, text

    _, page = _view(env, path=SERVER_STATUS)
    section = re.search(r"<h2>mod_reencrypt</h2>\n<dl>\n(.*?)</dl>", page,
                        re.S)
    assert section, page
    tracked = len(scene.slotted)
    assert section.group(1) == (
        f"<dt>{tracked} backends tracked; handshakes: {full} full,"
        f" {resumed} resumed; {reuses} pooled reuses</dt>\n"
        f"<dt>refusals: {refused}; report-only violations: {reported}; "
        f"expiring soon: 1</dt>\n"
        f"<dt>statistics slots: {tracked} of 8 used; 0 reclaimed; "
        f"0 overflowed</dt>\n"
        f"<dt>soonest expiry: {exp.backend} (CN={pki[exp.leaf].cn}) at "
        f"{asn1_time(na)}</dt>\n"
        f"<dt>at the last full handshake: revocation not-checked {tracked}; "
        f"OCSP staple not-checked {tracked}</dt>\n"), section.group(1)


# ------------------------------------------------------------ who may see

def test_reencrypt_15_040_require_denies_and_allows(env, backend, module_so,
                                                    pki):
    """`Require ip 192.0.2.1` keeps us (127.0.0.1) out: 403 and nothing of
    the statistics; `Require ip 127.0.0.1` lets us in, for every view."""
    scene = _scene(env, backend, pki)
    env.expect_log("AH01630")   # client denied by server configuration
    for query in ("", "?json", "?prometheus"):
        status, _, text = _fetch(env, STATUS_DENIED + query)
        assert status == 403, (query, status, text[:300])
        for role in scene.roles:
            assert role.backend not in text, text
        assert "reencrypt" not in text.lower().replace(
            STATUS_DENIED, ""), text
        status, _, text = _fetch(env, STATUS + query)
        assert status == 200, (query, status, text[:300])
        assert all(r.backend in text for r in scene.slotted), text
    denied = [ln for ln in env.lines_with("AH01630")]
    assert len(denied) == 3 and all(
        STATUS_DENIED in ln.raw for ln in denied), env.error_log()


def test_reencrypt_15_041_only_get(env, module_so, pki):
    """The views answer GET (and HEAD) only: any other method is 405 with
    an Allow header that names GET (RFC 9110, 15.5.6), and no data."""
    env.write_config(server=_server(), vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ProxyPass /good/ https://127.0.0.1:9/
""" + _status_locations())
    env.start()
    r = env.get(STATUS, method="HEAD")
    assert r.status == 200 and r.body == b"", r
    for method in ("POST", "PUT", "DELETE"):
        r = env.get(STATUS + "?json", method=method, body=b"x=1")
        assert r.status == 405, (method, r)
        assert "slots" not in r.text, r.text
        allow = [m.strip() for m in r.headers.get("Allow", "").split(",")]
        assert "GET" in allow and method not in allow, (
            f"{method} {STATUS}: 405 with Allow: {r.headers.get('Allow')}")


# ---------------------------------------------------------- no secrets

def _key_material(path):
    """Strings that would betray the private key in path: the PEM body
    and each of its lines, the DER in hex, the private numbers in hex."""
    with open(path) as f:
        pem = f.read()
    body_lines = [ln for ln in pem.splitlines()
                  if ln and not ln.startswith("-----")]
    body = "".join(body_lines)
    der = base64.b64decode(body)
    out = {body, der.hex(), der.hex().upper()}
    out |= {ln for ln in body_lines if len(ln) >= 24}
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        n = key.private_numbers()
        numbers = [n.d, n.p, n.q, n.dmp1, n.dmq1, n.iqmp]
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        numbers = [key.private_numbers().private_value]
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        numbers = [int.from_bytes(key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption()), "big")]
    else:
        raise AssertionError(f"unknown key type in {path}")
    for v in numbers:
        raw = v.to_bytes((v.bit_length() + 7) // 8, "big")
        out |= {raw.hex(), raw.hex().upper(),
                base64.b64encode(raw).decode()}
    return out


def _keylog_secrets(path):
    """The TLS secrets of a key log file (NSS format), hex and base64."""
    out = set()
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and not line.startswith("#"):
                raw = bytes.fromhex(parts[2])
                out |= {parts[2].lower(), parts[2].upper(),
                        base64.b64encode(raw).decode()}
    return out


BLOB_RE = re.compile(r"[A-Za-z0-9+/]{32,}={0,2}")


def test_reencrypt_15_050_no_secret_in_any_view(env, backend, module_so,
                                                pki, tmp_path):
    """No view (HTML, JSON, Prometheus, server-status and ?auto) holds a
    private key (PEM, DER, its numbers) of a backend or of the frontend,
    nor any TLS secret of the backend or frontend connections (as the key
    log of either end records them); the only long base64/hex strings the
    module writes are the certificates' serials and key pins."""
    keylog = str(tmp_path / "keylog")
    open(keylog, "w").close()
    scene = _scene(env, backend, pki, report=True, keylog=keylog)
    views = {}
    for q in ("", "?json", "?prometheus"):
        views[f"{STATUS}{q}"] = _view(env, q, keylog=keylog)[1]
    for q in ("", "?auto"):
        views[f"{SERVER_STATUS}{q}"] = _view(env, q, path=SERVER_STATUS,
                                             keylog=keylog)[1]

    leaves = [r.leaf for r in scene.roles] + ["frontend"]
    secrets = set()
    for leaf in leaves:
        secrets |= _key_material(pki.key(leaf))
    tls = _keylog_secrets(keylog)
    assert len(tls) >= 3 * 4, "the key log recorded no secrets"
    secrets |= tls
    for name, text in views.items():
        assert "PRIVATE KEY" not in text and "-----BEGIN" not in text, name
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{name} holds secret material: {leaked[:3]}"

    # the module's own output: only serials and pins are long blobs
    allowed = set()
    for leaf in leaves:
        allowed.add(format(pki[leaf].cert.serial_number, "X"))
        allowed.add(pki.pin(leaf).removeprefix("sha256//"))
    own = dict(views)
    own[SERVER_STATUS] = re.search(r"<h2>mod_reencrypt</h2>.*?</dl>",
                                   views[SERVER_STATUS], re.S).group(0)
    own[f"{SERVER_STATUS}?auto"] = "\n".join(
        ln for ln in views[f"{SERVER_STATUS}?auto"].splitlines()
        if ln.startswith("Reencrypt"))
    for name, text in own.items():
        blobs = {b.removeprefix("sha256//") for b in BLOB_RE.findall(text)}
        unknown = {b for b in blobs
                   if b not in allowed and b.lstrip("0") not in allowed}
        assert not unknown, f"{name}: unexplained blobs {sorted(unknown)}"


# --------------------------------------------------------------- browser

class _Rows(html.parser.HTMLParser):
    """The <tr> rows of a page: class and the text of each cell."""

    def __init__(self):
        super().__init__()
        self.rows = []
        self.title = ""
        self._cell = None
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append({"class": dict(attrs).get("class", ""),
                              "cells": []})
        elif tag in ("td", "th") and self.rows:
            self._cell = []
            self.rows[-1]["cells"].append(self._cell)
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._cell = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in_title:
            self.title += data

    def table(self):
        return [(r["class"], ["".join(c).replace("\xa0", " ").strip()
                              for c in r["cells"]]) for r in self.rows]


def _png_facts(path):
    """(width, height) of a PNG, after checking that it is one whose image
    data inflates to the size its header announces."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    assert header, "no IHDR"
    width, height, depth, colour = header[:4]
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw = zlib.decompress(idat)
    assert depth == 8 and len(raw) == height * (1 + width * channels), (
        header, len(raw))
    return width, height, data


def test_reencrypt_15_060_html_in_a_browser(env, backend, module_so, pki,
                                            tmp_path):
    """Headless Chromium renders the page: a 1400x700 screenshot with
    content, and a table of one row per backend, soonest expiry first,
    the expiring one marked "warn", the good one "ok", and a last row
    "other" that holds the refusals of the backend refused from its first
    handshake, marked "bad"."""
    assert os.path.exists(CHROMIUM), (
        f"{CHROMIUM} not found: apt-get install chromium")
    scene = _scene(env, backend, pki, frontend_tls=False)
    shot = tmp_path / "status.png"
    p = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium'}", f"--screenshot={shot}",
         "--dump-dom", "--window-size=1400,700",
         f"http://127.0.0.1:{env.port}{STATUS}"],
        capture_output=True, text=True, timeout=90, cwd=tmp_path)
    assert p.returncode == 0 and shot.exists(), (
        f"chromium exited {p.returncode}:\n{p.stderr[-3000:]}")
    width, height, data = _png_facts(shot)
    assert (width, height) == (1400, 700)
    assert len(data) > 20000, f"a {len(data)}-byte screenshot is empty"
    keep = os.environ.get("REENCRYPT_STATUS_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)

    page = _Rows()
    page.feed(p.stdout)
    assert page.title == "mod_reencrypt status", p.stdout[:500]
    table = page.table()
    head, rows = table[0], table[1:]
    assert head[1][:4] == ["Backend / SNI", "Certificate", "Expires",
                           "Last handshake"], head
    order = scene.expected_order()
    rows, other = rows[:-1], rows[-1]
    assert len(rows) == len(scene.slotted) == 2, table
    assert [r[1][0].split("\n")[0] for r in rows] == [
        scene[n].backend for n in order], table
    assert order == ["expiring", "good"], order
    want = {"expiring": "warn", "good": "ok"}
    for (cls, cells), name in zip(rows, order):
        role = scene[name]
        assert cls == want[name], (name, cls, cells)
        assert cells[0] == f"{role.backend}\nSNI {role.sni}", cells
        assert cells[1].startswith(f"CN={pki[role.leaf].cn}\n"), cells
        assert pki.pin(role.leaf) in cells[1], cells
        assert cells[2].startswith(asn1_time(pki[role.leaf].not_after)), \
            cells
        assert cells[3].startswith(role.result), cells
        assert cells[3].endswith(
            "\nCRL not-checked\nstaple not-checked"), cells
    # the backend refused from its first handshake has no slot: its
    # refusals are in the last row, "other", marked bad
    cls, cells = other
    assert cls == "bad", other
    assert cells[0] == "other\nbackends and SNIs without a slot", cells
    assert cells[6] == f"untrusted-chain {scene['refused'].requests}", cells
    assert cells[4] == "0 / 0" and cells[5] == "0", cells
    expiring_cells = rows[order.index("expiring")][1]
    assert expiring_cells[2].endswith("\n19d"), expiring_cells


def test_reencrypt_15_062_names_outside_ascii_in_every_view(
        env, backend, module_so, pki, tmp_path):
    """A backend certificate whose subject is text outside ASCII (CN
    'Exämple €uro <1>') reads the same in every view: the HTML page shows
    it (one character reference per character: &#228;, &#8364;), ?json
    and ?prometheus carry it as UTF-8, which promtool accepts."""
    leaf = "status-unicode"
    if leaf not in pki.certs:
        pki.fresh_leaf(leaf, "Ex\u00e4mple \u20acuro <1>")
    be = backend(leaf)
    env.write_config(server=_server(slots=4), vhost="\n".join([
        "SSLProxyEngine On",
        "ReencryptEngine On",
        f'ReencryptCACertificateFile "{pki.ca_file}"',
        "ReencryptSNI good.test",
        f"ProxyPass /uni/ {be.url_ip}uni/"]) + _status_locations())
    env.start()
    status, _, text = _fetch(env, "/uni/1")
    assert status == 200 and text == "backend-ok /uni/1\n", (
        status, text[:300], env.error_log())
    # as the name is printed (RFC 2253: '<' and '>' escaped)
    subject = "CN=Ex\u00e4mple \u20acuro \\<1\\>"

    _, page = _view(env)
    assert "CN=Ex&#228;mple &#8364;uro \\&lt;1\\&gt;<br>" in page, page
    rows = _Rows()
    rows.feed(page)
    [_, row] = rows.table()[1]
    assert row[1].startswith(subject + "\n"), row

    entry = _json(env)["backends"][0]
    assert entry["certificate"]["subject"] == subject, entry

    _, text = _view(env, "?prometheus")
    _promtool(text, tmp_path)
    info = [dict(lb) for (n, lb) in _samples(text)
            if n == "reencrypt_backend_info"]
    assert [i["subject"] for i in info] == [subject.replace("\\", "\\\\")], \
        info


# ------------------------------------------------------ statistics off

@pytest.mark.parametrize("how", ["without-slotmem", "zero-slots"])
def test_reencrypt_15_070_statistics_off(env, backend, module_so, pki, how):
    """Without mod_slotmem_shm (ReencryptStatusBackends not set) or with
    ReencryptStatusBackends 0 the server runs and proxies; the views say
    that statistics are off, ?json still matches the schema, with no slot
    and no backend, and server-status has no mod_reencrypt part."""
    validator = _validator()
    be = backend("good")
    server = (_server(slotmem=False) if how == "without-slotmem"
              else _server(slots=0))
    env.write_config(server=server, vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ReencryptSNI good.test
ProxyPass /good/ {be.url_ip}
""" + _status_locations())
    env.start()
    r = env.get("/good/x")
    assert r.status == 200 and r.text == "backend-ok /x\n", r

    _, page = _view(env)
    assert "Backend statistics are off" in page, page
    assert "<table>" not in page
    doc = _json(env)
    _assert_valid(validator, doc)
    assert (doc["slots"], doc["slots_used"], doc["backends"],
            doc["crl_files"]) == (0, 0, [], [])
    _, text = _view(env, "?prometheus")
    assert _samples(text) == {
        ("reencrypt_status_slots", (("state", "total"),)): 0,
        ("reencrypt_status_slots", (("state", "used"),)): 0}
    auto, raw = _auto(env)
    assert auto == {}, raw
    _, page = _view(env, path=SERVER_STATUS)
    assert "mod_reencrypt" not in page


def test_reencrypt_15_071_status_backends_needs_slotmem(env, module_so,
                                                        pki):
    """ReencryptStatusBackends set explicitly without mod_slotmem_shm: the
    configuration test and the start fail, RE00026 names the module to
    load, nothing serves."""
    env.write_config(server=_server(slots=16, slotmem=False), vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ProxyPass /good/ https://127.0.0.1:9/
""")
    env.expect_log("RE00026", "AH00014", "AH00020")
    message = ("RE00026: ReencryptStatusBackends 16 needs shared memory "
               "slots: add 'LoadModule slotmem_shm_module "
               "modules/mod_slotmem_shm.so'")
    assert_startup_error(env, re.escape(message))
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", env.port), timeout=2).close()


@pytest.mark.parametrize("value,message", [
    ("16385", "ReencryptStatusBackends"),
    ("-1", "ReencryptStatusBackends"),
    ("many", "ReencryptStatusBackends"),
])
def test_reencrypt_15_072_status_backends_syntax(env, module_so, pki, value,
                                                 message):
    """ReencryptStatusBackends takes 0..16384, at server level only."""
    env.write_config(server=_server(slots=value), vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ProxyPass / https://127.0.0.1:9/
""")
    rc, out = env.configtest()
    line = env.line_of(f"ReencryptStatusBackends {value}")
    assert rc != 0 and (f"AH00526: Syntax error on line {line} of "
                        f"{env.conf_file}:") in out, out
    assert message in out, out


def test_reencrypt_15_073_status_backends_not_in_virtual_host(
        env, module_so, pki):
    env.write_config(server=_server(), vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ReencryptStatusBackends 8
ProxyPass / https://127.0.0.1:9/
""")
    rc, out = env.configtest()
    line = env.line_of("ReencryptStatusBackends 8")
    assert rc != 0 and (f"AH00526: Syntax error on line {line} of "
                        f"{env.conf_file}:") in out, out
    assert "ReencryptStatusBackends cannot occur within <VirtualHost> " \
        "section" in out, out


def test_reencrypt_15_080_statistics_survive_a_graceful_restart(
        env, backend, module_so, pki):
    """The statistics live in mod_slotmem_shm's persisted slots: after
    `apache2 -k graceful` the new generation of children shows the
    counters and facts of the old one, and goes on counting."""
    scene = _scene(env, backend, pki)
    before = _json(env)
    counted = {b["backend"]: b["counters"] for b in before["backends"]}
    assert counted, before
    env.graceful()
    after = _json(env)
    assert {b["backend"]: b["counters"] for b in after["backends"]} == \
        counted, (before, after)
    def facts(doc):     # seconds_left moves on with the clock
        return [{k: v for k, v in b["certificate"].items()
                 if k != "seconds_left"} for b in doc["backends"]]
    assert facts(after) == facts(before)
    good = scene["good"]
    r = env.get(good.prefix + "again")
    assert r.status == 200, (r, env.error_log())
    again = {b["backend"]: b["counters"] for b in _json(env)["backends"]}
    c0, c1 = counted[good.backend], again[good.backend]
    assert (c1["handshakes_full"] + c1["handshakes_resumed"] + c1["reuses"]
            == c0["handshakes_full"] + c0["handshakes_resumed"]
            + c0["reuses"] + 1), (c0, c1)


def test_reencrypt_15_082_statistics_survive_graceful_restarts_under_load(
        env, backend, module_so, pki):
    """Graceful restarts while children of the old generation are still
    counting (handshakes with a slow backend end after the restart began):
    mod_slotmem_shm's persisted copy of the slots is taken from a
    segment nobody else writes, so it is restored every time (no AH02551
    "persisted slotmem md5/desc mismatch", which would start the new
    generation from zero), and the counters never go back.  4096 slots
    make the copy long enough for the old children to be caught in it."""
    be = backend("good", handshake_delay=0.1)
    env.write_config(server=_server(slots=4096), processes=1, threads=64,
                     vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ReencryptSNI good.test
ProxyPass /fresh/ {be.url_ip} disablereuse=On
""" + _status_locations(status=False))
    env.start()
    stop = threading.Event()
    statuses = collections.Counter()
    lock = threading.Lock()

    def client():
        while not stop.is_set():
            try:
                status = env.get("/fresh/x").status
            except OSError as e:
                status = type(e).__name__
            with lock:
                statuses[status] += 1

    def handled():
        doc = _json(env)
        entry = [b for b in doc["backends"]
                 if b["backend"] == f"127.0.0.1:{be.port}"]
        return _handled(entry[0]["counters"]) if entry else 0

    clients = [threading.Thread(target=client) for _ in range(48)]
    for t in clients:
        t.start()
    try:
        be.wait_for(lambda b: b.handshakes_ok >= 64, timeout=20,
                    what="64 handshakes under load")
        for _ in range(4):
            before = handled()
            env.graceful()
            after = handled()
            assert not env.lines_with("AH02551"), env.error_log()[-3000:]
            assert after >= before > 0, (before, after)
            be.wait_for(lambda b, n=be.handshakes_ok: b.handshakes_ok >= n + 32,
                        timeout=20, what="32 more handshakes")
    finally:
        stop.set()
        for t in clients:
            t.join(timeout=30)
    assert set(statuses) == {200}, statuses
    assert before <= handled() <= sum(statuses.values()), (
        before, handled(), statuses)


@pytest.mark.parametrize("old_name", ["mod_reencrypt-status",
                                      "mod_reencrypt-status-3",
                                      "mod_reencrypt-status-4",
                                      "mod_reencrypt-status-5"])
def test_reencrypt_15_081_slots_of_an_older_layout_are_not_restored(
        env, backend, module_so, pki, old_name):
    """A persisted copy of the slots under a name an earlier release used
    (mod_reencrypt-status, mod_reencrypt-status-3: shorter slots;
    mod_reencrypt-status-4: slots placed otherwise; mod_reencrypt-status-5:
    the copy the parent kept besides the segment counted in) is left
    alone: the server starts with empty statistics rather than reading
    that copy out of step (mod_slotmem_shm restores a file shorter than
    the slots as it is), and then counts as usual."""
    be = backend("good")
    env.write_config(server=_server(), vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ReencryptSNI good.test
ProxyPass /good/ {be.url_ip}
""" + _status_locations())
    old = os.path.join(env.root, "run",
                       f"slotmem-shm-{old_name}.shm.persist")
    with open(old, "wb") as f:
        f.write(struct.pack("<I", 1) * 4096)    # every word "in use"
    env.start()
    doc = _json(env)
    assert (doc["slots_used"], doc["backends"]) == (0, []), (
        json.dumps(doc["backends"])[:600])
    assert env.get("/good/x").status == 200
    doc = _json(env)
    assert [b["backend"] for b in doc["backends"]] == [
        f"127.0.0.1:{be.port}"], doc["backends"]
    _assert_valid(_validator(), doc)


# ------------------------------------------- slots the clients cannot fill

FLOOD = 80      # distinct Host values sent by a client: more than 64 slots


def _flood(env, prefix, hosts, status):
    """GET prefix<i> once per Host in hosts, each on a new connection;
    every answer must be status."""
    for i, host in enumerate(hosts):
        r = env.get(f"{prefix}{i}", host=host)
        assert r.status == status, (host, r, env.error_log()[-2000:])


def _entries(doc, be):
    return [b for b in doc["backends"] if b["backend"] == f"127.0.0.1:{be.port}"]


def _handled(counters):
    """Requests a counters object accounts for (handshakes and reuses)."""
    return (counters["handshakes_full"] + counters["handshakes_resumed"]
            + counters["reuses"])


def test_reencrypt_15_090_refused_host_names_take_no_slot(
        env, backend, module_so, pki):
    """`ReencryptSNI Host` (no ReencryptVerifyName): 80 requests, each with
    another Host the backend's certificate does not carry, are refused
    (502) and take no statistics slot: the slot table (64 by default) keeps
    room, and a backend requested afterwards is listed with its counts.
    The 80 refusals are counted under "other" (JSON, Prometheus
    backend="other", server-status totals).  A refusal of a backend and
    SNI that already have a slot (a wrong pin for the backend just served)
    is counted in that slot."""
    validator = _validator()
    hosted = backend("good")
    real = backend("good")
    wrong_pins = f"{pki.pin('good-ec')} {pki.pin('good-ed25519')}"
    env.write_config(processes=2, threads=16, server=_server(), vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ProxyPreserveHost On
ProxyPass /host/ {hosted.url_ip}host/
ProxyPass /real/ {real.url_ip}real/
ProxyPass /real-pinned/ {real.url_ip}pinned/
<Location /host/>
    ReencryptSNI Host
</Location>
<Location /real/>
    ReencryptSNI good.test
</Location>
<Location /real-pinned/>
    ReencryptSNI good.test
    ReencryptPin {wrong_pins}
</Location>
""" + _status_locations())
    env.expect_log("RE00010", "RE00050", *PROXY_HANDSHAKE_FAILURE_TAGS)
    env.start()

    _flood(env, "/host/", [f"h{i}.flood.test" for i in range(FLOOD)], 502)
    assert hosted.requests == [], "a refused backend received a request"
    r = env.get("/real/a")
    assert r.status == 200 and r.text == "backend-ok /real/a\n", r
    r = env.get("/real-pinned/b")
    assert r.status == 502, r
    assert len(env.lines_with("RE00010")) == FLOOD + 1, env.error_log()

    doc = _json(env)
    assert len(_entries(doc, real)) == 1, (
        f"the backend requested after {FLOOD} refused Host names is not "
        f"listed: slots {doc['slots']}, used {doc['slots_used']}, "
        f"{len(_entries(doc, hosted))} entries for the refused backend")
    assert _entries(doc, hosted) == [], [
        b["sni"] for b in _entries(doc, hosted)][:5]
    assert doc["slots"] == 64 and doc["slots_used"] == 1, (
        doc["slots"], doc["slots_used"])
    _assert_valid(validator, doc)
    e = _entries(doc, real)[0]
    assert e["sni"] == "good.test" and e["sni_from_client"] is False, e
    assert _handled(e["counters"]) == 1, e["counters"]
    assert e["counters"]["refusals"] == dict(
        dict.fromkeys(REASONS, 0), **{"pin-mismatch": 1}), e["counters"]
    assert e["last_handshake"]["result"] == "refused:pin-mismatch", e
    other = doc["other"]
    assert other["refusals"] == dict(
        dict.fromkeys(REASONS, 0), **{"name-mismatch": FLOOD}), other
    assert _handled(other) == 0, other
    assert (doc["slot_reclaims"], doc["slot_overflows"]) == (0, 0), doc

    _, text = _view(env, "?prometheus")
    samples = _samples(text)
    assert samples[("reencrypt_refusals_total", (
        ("backend", "other"), ("sni", ""),
        ("reason", "name-mismatch")))] == FLOOD, text
    assert samples[("reencrypt_status_slots", (("state", "used"),))] == 1
    auto, raw = _auto(env)
    assert auto["ReencryptBackends"] == "1", raw
    assert auto["ReencryptRefusals"] == str(FLOOD + 1), raw
    assert (auto["ReencryptSlotReclaims"],
            auto["ReencryptSlotOverflows"]) == ("0", "0"), raw
    _, page = _view(env)
    assert "1 of 64 backends tracked" in page, page
    other_rows = [r for r in _page_rows(page) if r[1][0].startswith("other")]
    assert len(other_rows) == 1, _page_rows(page)
    assert other_rows[0][1][6] == f"name-mismatch {FLOOD}", other_rows


def _page_rows(page):
    rows = _Rows()
    rows.feed(page)
    return rows.table()[1:]


@pytest.mark.parametrize("how", ["wildcard", "verify-name"])
def test_reencrypt_15_091_client_names_take_half_the_slots(
        env, backend, module_so, pki, how):
    """`ReencryptSNI Host` where every Host passes: a wildcard certificate
    (*.wild.test, names checked against the SNI), or ReencryptVerifyName
    (any SNI, the certificate checked for good.test).  Of 16 slots, the 80
    distinct client names take 8 (half), the other 72 handshakes find no
    slot and are counted under "other" and as overflows, which every view
    shows.  A backend requested before the flood keeps its slot, and one
    requested for the first time after it gets one: both are listed with
    their counts, and every request is counted once."""
    validator = _validator()
    slots = 16
    if how == "wildcard":
        hosted = backend("wild")
        hosts = [f"h{i}.wild.test" for i in range(FLOOD)]
        host_scope = "ReencryptSNI Host"
        env.expect_log("RE00050")
    else:
        hosted = backend("good")
        hosts = [f"h{i}.flood.test" for i in range(FLOOD)]
        host_scope = "ReencryptSNI Host\n    ReencryptVerifyName good.test"
    early = backend("good")
    late = backend("good")
    env.write_config(processes=2, threads=16, server=_server(slots=slots),
                     vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ReencryptSNI good.test
ProxyPreserveHost On
ProxyPass /host/ {hosted.url_ip}host/
ProxyPass /early/ {early.url_ip}early/
ProxyPass /late/ {late.url_ip}late/
<Location /host/>
    {host_scope}
</Location>
""" + _status_locations())
    env.start()

    assert env.get("/early/a").status == 200
    _flood(env, "/host/", hosts, 200)
    assert len(hosted.requests) == FLOOD
    assert sorted(hosted.snis) == sorted(hosts), hosted.describe()
    r = env.get("/late/a")
    assert r.status == 200 and r.text == "backend-ok /late/a\n", r
    assert env.get("/early/b").status == 200

    doc = _json(env)
    assert len(_entries(doc, late)) == 1, (
        f"the backend requested after {FLOOD} client names is not listed: "
        f"slots {doc['slots']}, used {doc['slots_used']}, "
        f"{len(_entries(doc, hosted))} entries for the client names")
    assert len(_entries(doc, early)) == 1, doc["slots_used"]
    assert doc["slots"] == slots and doc["slots_used"] == 10, (
        doc["slots"], doc["slots_used"])
    _assert_valid(validator, doc)
    assert _handled(_entries(doc, early)[0]["counters"]) == 2
    assert _handled(_entries(doc, late)[0]["counters"]) == 1
    client = _entries(doc, hosted)
    assert len(client) == slots // 2, [b["sni"] for b in client]
    assert all(b["sni_from_client"] and b["sni"] in hosts
               and _handled(b["counters"]) == 1 for b in client), client
    assert not any(b["sni_from_client"] for b in doc["backends"]
                   if b not in client)
    overflowed = FLOOD - slots // 2
    assert (doc["slot_reclaims"], doc["slot_overflows"]) == (0, overflowed)
    other = doc["other"]
    assert (other["handshakes_full"] + other["handshakes_resumed"],
            other["reuses"]) == (overflowed, 0), other
    assert sum(other["refusals"].values()) == 0, other
    counted = sum(_handled(b["counters"]) for b in doc["backends"])
    assert counted + _handled(other) == FLOOD + 3, (counted, other)

    # the overflows in every view
    _, text = _view(env, "?prometheus")
    samples = _samples(text)
    events = {lb[0][1]: v for (n, lb), v in samples.items()
              if n == "reencrypt_status_slot_events_total"}
    assert events == {"reclaimed": 0, "overflowed": overflowed}, events
    assert samples[("reencrypt_handshakes_total", (
        ("backend", "other"), ("sni", ""), ("kind", "full")))] == \
        other["handshakes_full"]
    auto, raw = _auto(env)
    assert (auto["ReencryptSlotReclaims"],
            auto["ReencryptSlotOverflows"]) == ("0", str(overflowed)), raw
    assert auto["ReencryptBackends"] == "10", raw
    assert int(auto["ReencryptHandshakesFull"]) + int(
        auto["ReencryptHandshakesResumed"]) + int(
        auto["ReencryptReuses"]) == FLOOD + 3, raw
    _, page = _view(env)
    assert (f"10 of {slots} backends tracked &middot; slots reclaimed: 0, "
            f"overflowed: {overflowed}") in page, page
    _, page = _view(env, path=SERVER_STATUS)
    assert (f"<dt>statistics slots: 10 of {slots} used; 0 reclaimed; "
            f"{overflowed} overflowed</dt>") in page, page


# ---------------------------------------------------- strings cut to fit

def test_reencrypt_15_092_long_utf8_subject_cut_at_a_character(
        env, backend, module_so, pki, tmp_path):
    """A backend certificate whose subject is longer than a slot keeps
    (255 bytes) and non-ASCII: the subject shown is cut before the
    character that does not fit, never inside it, so that every view is
    valid UTF-8, ?json parses and ?prometheus passes promtool."""
    from cryptography.x509.oid import NameOID
    org = "\u00e9" * 200            # 400 bytes of UTF-8
    name = "status-utf8"
    if name not in pki.certs:
        pki.fresh_leaf(name, "utf8.test", dns=("good.test",),
                       subject_extra=[(NameOID.ORGANIZATION_NAME, org)])
    be = backend(name)
    env.write_config(server=_server(), vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ReencryptSNI good.test
ProxyPass /utf8/ {be.url_ip}
""" + _status_locations())
    env.start()
    assert env.get("/utf8/x").status == 200

    views = {}
    for q in ("?json", "?prometheus", ""):
        r = env.get(STATUS + q)
        assert r.status == 200, r
        try:
            views[q] = r.body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise AssertionError(
                f"{STATUS}{q} is not valid UTF-8: {e}: "
                f"{r.body[max(0, e.start - 40):e.end + 20]!r}") from None
    doc = json.loads(views["?json"])
    _assert_valid(_validator(), doc)
    subject = doc["backends"][0]["certificate"]["subject"]
    # RFC 2253 order (last RDN first): "O=éé...é,CN=utf8.test", cut to
    # the whole characters that fit in 255 bytes
    assert subject == "O=" + "\u00e9" * 126, (len(subject.encode()),
                                              subject[-10:])
    _promtool(views["?prometheus"], tmp_path)
    assert f'subject="O={chr(0xe9) * 126}"' in views["?prometheus"]
    # the page writes a character outside ASCII as a reference
    assert "O=" + "&#233;" * 126 + "<br>" in views[""]


# ------------------------------------------------- revocation and CRLs

def _crls_of(path):
    """The CRLs of a PEM file (pki.crl() writes one; a file may hold
    several)."""
    with open(path, "rb") as f:
        data = f.read()
    end = b"-----END X509 CRL-----\n"
    return [x509.load_pem_x509_crl(block + end)
            for block in data.split(end) if block.strip()]


def _split_tables(page):
    """The rows of the backends' table and of the CRL files' table."""
    rows = _Rows()
    rows.feed(page)
    rows = rows.table()
    at = [i for i, (_, cells) in enumerate(rows) if cells[:1] == ["File"]]
    assert len(at) == 1, rows
    return rows[:at[0]], rows[at[0]:]


def test_reencrypt_15_100_revocation_and_crl_files_in_every_view(
        env, backend, module_so, pki, tmp_path):
    """Backends checked against CRLs (the root's, listing nothing, and the
    intermediate's, listing two certificates, both named in the vhost and
    again in a <Location>): the good backend's last full handshake says
    revocation good, the revoked one let through by ReencryptMode Report
    says revoked; no stapling, so staple not-checked and no nextUpdate.
    ?json (valid against the schema), ?prometheus (promtool passes), the
    HTML page and server-status say so, and list each CRL file once with
    the issuer, lastUpdate, nextUpdate and entries of its CRLs, expiring
    within ReencryptWarnExpiringWithin 30d (RE00082 at start-up).  A third
    file, of a scope without a window, holds two CRLs of one issuer: both
    listed, not expiring; Prometheus has one series for them, the newer
    CRL's."""
    validator = _validator()
    good, revoked = backend("good"), backend("revoked")
    root_file = pki.crl("s100-root.crl", "root")
    int_file = pki.crl("s100-int.crl", "int",
                       revoked=("revoked", "wrong-name"),
                       next_update=datetime.timedelta(days=5))
    two_file = str(tmp_path / "s100-two.crl")
    with open(two_file, "wb") as out:
        for name, last, nxt in (("s100-new.crl", -1, 9), ("s100-old.crl",
                                                          -2, 3)):
            with open(pki.crl(name, "int", revoked=("revoked",),
                              last_update=datetime.timedelta(days=last),
                              next_update=datetime.timedelta(days=nxt)),
                      "rb") as f:
                out.write(f.read())
    files = [(root_file, WARN_WITHIN, [("CN=Test Root CA", 0)]),
             (int_file, WARN_WITHIN, [("CN=Test Intermediate CA", 2)]),
             (two_file, 0, [("CN=Test Intermediate CA", 1)] * 2)]
    env.write_config(processes=2, server=_server(slots=8), vhost=f"""
SSLProxyEngine On
SSLProxyCheckPeerExpire Off
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ReencryptSNI good.test
ReencryptWarnExpiringWithin 30d
ReencryptCARevocationFile "{root_file}"
ReencryptCARevocationFile "{int_file}"
ProxyPass /good/ {good.url_ip}good/
ProxyPass /report/ {revoked.url_ip}report/
<Location /report/>
    ReencryptMode Report
    ReencryptCARevocationFile "{root_file}"
    ReencryptCARevocationFile "{int_file}"
</Location>
<Location /two/>
    ReencryptWarnExpiringWithin 0
    ReencryptCARevocationFile "{root_file}"
    ReencryptCARevocationFile "{two_file}"
</Location>
""" + _status_locations())
    env.expect_log("RE00018", "RE00082")
    started = int(time.time())
    env.start()
    for path in ("/good/1", "/report/1", "/good/2", "/report/2"):
        status, _, text = _fetch(env, path)
        assert status == 200 and text == f"backend-ok {path}\n", (
            path, status, text[:300], env.error_log())
    finished = int(time.time()) + 1
    want = {f"127.0.0.1:{good.port}": "good",
            f"127.0.0.1:{revoked.port}": "revoked"}

    # ?json
    doc = _json(env)
    _assert_valid(validator, doc)
    assert {b["backend"] for b in doc["backends"]} == set(want), doc
    for b in doc["backends"]:
        full = b["last_full_handshake"]
        assert started <= full["time_unix"] <= finished, (started, full)
        assert full == {"time": asn1_time(datetime.datetime.utcfromtimestamp(
                                  full["time_unix"])),
                        "time_unix": full["time_unix"],
                        "revocation": want[b["backend"]],
                        "staple": "not-checked", "staple_next_update": None,
                        "staple_next_update_unix": None}, b
    rep = [b for b in doc["backends"] if want[b["backend"]] == "revoked"][0]
    assert rep["last_handshake"]["result"] == "report:revoked", rep
    assert rep["counters"]["report_violations"]["revoked"] >= 1, rep

    assert [f["path"] for f in doc["crl_files"]] == [f for f, _, _ in files], (
        "each CRL file once, in the order of the configuration",
        doc["crl_files"])
    for f, (path, window, crls) in zip(doc["crl_files"], files):
        assert f["warn_within_seconds"] == window, f
        assert f["crls"] == [{
            "issuer": issuer,
            "last_update": asn1_time(crl.last_update),
            "last_update_unix": _unix(crl.last_update),
            "next_update": asn1_time(crl.next_update),
            "next_update_unix": _unix(crl.next_update),
            "seconds_left": _unix(crl.next_update) - doc["generated_unix"],
            "expiring": window > 0,
            "entries": entries} for (issuer, entries), crl in zip(
                crls, _crls_of(path))], f
        assert [len(c) for c in _crls_of(path)] == [n for _, n in crls]
    assert abs(doc["crl_files"][1]["crls"][0]["seconds_left"]
               - 5 * 86400) < 120, doc["crl_files"]

    # ?prometheus
    _, text = _view(env, "?prometheus")
    _promtool(text, tmp_path)
    samples = _samples(text)
    for family in ("reencrypt_backend_staple_next_update_seconds",
                   "reencrypt_crl_next_update_seconds",
                   "reencrypt_crl_entries"):
        assert f"# TYPE {family} gauge\n" in text, family
    for backend_id, verdict in want.items():
        info = [dict(lb) for (n, lb) in samples
                if n == "reencrypt_backend_info"
                and dict(lb)["backend"] == backend_id]
        assert len(info) == 1, info
        assert (info[0]["revocation"], info[0]["staple"]) == (
            verdict, "not-checked"), info
    assert not [k for k in samples
                if k[0] == "reencrypt_backend_staple_next_update_seconds"], \
        text
    crl_samples = {(n, lb): v for (n, lb), v in samples.items()
                   if n.startswith("reencrypt_crl_")}
    expected = {}
    for path, _, crls in files:
        # of two CRLs of one issuer, the newer (the first of two_file)
        (issuer, entries), crl = crls[0], _crls_of(path)[0]
        ids = (("file", path), ("issuer", issuer))
        expected[("reencrypt_crl_next_update_seconds", ids)] = _unix(
            crl.next_update)
        expected[("reencrypt_crl_entries", ids)] = entries
    assert crl_samples == expected, text

    # the HTML page
    _, page = _view(env)
    backends, table = _split_tables(page)
    for backend_id, verdict in want.items():
        [row] = [cells for _, cells in backends[1:]
                 if cells[0].startswith(backend_id + "\n")]
        # the last handshake, and what its last full one checked
        assert row[3].startswith(("ok\n", "report:revoked\n")), row
        assert row[3].endswith(
            f"\nCRL {verdict}\nstaple not-checked"), row
    assert table[0][1] == ["File", "Issuer", "lastUpdate", "nextUpdate",
                           "Entries"], table
    now = int(time.time())
    assert [cells for _, cells in table[1:]] == [
        [path, issuer, asn1_time(crl.last_update),
         f"{asn1_time(crl.next_update)}\n"
         f"{(_unix(crl.next_update) - now) // 86400}d", str(entries)]
        for path, _, crls in files
        for (issuer, entries), crl in zip(crls, _crls_of(path))], table
    assert [cls for cls, _ in table[1:]] == ["warn", "warn", "ok", "ok"], \
        table

    # server-status and ?auto
    auto, raw = _auto(env)
    assert {k: auto[k] for k in AUTO_REVOCATION_KEYS} == dict(
        dict.fromkeys(AUTO_REVOCATION_KEYS, "0"),
        ReencryptRevocationGood="1", ReencryptRevocationRevoked="1"), raw
    assert not [k for k in auto if k.startswith("ReencryptSoonestStaple")], \
        raw
    _, page = _view(env, path=SERVER_STATUS)
    assert ("<dt>at the last full handshake: revocation good 1, revoked 1; "
            "OCSP staple not-checked 2</dt>\n") in page, page

    # RE00082 at start-up, once for each CRL within the window
    said = sorted(re.search(r"RE00082: CRL of (.*?) in (\S+) expires soon",
                            ln.raw).groups()
                  for ln in env.lines_with("RE00082"))
    assert said == sorted((crls[0][0], path) for path, window, crls in files
                          if window), env.error_log()
