"""Assertions shared by the mod_reencrypt integration tests."""

import datetime
import re

# What mod_proxy / mod_proxy_http log (level error) when the TLS handshake
# with the backend fails: "pass request body failed" (AH01084, AH01097) and
# "Error during SSL Handshake with remote server" (AH00898).
PROXY_HANDSHAKE_FAILURE_TAGS = ("AH01084", "AH00898", "AH01097")

REASONS = ("untrusted-chain", "name-mismatch", "depth-exceeded", "expired",
           "not-yet-valid", "no-certificate", "pin-mismatch",
           "expiring-within", "revoked", "crl-expired", "crl-missing",
           "crl-invalid", "staple-revoked", "staple-unknown",
           "staple-missing", "staple-expired", "staple-invalid")

RE10_RE = re.compile(
    r"RE00010: backend (?P<backend>\S+) refused: (?P<reason>[a-z-]+); "
    r"expected (?P<expected>.*); seen (?P<seen>.*)$")

# ReencryptMode Report: the line that would have been an RE00010
RE18_RE = re.compile(
    r"RE00018: backend (?P<backend>\S+) report-only: would refuse: "
    r"(?P<reason>[a-z-]+); expected (?P<expected>.*); seen (?P<seen>.*)$")

# access-log format showing the per-request variables of mod_reencrypt
RE_LOG_FORMAT = ('LogFormat "%U %{REENCRYPT_RESULT}e %{REENCRYPT_PEER_PIN}e '
                 '%{REENCRYPT_PEER_NOT_AFTER}e" re')


def access_log_directives(env):
    """LogFormat + CustomLog writing RE_LOG_FORMAT lines to
    env.access_log_file (one line: path result pin notAfter)."""
    return f'{RE_LOG_FORMAT}\nCustomLog "{env.access_log_file}" re'


def asn1_time(dt):
    """Format like the module's log lines: 2026-11-27T08:30:00Z."""
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_asn1_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ")


def re10_lines(env):
    return [ln for ln in env.log_lines() if "RE00010:" in ln.rest]


def re18_lines(env):
    return [ln for ln in env.log_lines() if "RE00018:" in ln.rest]

# two scopes, both passed by a "good" backend, under different policies
TWO_NAME_SCOPES = """
<Location /a>
    ReencryptVerifyName good.test
</Location>
<Location /b>
    ReencryptVerifyName backend.test
</Location>
"""


def assert_served(env, be, path="/", host=None, sni=Ellipsis, status=200,
                  ignore_re10=False):
    """GET path through the frontend: the backend answers it (200 and the
    backend's body) and no RE00010 line exists (unless ignore_re10, for a
    test that provoked one before).  If sni is given, the (last) TLS
    connection that carried the request had that SNI (None: no SNI)."""
    r = env.get(path, host=host)
    assert r.status == status, (
        f"GET {path}: expected {status}, got {r.status}: {r.text[:300]}\n"
        f"backend connections:\n{be.describe()}\nerror_log:\n"
        f"{env.error_log()}")
    assert r.text == f"backend-ok {path}\n", r.text[:300]
    assert ("GET", path) in be.requests
    if not ignore_re10:
        assert not re10_lines(env), re10_lines(env)
    if sni is not Ellipsis:
        carrier = [c for c in be.connections if ("GET", path) in c.requests]
        assert carrier, be.describe()
        c = carrier[-1]
        assert c.sni_seen, be.describe()
        assert c.sni == sni, (
            f"backend saw SNI {c.sni!r} for GET {path}, expected {sni!r}")
    return r


def assert_refused(env, be, reason, path="/", host=None, backend=None,
                   method="GET", body=None):
    """GET path through the frontend must be refused by mod_reencrypt:
    502 to the client, no application byte at the backend (its TLS accept
    failed), exactly one RE00010 line at level error with this reason.
    Returns the regex match of the RE00010 line (groups backend, reason,
    expected, seen)."""
    assert reason in REASONS
    env.expect_log("RE00010", *PROXY_HANDSHAKE_FAILURE_TAGS)
    r = env.get(path, host=host, method=method, body=body)
    assert r.status == 502, (
        f"{method} {path}: expected 502, got {r.status}: {r.text[:300]}\n"
        f"backend connections:\n{be.describe()}\nerror_log:\n"
        f"{env.error_log()}")
    be.wait_settled()
    assert be.accepted >= 1, "the proxy never connected to the backend"
    assert be.app_bytes == 0, (
        f"backend received {be.app_bytes} bytes of application data: "
        f"{be.received[:300]!r}")
    assert be.handshakes_ok == 0, (
        "the backend completed a TLS handshake; the proxy must abort it:\n"
        + be.describe())
    return assert_one_re10(env, be, reason, backend)


def assert_one_re10(env, be, reason, backend=None):
    """The error log has exactly one RE00010 line, at level error, of the
    documented shape, naming backend (default: be's address) and reason.
    Returns the regex match."""
    return _the_one_line(env, be, "RE00010", "error", RE10_RE, backend,
                         reason)


def assert_member_moved_on(env, member, reason, balancer):
    """The one RE00010 line refuses member of balancer://<balancer> for
    reason and says the request goes on to another member; mod_proxy
    logs no handshake failure for it.  Returns the regex match."""
    m = assert_one_re10(env, member, reason)
    assert m.group("seen").endswith(
        f"; balancer://{balancer} member put in error state for its "
        f"retry=, the request goes on to another member if one is left"), (
        m.group(0))
    assert not [ln for ln in env.log_lines()
                if ln.tag in PROXY_HANDSHAKE_FAILURE_TAGS], env.error_log()
    return m


def one_line(env, tag, level, regex):
    """The error log has exactly one line of tag, at level, of the
    documented shape (regex); returns the regex match."""
    lines = [ln for ln in env.log_lines() if f"{tag}:" in ln.rest]
    assert len(lines) == 1, (
        f"expected exactly one {tag} line, got:\n"
        + "\n".join(ln.raw for ln in lines) + "\n" + env.error_log())
    line = lines[0]
    assert line.level == level, line.raw
    m = regex.search(line.rest)
    assert m, f"{tag} line does not have the documented shape: {line.raw}"
    return m


def _the_one_line(env, be, tag, level, regex, backend, reason):
    """one_line() of tag, naming backend (default: be's address) and
    reason. Returns the regex match."""
    m = one_line(env, tag, level, regex)
    if backend is None:
        backend = f"127.0.0.1:{be.port}"
    assert m.group("backend") == backend, m.string
    assert m.group("reason") == reason, m.string
    return m


def policy_vhost(url, *directives, ca=None, engine="On", preamble=()):
    """A frontend virtual host proxying / to url under a policy.

    directives are added after ReencryptEngine / ReencryptCACertificateFile
    and before ProxyPass; preamble lines come first (e.g. ProxyPreserveHost).
    """
    lines = ["SSLProxyEngine On", *preamble]
    if engine:
        lines.append(f"ReencryptEngine {engine}")
    if ca:
        lines.append(f'ReencryptCACertificateFile "{ca}"')
    lines += list(directives)
    lines.append(f"ProxyPass / {url}")
    return "\n".join(lines)


def policy_head(ca, sni="good.test"):
    """The first lines of a hand-written policy virtual host: proxy TLS and
    the module on, trust anchor file ca, ReencryptSNI sni."""
    return "\n".join(["SSLProxyEngine On", "ReencryptEngine On",
                      f'ReencryptCACertificateFile "{ca}"',
                      f"ReencryptSNI {sni}"])


def start_policy(env, be, *directives, ca=None, preamble=()):
    """Write a configuration whose virtual host proxies / to be (by its
    IP address) under policy_vhost(directives) and start the server."""
    env.write_config(vhost=policy_vhost(be.url_ip, *directives, ca=ca,
                                        preamble=preamble))
    env.start()


def assert_refused_reads(env, be, reason, rest, **kw):
    """assert_refused(env, be, reason, **kw), and its RE00010 line reads,
    to the letter, "RE00010: backend 127.0.0.1:<be's port> refused:
    <reason>; <rest>".  Returns the regex match."""
    m = assert_refused(env, be, reason, **kw)
    assert m.group(0) == (
        f"RE00010: backend 127.0.0.1:{be.port} refused: {reason}; {rest}")
    return m

def assert_startup_error(env, rx):
    """The configuration is refused: apache2 -t fails (no "Syntax OK")
    and so does the start, both with output matching regex rx; the server
    does not run."""
    rc, out = env.configtest()
    assert rc != 0, out
    assert re.search(rx, out), f"{rx!r} not in:\n{out}"
    assert "Syntax OK" not in out
    rc, out = env.start(check=False)
    assert rc != 0, out
    assert re.search(rx, out), f"{rx!r} not in:\n{out}"
    assert not env.running


def assert_time_near(s, moment, slack=120):
    t = parse_asn1_time(s)
    delta = abs((t - moment).total_seconds())
    assert delta <= slack, f"{s} is {delta}s away from {asn1_time(moment)}"


def assert_reported(env, be, reason, path="/", host=None, backend=None):
    """ReencryptMode Report: GET path is served (200, the backend answers
    it) although the backend violates the policy; exactly one RE00018 line
    at level warn names the reason, and no RE00010 line exists.  Returns
    the regex match of the RE00018 line (groups backend, reason, expected,
    seen)."""
    assert reason in REASONS
    env.expect_log("RE00018")
    r = env.get(path, host=host)
    assert r.status == 200, (
        f"GET {path}: expected 200, got {r.status}: {r.text[:300]}\n"
        f"backend connections:\n{be.describe()}\nerror_log:\n"
        f"{env.error_log()}")
    assert r.text == f"backend-ok {path}\n", r.text[:300]
    assert ("GET", path) in be.requests
    assert not re10_lines(env), re10_lines(env)
    return _the_one_line(env, be, "RE00018", "warn", RE18_RE, backend,
                         reason)


# ----------------------------------------------------------------- sessions
# access-log format for backend TLS session resumption: path, pid of the
# child that served it, status, REENCRYPT_SESSION (full / resumed) and
# REENCRYPT_RESULT
SESSION_LOG_FORMAT = ('LogFormat "%U %P %>s %{REENCRYPT_SESSION}e '
                      '%{REENCRYPT_RESULT}e" re_session')

# the debug line of every backend handshake that passed the policy
RE14_RE = re.compile(
    r"\[pid (?P<pid>\d+):tid \d+\] .*RE00014: backend (?P<backend>\S+) "
    r"verified: (?P<subject>.*), chain of (?P<chain>\d+), "
    r"SNI (?P<sni>\S+)(?P<resumed>, resumed session)?$")


def session_log_directives(env):
    """LogFormat + CustomLog writing SESSION_LOG_FORMAT lines to
    env.access_log_file."""
    return (f'{SESSION_LOG_FORMAT}\n'
            f'CustomLog "{env.access_log_file}" re_session')


class SessionEntry:
    """One SESSION_LOG_FORMAT access-log line."""

    def __init__(self, line):
        self.raw = line
        self.path, pid, status, self.session, self.result = line.split(" ")
        self.pid = int(pid)
        self.status = int(status)

    def __repr__(self):
        return self.raw


def re14_matches(env):
    """RE14_RE matches of the RE00014 lines (LogLevel reencrypt:debug)."""
    out = []
    for ln in env.log_lines():
        m = RE14_RE.search(ln.raw)
        if m:
            out.append(m)
    return out


def write_lenient_policy(env, be, lenient, *directives, ca=None):
    """Write the policy of directives for be, with mod_ssl's
    SSLProxyCheckPeerExpire left on: apache2 -t warns (RE00035) that it
    refuses what the lenient directive would let through."""
    env.write_config(vhost=policy_vhost(be.url_ip, *directives, ca=ca))
    assert "SSLProxyCheckPeerExpire" not in env.conf_text
    assert_lenient_warned(env, lenient)


def assert_lenient_warned(env, directive):
    """apache2 -t passes and warns (RE00035, with the directive's
    file:line) that mod_ssl's SSLProxyCheckPeerExpire, on in that scope,
    refuses what the lenient directive would let through."""
    rc, out = env.configtest()
    assert rc == 0, out
    m = re.search(r"RE00035: (\S+(?: \S+)?) at (\S+):(\d+) \(in [^)]*\): "
                  r"mod_ssl's SSLProxyCheckPeerExpire is On by default there "
                  r"and refuses an expired or not yet valid backend "
                  r"certificate before this setting can let it through: set "
                  r"'SSLProxyCheckPeerExpire Off' in that scope", out)
    assert m, out
    assert m.group(1) == directive, out
    with open(m.group(2)) as f:
        line = f.read().splitlines()[int(m.group(3)) - 1]
    assert line.strip().startswith(directive.split(" ")[0]), line


def assert_modssl_refused_lenient(env, be, path):
    """GET path is answered 502 because mod_ssl's own expiry check refused
    a backend that the policy let through (Report mode, clock skew): the
    backend got no request byte, the module logged no refusal but one
    RE00020 warning that says to set SSLProxyCheckPeerExpire Off."""
    r = env.get(path)
    assert r.status == 502, (r, env.error_log())
    be.wait_settled()
    assert be.app_bytes == 0, be.received[:300]
    assert not re10_lines(env), env.error_log()
    lines = [ln for ln in env.log_lines() if "RE00020:" in ln.rest]
    assert len(lines) == 1, env.error_log()
    assert lines[0].level == "warn", lines[0].raw
    assert ("RE00020: mod_ssl refused a backend that ReencryptMode Report "
            "or ReencryptClockSkew let through: set "
            "'SSLProxyCheckPeerExpire Off'") in lines[0].rest, lines[0].raw
