"""Configuration checking: `apache2 -t -f conf` (what apachectl -t runs).

Every invalid directive makes the configuration test fail with a non-zero
exit code, and the message names the file, the line and the bad value.
"""

import grp
import os
import re
import time

import pytest

PROXY = "https://127.0.0.1:9/"   # never contacted: configtest only


def vhost(*directives, engine=True, ca=None):
    lines = ["SSLProxyEngine On"]
    if engine:
        lines.append("ReencryptEngine On")
    if ca:
        lines.append(f'ReencryptCACertificateFile "{ca}"')
    lines += list(directives)
    lines.append(f"ProxyPass / {PROXY}")
    return "\n".join(lines)


def assert_syntax_error(env, needle, *messages):
    """configtest fails; the AH00526 line names file and line of the
    directive containing needle; each of messages appears in the output."""
    rc, out = env.configtest()
    assert rc != 0, f"configtest passed but should fail:\n{out}"
    line = env.line_of(needle)
    head = f"AH00526: Syntax error on line {line} of {env.conf_file}:"
    assert head in out, f"{head!r} not in:\n{out}"
    for msg in messages:
        assert msg in out, f"{msg!r} not in:\n{out}"
    assert "Syntax OK" not in out
    return out


# ---------------------------------------------------------------- valid

def test_reencrypt_01_001_valid_config_syntax_ok(env, module_so, pki):
    """A configuration using every directive in every allowed context
    (server config, virtual host, <Location>, <Proxy>) passes."""
    env.write_config(
        server=f"""
ReencryptEngine Off
ReencryptCACertificateFile "{pki.ca_file}"
ReencryptVerifyDepth 4
ReencryptSNI Backend
""",
        vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ReencryptVerifyDepth 2
ReencryptVerifyName good.test backend.test 127.0.0.1 ::1 [::1]
ReencryptSNI backend.test
ProxyPass / {PROXY}
<Location /a>
    ReencryptEngine On
    ReencryptCACertificateFile "{pki.int_ca_file}"
    ReencryptVerifyDepth 0
    ReencryptVerifyName other.test
    ReencryptSNI Host
</Location>
<Location /b>
    ReencryptEngine Off
    ReencryptVerifyDepth 32
    ReencryptSNI Off
</Location>
<Proxy "{PROXY}*">
    ReencryptEngine On
    ReencryptCACertificateFile "{pki.other_ca_file}"
    ReencryptVerifyName 127.0.0.1
    ReencryptSNI good.test
</Proxy>
""")
    rc, out = env.configtest()
    assert rc == 0, out
    assert "Syntax OK" in out


@pytest.mark.parametrize("sni", ["Backend", "backend", "HOST", "host",
                                 "off", "OFF", "a.wild.test", "x-1.test"])
def test_reencrypt_01_002_sni_keywords_and_names_accepted(
        env, module_so, pki, sni):
    env.write_config(vhost=vhost(f"ReencryptSNI {sni}", ca=pki.ca_file))
    rc, out = env.configtest()
    assert (rc, "Syntax OK" in out) == (0, True), out


def test_reencrypt_01_003_relative_ca_path_is_below_server_root(
        env, module_so, pki):
    """A relative ReencryptCACertificateFile is resolved against
    ServerRoot."""
    os.makedirs(os.path.join(env.root, "conf", "trust"), exist_ok=True)
    with open(pki.ca_file, "rb") as src, \
            open(os.path.join(env.root, "conf", "trust", "ca.pem"),
                 "wb") as dst:
        dst.write(src.read())
    env.write_config(vhost=vhost(ca="conf/trust/ca.pem"))
    rc, out = env.configtest()
    assert (rc, "Syntax OK" in out) == (0, True), out


def test_reencrypt_01_004_anchor_from_enclosing_scope(env, module_so, pki):
    """ReencryptEngine On in a vhost and in a <Location>/<Proxy> takes the
    trust anchors of the enclosing scope (server config)."""
    env.write_config(
        server=f'ReencryptCACertificateFile "{pki.ca_file}"',
        vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ProxyPass / {PROXY}
<Location /x>
    ReencryptEngine On
</Location>
<Proxy "{PROXY}*">
    ReencryptEngine On
</Proxy>
""")
    rc, out = env.configtest()
    assert (rc, "Syntax OK" in out) == (0, True), out


# ---------------------------------------------------------------- depth

def test_reencrypt_01_010_depth_not_an_integer(env, module_so, pki):
    env.write_config(vhost=vhost("ReencryptVerifyDepth ten", ca=pki.ca_file))
    assert_syntax_error(
        env, "ReencryptVerifyDepth ten",
        "ReencryptVerifyDepth: 'ten' is not an integer in 0..32")


@pytest.mark.parametrize("value", ["33", "-1", "3x", "1000000000000"])
def test_reencrypt_01_011_depth_out_of_range_or_junk(
        env, module_so, pki, value):
    env.write_config(vhost=vhost(f"ReencryptVerifyDepth {value}",
                                 ca=pki.ca_file))
    assert_syntax_error(
        env, f"ReencryptVerifyDepth {value}",
        f"ReencryptVerifyDepth: '{value}' is not an integer in 0..32")


# ---------------------------------------------------------------- CA file

def test_reencrypt_01_020_ca_file_missing(env, module_so, pki):
    missing = os.path.join(pki.dir, "nope", "ca.pem")
    env.write_config(vhost=vhost(ca=missing))
    assert_syntax_error(
        env, "ReencryptCACertificateFile",
        f"ReencryptCACertificateFile: cannot read '{missing}' "
        f"(No such file or directory)")


def test_reencrypt_01_021_ca_file_unreadable(env, module_so, pki):
    """A path that cannot be read as a file (a directory: permission bits
    do not stop root, which runs this suite in CI)."""
    unreadable = os.path.join(env.root, "conf")
    env.write_config(vhost=vhost(ca=unreadable))
    out = assert_syntax_error(env, "ReencryptCACertificateFile",
                              "ReencryptCACertificateFile: ",
                              f"'{unreadable}'")
    assert re.search(
        r"ReencryptCACertificateFile: .*'%s'" % re.escape(unreadable), out)


def test_reencrypt_01_022_ca_file_without_certificate(env, module_so, pki):
    env.write_config(vhost=vhost(ca=pki.empty_ca_file))
    assert_syntax_error(
        env, "ReencryptCACertificateFile",
        f"ReencryptCACertificateFile: '{pki.empty_ca_file}' "
        f"contains no PEM certificate")


def test_reencrypt_01_023_ca_file_with_only_a_key(env, module_so, pki):
    """A PEM file holding a private key but no certificate."""
    env.write_config(vhost=vhost(ca=pki.key("good")))
    assert_syntax_error(
        env, "ReencryptCACertificateFile",
        f"ReencryptCACertificateFile: '{pki.key('good')}' "
        f"contains no PEM certificate")


# ---------------------------------------------------------------- SNI

@pytest.mark.parametrize("value", ["bad_name!", "a..b.test",
                                   "x" * 64 + ".test"],
                         ids=["bad-char", "empty-label", "label-64"])
def test_reencrypt_01_030_sni_invalid_name(env, module_so, pki, value):
    env.write_config(vhost=vhost(f"ReencryptSNI {value}", ca=pki.ca_file))
    assert_syntax_error(
        env, f"ReencryptSNI {value}",
        f"ReencryptSNI: '{value}' is not a valid DNS name")


@pytest.mark.parametrize("value", ["192.0.2.1", "127.0.0.1", "::1"])
def test_reencrypt_01_031_sni_ip_literal(env, module_so, pki, value):
    env.write_config(vhost=vhost(f"ReencryptSNI {value}", ca=pki.ca_file))
    assert_syntax_error(
        env, f"ReencryptSNI {value}",
        f"ReencryptSNI: '{value}' is an IP address; SNI carries DNS names "
        f"only (RFC 6066)")


# ---------------------------------------------------------------- names

@pytest.mark.parametrize("value", ["*.example.com", "bad_name!",
                                   "a..example.com",
                                   ("a" * 60 + ".") * 5 + "test"],
                         ids=["wildcard", "bad-char", "empty-label",
                              "longer-than-253"])
def test_reencrypt_01_040_verify_name_invalid(env, module_so, pki, value):
    env.write_config(vhost=vhost(f"ReencryptVerifyName good.test {value}",
                                 ca=pki.ca_file))
    assert_syntax_error(
        env, "ReencryptVerifyName",
        f"ReencryptVerifyName: '{value}' is not a valid host name or "
        f"IP address")


# ---------------------------------------------------------------- engine

def test_reencrypt_01_050_engine_bad_value(env, module_so, pki):
    env.write_config(vhost=vhost("ReencryptEngine maybe", engine=False,
                                 ca=pki.ca_file))
    assert_syntax_error(env, "ReencryptEngine maybe", "ReencryptEngine",
                        "'maybe'")


def _assert_no_anchor(env, needle, rc, out):
    assert rc != 0, out
    line = env.line_of(needle)
    rx = (r"RE00004: ReencryptEngine On at %s:%d (?:\(in [^)]*\) )?has no trust anchors\b.*"
          r": set ReencryptCACertificateFile in this scope or an enclosing "
          r"one" % (re.escape(env.conf_file), line))
    assert re.search(rx, out), f"no RE00004 for line {line} in:\n{out}"
    assert "Syntax OK" not in out


def test_reencrypt_01_060_engine_on_without_anchor(env, module_so):
    env.write_config(vhost=vhost())
    rc, out = env.configtest()
    _assert_no_anchor(env, "ReencryptEngine On", rc, out)


def test_reencrypt_01_061_engine_on_in_location_without_anchor(
        env, module_so, pki):
    """Anchors in a sibling <Location> do not count: only the scope itself
    and the enclosing ones do."""
    env.write_config(vhost=f"""
SSLProxyEngine On
ProxyPass / {PROXY}
<Location /a>
    ReencryptEngine Off
    ReencryptCACertificateFile "{pki.ca_file}"
</Location>
<Location /b>
    ReencryptEngine On
</Location>
""")
    rc, out = env.configtest()
    line = env.line_of("<Location /b>") + 1
    assert env.conf_text.splitlines()[line - 1].strip() == \
        "ReencryptEngine On"
    assert rc != 0, out
    rx = (r"RE00004: ReencryptEngine On at %s:%d (?:\(in [^)]*\) )?has no trust anchors"
          % (re.escape(env.conf_file), line))
    assert re.search(rx, out), out


def test_reencrypt_01_062_engine_on_without_anchor_fails_start(
        env, module_so):
    """The same check refuses to start the server."""
    env.write_config(vhost=vhost())
    rc, out = env.start(check=False)
    _assert_no_anchor(env, "ReencryptEngine On", rc, out)
    assert not env.running


# ------------------------------------------------ ReencryptSessionCacheKey

SESSION_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def _write_key_file(env, text, mode=0o600):
    path = os.path.join(env.root, "conf", "session.key")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def test_reencrypt_01_070_session_cache_key_valid(env, module_so, pki):
    """A key file with a current and an older key passes, and nothing is
    said about a file only its owner reads."""
    path = _write_key_file(env, f"# current\n{SESSION_KEY}\n\n"
                                "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\n")
    env.write_config(server=f'ReencryptSessionCacheKey "{path}"',
                     vhost=vhost(ca=pki.ca_file))
    rc, out = env.configtest()
    assert rc == 0, out
    assert "Syntax OK" in out
    assert "RE00031" not in out


@pytest.mark.parametrize("content,message", [
    ("", "no key in it"),
    ("# only a comment\n", "no key in it"),
    (f"{SESSION_KEY}\nnot-a-key\n",
     "line 2: not the base64 of 32 bytes (make a key with: openssl rand "
     "-base64 32)"),
    ("AAECAwQFBgcICQoLDA0ODw==\n", "line 1: not the base64 of 32 bytes"),
    (f"{SESSION_KEY}\n" * 9, "line 9: more than 8 keys"),
], ids=["empty", "comment-only", "bad-line", "short-key", "nine-keys"])
def test_reencrypt_01_071_session_cache_key_bad_file(env, module_so, pki,
                                                     content, message):
    path = _write_key_file(env, content)
    env.write_config(server=f'ReencryptSessionCacheKey "{path}"',
                     vhost=vhost(ca=pki.ca_file))
    out = assert_syntax_error(env, "ReencryptSessionCacheKey",
                              f"ReencryptSessionCacheKey: '{path}', "
                              f"{message}")
    assert SESSION_KEY not in out and "AAECAwQF" not in out


def test_reencrypt_01_072_session_cache_key_missing_file(env, module_so,
                                                         pki):
    path = os.path.join(env.root, "conf", "no-such.key")
    env.write_config(server=f'ReencryptSessionCacheKey "{path}"',
                     vhost=vhost(ca=pki.ca_file))
    assert_syntax_error(env, "ReencryptSessionCacheKey",
                        f"ReencryptSessionCacheKey: cannot read '{path}' "
                        "(No such file or directory)")


def test_reencrypt_01_073_session_cache_key_not_a_file(env, module_so, pki):
    path = os.path.join(env.root, "conf")
    env.write_config(server=f'ReencryptSessionCacheKey "{path}"',
                     vhost=vhost(ca=pki.ca_file))
    assert_syntax_error(env, "ReencryptSessionCacheKey",
                        f"ReencryptSessionCacheKey: '{path}' is not a "
                        "regular file")


def test_reencrypt_01_074_session_cache_key_in_virtual_host(env, module_so,
                                                            pki):
    path = _write_key_file(env, SESSION_KEY + "\n")
    env.write_config(vhost=vhost(f'ReencryptSessionCacheKey "{path}"',
                                 ca=pki.ca_file))
    assert_syntax_error(env, "ReencryptSessionCacheKey",
                        "ReencryptSessionCacheKey cannot occur within "
                        "<VirtualHost> section")


def test_reencrypt_01_075_session_cache_key_readable_by_all(env, module_so,
                                                            pki):
    """A key file that every user can read: the configuration passes with
    an RE00031 warning, which the running server logs too."""
    path = _write_key_file(env, SESSION_KEY + "\n", mode=0o644)
    env.write_config(server=f'ReencryptSessionCacheKey "{path}"',
                     vhost=vhost(ca=pki.ca_file))
    rc, out = env.configtest()
    assert rc == 0, out
    assert (f"RE00031: ReencryptSessionCacheKey {path} is readable by "
            "every user: make it readable by root only (chmod 600)") in out
    assert "RE00055" not in out     # one warning for the file
    env.expect_log("RE00031")
    env.start()
    assert [ln for ln in env.log_lines() if ln.tag == "RE00031"
            and ln.level == "warn"], env.error_log()


def _group_of_children():
    """The group the server's children run as (httpd.py: nogroup when
    the tests run as root), else the tests' own group."""
    if os.geteuid() == 0:
        return grp.getgrnam("nogroup")
    return grp.getgrgid(os.getegid())


def test_reencrypt_01_076_session_cache_key_readable_by_group(env,
                                                              module_so,
                                                              pki):
    """A key file its group can read (here the group the children run
    as): the configuration passes with an RE00055 warning that names the
    file, its group and its mode and says what to do; the running server
    logs it too. Only the parent reads the file, before it switches to
    its User, so no group needs to."""
    path = _write_key_file(env, SESSION_KEY + "\n", mode=0o640)
    group = _group_of_children()
    os.chown(path, -1, group.gr_gid)
    env.write_config(server=f'ReencryptSessionCacheKey "{path}"',
                     vhost=vhost(ca=pki.ca_file))
    text = (f"RE00055: ReencryptSessionCacheKey {path} is readable by "
            f"group {group.gr_name} (mode 0640): only the server's parent "
            f"process reads it, at start-up, so no group needs to: make it "
            f"readable by its owner only (chmod 600) and owned by root")
    rc, out = env.configtest()
    assert rc == 0, out
    assert text in out, out
    assert "RE00031" not in out
    env.expect_log("RE00055")
    env.start()
    lines = [ln for ln in env.log_lines() if ln.tag == "RE00055"]
    assert lines and all(ln.level == "warn" and ln.rest.endswith(text)
                         for ln in lines), env.error_log()


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_reencrypt_01_077_session_cache_key_owner_only(env, module_so, pki,
                                                       mode):
    """A key file only its owner can read, whatever its group: no
    warning from apachectl -t nor from the running server."""
    path = _write_key_file(env, SESSION_KEY + "\n", mode=mode)
    os.chown(path, -1, _group_of_children().gr_gid)
    env.write_config(server=f'ReencryptSessionCacheKey "{path}"',
                     vhost=vhost(ca=pki.ca_file))
    rc, out = env.configtest()
    assert rc == 0, out
    assert "RE00031" not in out and "RE00055" not in out, out
    env.start()
    assert not [ln for ln in env.log_lines()
                if ln.tag in ("RE00031", "RE00055")], env.error_log()


MEMCACHE_MODULE = ('LoadModule socache_memcache_module '
                   '"/usr/lib/apache2/modules/mod_socache_memcache.so"')


REDIS_MODULE = ('LoadModule socache_redis_module '
                '"/usr/lib/apache2/modules/mod_socache_redis.so"')
DBM_MODULE = ('LoadModule socache_dbm_module '
              '"/usr/lib/apache2/modules/mod_socache_dbm.so"')
SEALING_ERROR = ("a session cache outside this machine's shared memory "
                 "must be sealed: set 'ReencryptSessionCacheKey <file>' with "
                 "a key the servers sharing the cache hold (see "
                 "docs/sessions.md), or 'ReencryptSessionCacheKey none' to "
                 "trust whatever the cache holds")


@pytest.mark.parametrize("cache,key,outcome", [
    ("memcache:10.0.5.21:11211", None, "refused"),
    ("memcache:127.0.0.1:11211", None, "refused"),
    ("memcache:localhost:11211", None, "refused"),
    ("redis:127.0.0.1:6379", None, "refused"),
    ("memcache:127.0.0.1:11211", "file", "ok"),
    ("redis:127.0.0.1:6379", "file", "ok"),
    ("memcache:127.0.0.1:11211", "none", "warned"),
    ("redis:127.0.0.1:6379", "NONE", "warned"),
    ("shmcb", None, "ok"),
    (None, None, "ok"),
    ("dbm:cache/sessions", None, "ok"),
    ("shmcb", "none", "ok"),
], ids=["memcache-remote", "memcache-loopback", "memcache-localhost",
        "redis", "memcache-sealed", "redis-sealed", "memcache-none",
        "redis-none", "shmcb", "default", "dbm", "shmcb-none"])
def test_reencrypt_01_080_network_session_cache_must_be_sealed(
        env, module_so, pki, cache, key, outcome):
    """A session cache that others can reach (memcache, redis, even on
    loopback, where every local user can write to it) must be sealed:
    without ReencryptSessionCacheKey apachectl -t fails with RE00033,
    which names the cache and both ways out; 'ReencryptSessionCacheKey
    none' is the explicit choice to trust it, said by RE00034; shared
    memory and a dbm file need no key."""
    server = [MEMCACHE_MODULE, REDIS_MODULE, DBM_MODULE]
    if cache:
        server.append(f"ReencryptSessionCache {cache}")
    if key == "file":
        path = _write_key_file(env, SESSION_KEY + "\n")
        server.append(f'ReencryptSessionCacheKey "{path}"')
    elif key:
        server.append(f"ReencryptSessionCacheKey {key}")
    env.write_config(server="\n".join(server), vhost=vhost(ca=pki.ca_file))
    rc, out = env.configtest()
    if outcome == "refused":
        assert rc != 0, out
        assert (f"RE00033: ReencryptSessionCache {cache}: {SEALING_ERROR}"
                in out), out
        return
    assert rc == 0, out
    assert "RE00033" not in out, out
    if outcome == "warned":
        assert (f"RE00034: ReencryptSessionCacheKey none: backend sessions "
                f"in ReencryptSessionCache {cache} are stored and used "
                "unsealed") in out, out
    else:
        assert "RE00034" not in out, out


def test_reencrypt_01_081_unsealed_cache_warned_at_every_start(
        env, module_so, pki):
    """'ReencryptSessionCacheKey none' with memcache: the server starts,
    and says at every start, and after a graceful restart, what it
    trusts."""
    env.write_config(server="\n".join([
        MEMCACHE_MODULE, "ReencryptSessionCache memcache:127.0.0.1:9",
        "ReencryptSessionCacheKey none"]), vhost=vhost(ca=pki.ca_file))
    env.expect_log("RE00034")
    env.start()
    env.wait_log("RE00034")
    assert len(env.lines_with("RE00034")) == 1, env.error_log()
    env.graceful()
    assert len(env.lines_with("RE00034")) == 2, env.error_log()


def test_reencrypt_01_082_session_cache_key_set_twice(env, module_so, pki):
    """ReencryptSessionCacheKey twice (a file and none, or two files) is
    a configuration error that names the first value: one file holds
    every key."""
    path = _write_key_file(env, SESSION_KEY + "\n")
    env.write_config(server="\n".join([
        f'ReencryptSessionCacheKey "{path}"', "ReencryptSessionCacheKey none"]),
        vhost=vhost(ca=pki.ca_file))
    rc, out = env.configtest()
    assert rc != 0, out
    assert (f"ReencryptSessionCacheKey: already set to '{path}'; one key "
            "file holds every key (up to 8)") in out, out


def test_reencrypt_01_090_scopes_share_one_anchor_store(env, module_so, pki):
    """1,000 <Proxy> scopes that name the same trust anchor file, and 2
    that name another: the files are loaded once each, and every scope
    shares its file's store; the second reading of the configuration at
    start keeps both stores of the first (RE00092 at start, LogLevel
    debug: 1,002 directives, 2 files, 2 kept). Their ReencryptPin lines,
    two different ones, make 2 pin sets. A graceful restart keeps
    both again; after one file's modification time changed, only the
    other one is kept (a file is kept when its path, size, modification
    time and SHA-256 are the same)."""
    sections = []
    pins = f"{pki.pin('good')} {pki.pin('wild')}"
    for i in range(1000):
        sections.append(f'<Proxy "https://127.2.{i // 250}.{i % 250 + 1}/">\n'
                        f'    ReencryptEngine On\n'
                        f'    ReencryptCACertificateFile "{pki.ca_file}"\n'
                        f'    ReencryptPin {pins}\n'
                        f'</Proxy>')
    for i in range(2):
        sections.append(f'<Proxy "https://127.3.0.{i + 1}/">\n'
                        f'    ReencryptEngine On\n'
                        f'    ReencryptCACertificateFile '
                        f'"{pki.other_ca_file}"\n'
                        f'    ReencryptPin {pki.pin("deep")} {pki.pin("ip")}\n'
                        f'</Proxy>')
    env.write_config(vhost="SSLProxyEngine On\n" + "\n".join(sections),
                     loglevel="warn reencrypt:debug")
    env.start()
    want = ("RE00092: trust anchors: 1002 ReencryptCACertificateFile "
            "directives share 2 files (2 kept from the previous reading of "
            "the configuration); pins: 1002 ReencryptPin directives share 2 "
            "pin sets")
    m = env.wait_log(r"RE00092: .*$")
    assert m.group(0) == want, env.error_log()
    for n, kept in ((2, 2), (3, 1)):
        if kept == 1:
            st = os.stat(pki.ca_file)
            os.utime(pki.ca_file, (st.st_atime, st.st_mtime + 10))
        env.graceful()
        deadline = time.monotonic() + 10
        while (len(env.lines_with("RE00092")) < n
               and time.monotonic() < deadline):
            time.sleep(0.05)  # polling interval, bounded by the deadline
        lines = env.lines_with("RE00092")
        assert len(lines) == n, env.error_log()
        assert lines[-1].raw.endswith(want.replace(
            "(2 kept", f"({kept} kept")), env.error_log()


def _module_address(env):
    """Where the parent process has mod_reencrypt mapped (its first line
    in /proc/<pid>/maps)."""
    with open(f"/proc/{env.pid}/maps") as f:
        for ln in f:
            if ln.rstrip().endswith(env.module):
                return ln.split("-")[0]
    raise AssertionError(f"{env.module} not mapped in pid {env.pid}")


def test_reencrypt_01_091_kept_files_outlive_the_module_address(
        env, backend, pki, module_so):
    """httpd unloads the module when it clears its configuration and
    loads it again for the next reading, at another address when the
    modules loaded before it change. The copies of trust anchor and CRL
    files kept from one reading to the next must not point into the
    module as it was mapped then. Four graceful restarts, each changing
    both files (the kept copies are replaced and freed) and loading the
    module first, then last: the same parent process serves through the
    policy after each, and the module did move. (When a kept copy freed
    itself through a cleanup of the module's, the first restart killed
    the parent: a call to the module's old address.) Then a reading
    without the CRL file, which frees its kept copy, and one with it
    again. Under make check-asan the module does not move; the run
    checks the same restarts for use after free."""
    from checks import assert_served, policy_vhost
    be = backend("good")
    ca = os.path.join(pki.dir, "anchors-01-091.pem")
    with open(pki.ca_file) as src, open(ca, "w") as dst:
        dst.write(src.read())
    crl = pki.crl("crl-01-091.pem")
    vh = policy_vhost(be.url_ip, f'ReencryptCARevocationFile "{crl}"',
                      "ReencryptRevocationCheck Leaf",
                      "ReencryptSNI good.test", ca=ca)
    env.write_config(vhost=vh, reencrypt="after")
    env.start()
    assert_served(env, be)
    parent = env.pid
    addresses = {_module_address(env)}
    with open(pki.other_ca_file) as f:
        other_ca = f.read()
    for i, order in enumerate(("before", "after", "before", "after")):
        with open(ca, "a") as f:
            f.write(other_ca)           # another size: parsed anew
        pki.crl("crl-01-091.pem", serials=range(1000, 1001 + i))
        env.write_config(vhost=vh, reencrypt=order)
        env.graceful()
        assert env.pid == parent, env.error_log()
        addresses.add(_module_address(env))
        assert_served(env, be)
    # a reading that no longer names the CRL file frees its kept copy;
    # the next one that names it again reads it anew
    for order, directives in (("before", [d for d in vh.split("\n")
                                          if "Revocation" not in d]),
                              ("after", vh.split("\n"))):
        env.write_config(vhost="\n".join(directives), reencrypt=order)
        env.graceful()
        assert env.pid == parent, env.error_log()
        addresses.add(_module_address(env))
        assert_served(env, be)
    if os.environ.get("REENCRYPT_APACHE_PRELOAD"):
        # under the sanitizers' preloaded runtime the instrumented module
        # (several MB) lands at one address every time; what this run
        # adds is AddressSanitizer watching the kept copies being
        # replaced and freed
        return
    assert len(addresses) > 1, (
        f"the module never moved ({addresses}): this test shows nothing")
