"""Expiry windows and clock skew.

ReencryptRefuseExpiringWithin refuses a backend whose certificate ends
within the window (reason expiring-within).  ReencryptWarnExpiringWithin
serves it and logs RE00019 at warn level, once per certificate and day for
the whole server (all child processes), which needs mod_socache_shmcb.
ReencryptClockSkew is a grace for notBefore only.  Durations are 45s, 15m,
12h, 30d or bare seconds, at most 3650d.
"""

import concurrent.futures
import datetime
import os
import re
import socket

import pytest

from checks import (PROXY_HANDSHAKE_FAILURE_TAGS, asn1_time,
                    assert_modssl_refused_lenient, assert_refused,
                    assert_served, assert_time_near, policy_head, policy_vhost,
                    re10_lines, start_policy, write_lenient_policy)
from test_01_configtest import assert_syntax_error, vhost as config_vhost

DURATION_DIRECTIVES = ("ReencryptRefuseExpiringWithin",
                       "ReencryptWarnExpiringWithin", "ReencryptClockSkew")


def _now():
    return datetime.datetime.utcnow().replace(microsecond=0)


def _re19_lines(env):
    return [ln for ln in env.log_lines() if "RE00019:" in ln.rest]


def _left(not_after, moment):
    """'<D>d <H>h' as RE00019 says it, for the time left at moment."""
    secs = int((not_after - moment).total_seconds())
    return f"{secs // 86400}d {secs % 86400 // 3600}h"


def _assert_warning(line, be, leaf, pki, window, before, after):
    assert line.level == "warn", line.raw
    lefts = {_left(pki[leaf].not_after, t) for t in (before, after)}
    texts = {
        f"RE00019: backend 127.0.0.1:{be.port} certificate expires soon: "
        f"CN={pki[leaf].cn} notAfter={asn1_time(pki[leaf].not_after)}, "
        f"in {left} (ReencryptWarnExpiringWithin {window}s)"
        for left in lefts}
    assert any(line.rest.endswith(t) for t in texts), (line.raw, texts)


# ---------------------------------------------------------------- refuse

@pytest.mark.parametrize("window", ["7d", "168h", "10080m", "604800s",
                                    "604800"])
def test_reencrypt_10_001_refuse_expiring_within(env, backend, module_so,
                                                 pki, window):
    """A certificate ending in 2 days, a 7-day refusal window (in any
    unit): 502, nothing at the backend, reason expiring-within."""
    be = backend("expiring-2d")
    start_policy(
        env, be, "ReencryptSNI good.test",
        f"ReencryptRefuseExpiringWithin {window}", ca=pki.ca_file)
    before = _now()
    m = assert_refused(env, be, "expiring-within")
    mm = re.fullmatch(
        r"notAfter after (\S+) \(ReencryptRefuseExpiringWithin 604800s\)",
        m.group("expected"))
    assert mm, m.group(0)
    assert_time_near(mm.group(1), before + datetime.timedelta(days=7))
    na = asn1_time(pki["expiring-2d"].not_after)
    assert m.group("seen") == f"CN=expiring-2d.test notAfter={na}", \
        m.group(0)


def test_reencrypt_10_002_outside_refuse_window_served(env, backend,
                                                       module_so, pki):
    be = backend("expiring-2d")
    start_policy(
        env, be, "ReencryptSNI good.test",
        "ReencryptRefuseExpiringWithin 1d", ca=pki.ca_file)
    assert_served(env, be, "/two-days-left", sni="good.test")


def test_reencrypt_10_003_refuse_window_in_location(env, backend,
                                                    module_so, pki):
    be = backend("expiring-2d")
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI good.test", ca=pki.ca_file) + """
<Location /strict>
    ReencryptRefuseExpiringWithin 3d
</Location>
""")
    env.start()
    assert_refused(env, be, "expiring-within", path="/strict/a")
    assert_served(env, be, "/relaxed", ignore_re10=True)


# ---------------------------------------------------------------- warn

def test_reencrypt_10_010_warn_once_across_children(env, backend, module_so,
                                                    pki):
    """A certificate ending in 20 days, a 30-day warning window, two child
    processes, 120 requests each on a new client connection and a new
    backend handshake: all served, exactly one RE00019 line."""
    be = backend("expiring-20d")
    n = 120
    env.write_config(processes=2, vhost=policy_vhost(
        be.url_ip + " disablereuse=On", "ReencryptSNI good.test",
        "ReencryptWarnExpiringWithin 30d", ca=pki.ca_file) + "\n" + "\n".join([
            'LogFormat "%P %{REENCRYPT_RESULT}e %U" pidre',
            f'CustomLog "{env.access_log_file}" pidre']))
    env.expect_log("RE00019")
    env.start()
    before = _now()

    def one(i):
        r = env.get(f"/w/{i}")
        return r.status, r.text

    # 6 clients at a time: both children busy, spare threads left
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(one, range(n)))
    after = _now()
    assert results == [(200, f"backend-ok /w/{i}\n") for i in range(n)], [
        r for r in results if r[0] != 200][:5]

    lines = env.access_lines(n)
    assert len(lines) == n, lines
    pids = {ln.split()[0] for ln in lines}
    assert len(pids) >= 2, (
        f"all {n} requests were handled by one child process {pids}: the "
        f"test proves nothing about the other one")
    assert {ln.split()[1] for ln in lines} == {"ok"}, lines
    # every request had a TLS handshake of its own with the backend
    be.wait_settled()
    assert be.handshakes_ok == n, be.describe()
    assert all(len(c.requests) == 1 for c in be.connections), be.describe()

    warnings = _re19_lines(env)
    assert len(warnings) == 1, "\n".join(ln.raw for ln in warnings)
    _assert_warning(warnings[0], be, "expiring-20d", pki, 30 * 86400,
                    before, after)
    assert not re10_lines(env)


def test_reencrypt_10_011_warn_once_per_certificate(env, backend, module_so,
                                                    pki):
    """Two backends whose certificates are both inside the window: one
    RE00019 line for each, however many requests."""
    be20 = backend("expiring-20d")
    be2 = backend("expiring-2d")
    env.write_config(vhost=f"""
{policy_head(pki.ca_file)}
ReencryptWarnExpiringWithin 30d
ProxyPass /a/ {be20.url_ip} disablereuse=On
ProxyPass /b/ {be2.url_ip} disablereuse=On
""")
    env.expect_log("RE00019")
    env.start()
    before = _now()
    for i in range(10):
        for prefix in ("/a/", "/b/"):
            r = env.get(f"{prefix}{i}")
            assert r.status == 200, (r, env.error_log())
    after = _now()
    assert be20.handshakes_ok == 10 and be2.handshakes_ok == 10
    warnings = _re19_lines(env)
    assert len(warnings) == 2, "\n".join(ln.raw for ln in warnings)
    by_port = {}
    for ln in warnings:
        m = re.search(r"RE00019: backend 127\.0\.0\.1:(\d+) ", ln.rest)
        assert m, ln.raw
        by_port[int(m.group(1))] = ln
    assert set(by_port) == {be20.port, be2.port}, warnings
    _assert_warning(by_port[be20.port], be20, "expiring-20d", pki,
                    30 * 86400, before, after)
    _assert_warning(by_port[be2.port], be2, "expiring-2d", pki,
                    30 * 86400, before, after)


def test_reencrypt_10_012_outside_warn_window_silent(env, backend,
                                                     module_so, pki):
    be = backend("expiring-20d")
    start_policy(
        env, be, "ReencryptSNI good.test",
        "ReencryptWarnExpiringWithin 7d", ca=pki.ca_file)
    for i in range(3):
        assert_served(env, be, f"/quiet/{i}")
    assert not _re19_lines(env), env.error_log()


def test_reencrypt_10_013_refuse_and_warn_windows_together(
        env, backend, module_so, pki):
    """Refused inside the refusal window; served with a warning when only
    inside the warning window."""
    be2 = backend("expiring-2d")
    be20 = backend("expiring-20d")
    env.write_config(vhost=f"""
{policy_head(pki.ca_file)}
ReencryptRefuseExpiringWithin 7d
ReencryptWarnExpiringWithin 30d
ProxyPass /two/ {be2.url_ip}
ProxyPass /twenty/ {be20.url_ip}
""")
    env.expect_log("RE00019")
    env.start()
    assert_refused(env, be2, "expiring-within", path="/two/x")
    r = env.get("/twenty/y")
    assert r.status == 200, (r, env.error_log())
    assert ("GET", "/y") in be20.requests
    warnings = _re19_lines(env)
    assert len(warnings) == 1, env.error_log()
    assert f"backend 127.0.0.1:{be20.port} " in warnings[0].rest


def _shmcb_sizes(env):
    """Sizes of the shmcb segments the server allocated (AH00821, a
    debug line of mod_socache_shmcb), in the order they were made."""
    return [int(m.group(1)) for m in re.finditer(
        r"AH00821: shmcb_init allocated (\d+) bytes of shared memory",
        env.error_log())]


def test_reencrypt_10_015_warn_record_size_and_place(env, backend,
                                                     module_so, pki):
    """The shared record of warnings said is a 64 KiB shmcb segment
    (mod_socache_shmcb's own default would be 512 KiB), and starting the
    server leaves no file named after that size in the ServerRoot or the
    runtime directory; the warning is still said once."""
    be = backend("expiring-20d")
    # mod_ssl's session cache is 512000 bytes (httpd.py); the backend
    # session cache is off, so the warning record is the only other one
    env.write_config(
        loglevel="warn socache_shmcb:debug",
        server="ReencryptSessionCache none",
        vhost=policy_vhost(be.url_ip, "ReencryptSNI good.test",
                           "ReencryptWarnExpiringWithin 30d",
                           ca=pki.ca_file))
    env.expect_log("RE00019")
    before_files = set(os.listdir(env.root))
    env.start()
    for i in range(3):
        assert_served(env, be, f"/size/{i}")
    assert len(_re19_lines(env)) == 1, env.error_log()
    sizes = _shmcb_sizes(env)
    assert sorted(sizes) == [65536, 512000], (sizes, env.error_log())
    for d in (env.root, os.path.join(env.root, "run")):
        assert "65536" not in os.listdir(d), (d, os.listdir(d))
    assert set(os.listdir(env.root)) == before_files, (
        sorted(set(os.listdir(env.root)) - before_files))


def _config_without_socache(env, pki):
    # the backend session cache, which would need shmcb as well, is turned
    # off so that only the warning window asks for it
    env.write_config(
        modules=["authz_core", "ssl", "proxy", "proxy_http"],
        server="ReencryptSessionCache none",
        vhost=config_vhost("ReencryptWarnExpiringWithin 30d",
                           ca=pki.ca_file))
    assert "socache_shmcb" not in env.conf_text
    # mod_ssl warns that it has no session cache either
    env.expect_log("RE00009", "AH01873", "AH00020")


def test_reencrypt_10_014_warn_window_needs_socache_shmcb(env, module_so,
                                                          pki):
    """Without mod_socache_shmcb a warning window is a startup error:
    RE00009 names the module to load, the start fails, nothing serves."""
    _config_without_socache(env, pki)
    rc, out = env.start(check=False)
    text = out + env.error_log()
    assert re.search(r"RE00009: ReencryptWarnExpiringWithin needs the shmcb "
                     r"shared cache: .*socache_shmcb", text), text
    assert rc != 0, f"apache2 -k start exited with {rc}:\n{text}"
    assert not env.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", env.port), timeout=2).close()


# ---------------------------------------------------------------- skew

def test_reencrypt_10_020_not_yet_valid_within_skew(env, backend, module_so,
                                                    pki):
    """notBefore one minute ahead: accepted with a 5-minute skew, refused
    (not-yet-valid) with a 30-second one."""
    leaf = pki.fresh_leaf("nb-60s", "nb-60s.test",
                          not_before=datetime.timedelta(seconds=60))
    be = backend(leaf)
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI good.test", "ReencryptClockSkew 5m",
        ca=pki.ca_file, preamble=["SSLProxyCheckPeerExpire Off"]) + """
<Location /strict>
    ReencryptClockSkew 30s
</Location>
""")
    env.start()
    before = _now()
    m = assert_refused(env, be, "not-yet-valid", path="/strict/x")
    mm = re.fullmatch(
        r"notBefore before (\S+) \(now plus ReencryptClockSkew 30s\)",
        m.group("expected"))
    assert mm, m.group(0)
    assert_time_near(mm.group(1), before + datetime.timedelta(seconds=30),
                     slack=10)
    assert m.group("seen") == (
        f"CN=nb-60s.test notBefore={asn1_time(pki[leaf].not_before)}"), \
        m.group(0)
    assert_served(env, be, "/skew", sni="good.test", ignore_re10=True)
    # the certificate was still in its future when it was accepted
    assert pki[leaf].not_before > _now(), "the test ran too slowly"


def test_reencrypt_10_021_not_yet_valid_outside_skew(env, backend,
                                                     module_so, pki):
    """notBefore two hours ahead, 5-minute skew: refused as not-yet-valid
    (never as expired)."""
    be = backend("future-2h")
    start_policy(
        env, be, "ReencryptSNI good.test", "ReencryptClockSkew 5m",
        ca=pki.ca_file, preamble=["SSLProxyCheckPeerExpire Off"])
    before = _now()
    m = assert_refused(env, be, "not-yet-valid")
    mm = re.fullmatch(
        r"notBefore before (\S+) \(now plus ReencryptClockSkew 300s\)",
        m.group("expected"))
    assert mm, m.group(0)
    assert_time_near(mm.group(1), before + datetime.timedelta(minutes=5),
                     slack=10)
    nb = asn1_time(pki["future-2h"].not_before)
    assert m.group("seen") == f"CN=future-2h.test notBefore={nb}", \
        m.group(0)
    assert "expired" not in m.group(0)


def test_reencrypt_10_022_skew_does_not_forgive_expiry(env, backend,
                                                       module_so, pki):
    """A certificate that ended 7 days ago stays expired under a 30-day
    skew: the skew applies to notBefore only."""
    be = backend("expired")
    start_policy(
        env, be, "ReencryptSNI good.test", "ReencryptClockSkew 30d",
        ca=pki.ca_file, preamble=["SSLProxyCheckPeerExpire Off"])
    m = assert_refused(env, be, "expired")
    na = asn1_time(pki["expired"].not_after)
    assert m.group("seen") == f"CN=expired.test notAfter={na}", m.group(0)


def test_reencrypt_10_023_skew_in_pin_only_trust(env, backend, module_so,
                                                 pki):
    """The skew applies to a pin-only (self-signed) backend as well."""
    leaf = pki.fresh_leaf("self-nb-60s", "self-nb-60s.test",
                          dns=("self.test",), issuer=None,
                          not_before=datetime.timedelta(seconds=60))
    be = backend(leaf)
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI self.test", "ReencryptTrust PinOnly",
        f"ReencryptPin {pki.pin(leaf)} {pki.pin('other-root')}",
        "ReencryptClockSkew 5m",
        preamble=["SSLProxyCheckPeerExpire Off"]) + """
<Location /strict>
    ReencryptClockSkew 30s
</Location>
""")
    env.start()
    m = assert_refused(env, be, "not-yet-valid", path="/strict/x")
    assert m.group("seen") == (
        f"CN=self-nb-60s.test notBefore={asn1_time(pki[leaf].not_before)}")
    assert_served(env, be, "/skew", sni="self.test", ignore_re10=True)
    assert pki[leaf].not_before > _now(), "the test ran too slowly"


def test_reencrypt_10_024_skew_needs_modssl_expiry_check_off(
        env, backend, module_so, pki):
    """Without 'SSLProxyCheckPeerExpire Off', mod_ssl's own check (which
    runs after the module and knows no skew) refuses the not-yet-valid
    certificate the skew let through: 502, and RE00020 says which
    directive to set."""
    leaf = pki.fresh_leaf("nb-60s-modssl", "nb-60s-modssl.test",
                          not_before=datetime.timedelta(seconds=60))
    be = backend(leaf)
    write_lenient_policy(env, be, "ReencryptClockSkew",
                         "ReencryptSNI good.test", "ReencryptClockSkew 5m",
                         ca=pki.ca_file)
    env.expect_log("RE00020", "RE00035", *PROXY_HANDSHAKE_FAILURE_TAGS)
    env.start()
    assert_modssl_refused_lenient(env, be, "/skew-modssl")
    assert pki[leaf].not_before > _now(), "the test ran too slowly"


# ---------------------------------------------------------------- syntax

@pytest.mark.parametrize("directive", DURATION_DIRECTIVES)
@pytest.mark.parametrize("value", ["45s", "15m", "12h", "30d", "90", "0",
                                   "3650d", "315360000"])
def test_reencrypt_10_030_durations_accepted(env, module_so, pki, directive,
                                             value):
    env.write_config(vhost=config_vhost(f"{directive} {value}",
                                        ca=pki.ca_file))
    rc, out = env.configtest()
    assert (rc, "Syntax OK" in out) == (0, True), out


@pytest.mark.parametrize("directive", DURATION_DIRECTIVES)
@pytest.mark.parametrize("value", [
    "-5m", "-1", "5x", "1.5h", "h", "12hh", "5d3h", "+5m", "3651d",
    "87601h", "315360001", "99999999999999999999999",
    "18446744073709551616s"],
    ids=["negative", "negative-bare", "unit", "fraction", "no-number",
         "double-unit", "two-units", "plus", "days-over-max", "hours-over-max",
         "seconds-over-max", "overflow", "overflow-2^64"])
def test_reencrypt_10_031_duration_errors(env, module_so, pki, directive,
                                          value):
    env.write_config(vhost=config_vhost(f"{directive} {value}",
                                        ca=pki.ca_file))
    assert_syntax_error(env, f"{directive} {value}",
                        f"{directive}: '{value}' is not a duration (")
