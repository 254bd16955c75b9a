"""The demo's test PKI, private Apache instances and log reading:
demo/reencrypt-demo runs ``python3 -m harness.demo COMMAND`` once the
packages are installed and the module is built and installed.

  preflight            stop a demo that runs; fail if a port is taken
  start --module PATH  preflight, the PKI, the three instances on
                       127.0.0.1, and what they show: (a) the real
                       backend, (b) the impostor refused, (c) the impostor
                       without the policy, the status counters
  stop                 stop the three instances
  status               say which instances run (exit 3 if one does not)

Environment: REENCRYPT_DEMO_DIR (default /tmp/reencrypt-demo) and
REENCRYPT_DEMO_{FRONTEND,BACKEND,IMPOSTOR}_PORT (18080, 18443, 18444);
stop and status use the ports the running demo was started with.
"""

import argparse
import datetime
import os
import re
import shutil
import sys

from harness import HarnessError, logs, net, poll
from harness.apache import APACHE2, Apache

PROG = "reencrypt-demo"
WORK = os.environ.get("REENCRYPT_DEMO_DIR") or "/tmp/reencrypt-demo"
BACKEND_NAME = "backend.demo.test"
INSTANCES = ("backend", "impostor", "frontend")
DEFAULT_PORTS = {"frontend": 18080, "backend": 18443, "impostor": 18444}


def say(*a):
    print(*a, flush=True)


def step(text):
    say(f"\n== {text}")


def die(msg):
    sys.stdout.flush()
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def indent(text):
    return "\n".join("    " + line for line in text.split("\n"))


# ------------------------------------------------------------------ ports

def ports_from_environment():
    return {name: int(os.environ.get(f"REENCRYPT_DEMO_{name.upper()}_PORT")
                      or port) for name, port in DEFAULT_PORTS.items()}


def save_ports(ports):
    with open(os.path.join(WORK, "ports"), "w") as f:
        f.write("".join(f"{n} {ports[n]}\n" for n in DEFAULT_PORTS))


def load_ports():
    """The ports the running demo was started with (stop, status)."""
    ports = ports_from_environment()
    try:
        with open(os.path.join(WORK, "ports")) as f:
            for line in f:
                name, _, port = line.strip().partition(" ")
                if name in ports and port.isdigit():
                    ports[name] = int(port)
    except OSError:
        pass
    return ports


# -------------------------------------------------------------- instances

class DemoApache(Apache):
    """A demo instance: WORK/<name>/httpd.conf, logs/error.log,
    logs/access.log, run/httpd.pid."""

    def __init__(self, name, port, create=False):
        root = os.path.join(WORK, name)
        if create:
            shutil.rmtree(root, ignore_errors=True)
        super().__init__(
            root, port, name, conf_file=os.path.join(root, "httpd.conf"),
            error_log_file=os.path.join(root, "logs", "error.log"),
            access_log_file=os.path.join(root, "logs", "access.log"),
            dirs=("logs", "run", "htdocs"), create=create)

    def head(self, server_name, modules=(), loglevel="warn"):
        r = self.root
        return super().head(
            server_name, ("mpm_event", "authz_core", "socache_shmcb", "ssl")
            + tuple(modules), loglevel, [f"{self.port} https"], threads=16,
            min_spare=4, comment=f'{PROG}: private instance "{self.name}"'
        ) + f"""
LogFormat "%h %t \\"%r\\" %>s %b" demo
CustomLog "{self.access_log_file}" demo
SSLSessionCache "shmcb:{r}/run/ssl_scache(512000)"
"""


def write_pki():
    """The demo's PKI (python3-cryptography): a root CA, the backend's
    and the frontend's certificates from it, an impostor CA and its
    certificate for the backend's name; valid for 30 days."""
    from harness.pki import PKI
    d = os.path.join(WORK, "pki")
    shutil.rmtree(d, ignore_errors=True)
    pki = PKI(d)
    valid = {"not_before": pki.now,
             "not_after": pki.now + datetime.timedelta(days=30)}
    pki.ca("ca", "Demo Root CA", **valid)
    pki.leaf("backend", BACKEND_NAME, "ca", dns=(BACKEND_NAME,), **valid)
    pki.leaf("frontend", "frontend.demo.test", "ca",
             dns=("frontend.demo.test",), ips=("127.0.0.1",), **valid)
    pki.ca("impostor-ca", "Impostor Root CA", **valid)
    pki.leaf("impostor", BACKEND_NAME, "impostor-ca", dns=(BACKEND_NAME,),
             **valid)
    say(f"{d}/ca.crt          Demo Root CA (the frontend's trust anchor)")
    say(f"{d}/backend.crt     CN={BACKEND_NAME}, issued by Demo Root CA")
    say(f"{d}/impostor.crt    CN={BACKEND_NAME}, issued by Impostor Root CA")
    say(f"{d}/frontend.crt    CN=frontend.demo.test, for the client side")
    return pki


def write_backend(inst, pki, body):
    with open(os.path.join(inst.root, "htdocs", "index.txt"), "w") as f:
        f.write(body + "\n")
    inst.write(inst.head(BACKEND_NAME, ["mime", "dir"], "info") + f"""
TypesConfig /dev/null
AddType text/plain .txt
DirectoryIndex index.txt
DocumentRoot "{inst.root}/htdocs"
<Directory "{inst.root}/htdocs">
    Require all granted
</Directory>

SSLEngine on
SSLCertificateFile {pki[inst.name].cert_file}
SSLCertificateKeyFile {pki[inst.name].key_file}
""")


def write_frontend(inst, pki, ports, module):
    be, imp = ports["backend"], ports["impostor"]
    inst.write(inst.head("frontend.demo.test",
                         ["proxy", "proxy_http", "slotmem_shm",
                          "authz_host", ("reencrypt", module)],
                         "warn reencrypt:debug") + f"""
# client side
SSLEngine on
SSLCertificateFile {pki['frontend'].cert_file}
SSLCertificateKeyFile {pki['frontend'].key_file}

# backend side, as in the article
SSLProxyEngine On
ProxyPreserveHost On
ProxyPass        /app/      https://127.0.0.1:{be}/
ProxyPassReverse /app/      https://127.0.0.1:{be}/
ProxyPass        /impostor/ https://127.0.0.1:{imp}/
ProxyPassReverse /impostor/ https://127.0.0.1:{imp}/

# the backend policy
ReencryptEngine On
ReencryptCACertificateFile {pki['ca'].cert_file}
ReencryptSNI {BACKEND_NAME}
ReencryptVerifyName {BACKEND_NAME}

# the same impostor without the policy: mod_ssl alone, as in the article
<Location "/unchecked/">
    ProxyPass https://127.0.0.1:{imp}/
    ReencryptEngine Off
</Location>

# the backend certificates and counters, for this machine only
<Location "/reencrypt-status">
    SetHandler reencrypt-status
    Require ip 127.0.0.1
</Location>
""")


def start_instance(inst):
    rc, out = inst.configtest()
    if rc != 0:
        print(out.rstrip("\n"), file=sys.stderr)
        die(f"configuration of {inst.name} is not accepted: "
            f"{inst.conf_file}")
    try:
        inst.start()
    except HarnessError as e:
        print(str(e).rstrip("\n"), file=sys.stderr)
        die(f"{inst.name} did not start or does not listen on "
            f"127.0.0.1:{inst.port}")
    say(f"{inst.name:<9} https://127.0.0.1:{inst.port:<6} pid "
        f"{inst.pid or '?'}  {inst.conf_file}")


# --------------------------------------------------------------- commands

def cmd_preflight():
    ports = ports_from_environment()
    if any(DemoApache(n, p).pid for n, p in load_ports().items()):
        say("stopping the demo that is already running")
        cmd_stop()
    for name in INSTANCES:
        if net.listening(ports[name]):
            die(f"port 127.0.0.1:{ports[name]} (for {name}) is in use; set "
                f"REENCRYPT_DEMO_{name.upper()}_PORT to a free port")
    return ports


def first_line(path, pattern):
    """The first line of a log holding pattern, waiting 5 s at most."""
    rx = re.compile(re.escape(pattern))
    return poll(lambda: next((ln for ln in logs.read(path).splitlines()
                              if rx.search(ln)), None), 5.0, 0.1)


def fetch(port, path, host=None, sni=None):
    """(status, body) of a GET; status "000" when nothing answered."""
    try:
        r = net.request(port, path, host=host or f"127.0.0.1:{port}",
                        sni=sni, timeout=10)
    except OSError:
        return "000", ""
    return str(r.status), r.text[:-1] if r.text.endswith("\n") else r.text


def shown(port, path, want, body=True):
    """GET path, print the status (and the body); True if it is want."""
    status, text = fetch(port, path)
    say(f"    HTTP {status}")
    if body:
        say(indent(text))
    if status != want:
        say(f"    expected {want}")
    return status == want


def show_line(path, pattern, title):
    """Print the first line of a log holding pattern under title; True if
    there is one."""
    line = first_line(path, pattern)
    if line:
        say(f"    {title}:")
        say(indent(line))
    return bool(line)


def cmd_start(module, prog):
    ports = cmd_preflight()
    failed = False

    step("3. test PKI (python3-cryptography)")
    save_ports(ports)
    pki = write_pki()

    step(f"4. Apache instances on 127.0.0.1 (private, {APACHE2} -f ...)")
    inst = {n: DemoApache(n, ports[n], create=True) for n in INSTANCES}
    write_backend(inst["backend"], pki,
                  f"Hello from {BACKEND_NAME}, the real backend "
                  f"(127.0.0.1:{ports['backend']}).")
    write_backend(inst["impostor"], pki,
                  f"Hello from the impostor (127.0.0.1:{ports['impostor']}),"
                  f" certificate from Impostor Root CA.")
    write_frontend(inst["frontend"], pki, ports, module)
    for name in INSTANCES:
        start_instance(inst[name])
    fe = inst["frontend"]
    flog = fe.error_log_file
    say("")
    say(f"frontend policy ({fe.conf_file}):")
    for line in fe.conf_text.splitlines():
        if re.match(r"(SSLProxyEngine|ProxyPreserveHost|ProxyPass |Reencrypt)",
                    line):
            say(indent(line))

    fport = ports["frontend"]
    step(f"(a) the real backend: curl -sk https://127.0.0.1:{fport}/app/")
    failed |= not shown(fport, "/app/", "200")
    show_line(flog, "RE00014",
              "frontend error log (LogLevel reencrypt:debug)")

    step(f"(b) the impostor: curl -sk https://127.0.0.1:{fport}/impostor/")
    failed |= not shown(fport, "/impostor/", "502", body=False)
    if not show_line(flog, "RE00010", "frontend error log"):
        say(f"    no RE00010 line in {flog}")
        failed = True
    imp = inst["impostor"]
    requests = sum('"GET ' in ln for ln in
                   logs.read(imp.access_log_file).splitlines())
    say(f"    requests received by the impostor: {requests}")
    if requests:
        failed = True
    show_line(imp.error_log_file, "alert",
              "impostor error log (LogLevel info)")

    step("(c) the impostor without the policy, as in the article")
    say(f"    curl -sk --resolve {BACKEND_NAME}:{fport}:127.0.0.1 "
        f"https://{BACKEND_NAME}:{fport}/unchecked/")
    status, body = fetch(fport, "/unchecked/",
                         host=f"{BACKEND_NAME}:{fport}", sni=BACKEND_NAME)
    say(f"    HTTP {status}")
    say(indent(body))
    say("    (mod_ssl alone: SSLProxyVerify defaults to none, so the chain is")
    say("    not verified; only the name, taken from the client's Host, is)")

    say("")
    say(f"status: https://127.0.0.1:{fport}/reencrypt-status (and ?json, "
        f"?prometheus)")
    _, body = fetch(fport, "/reencrypt-status?prometheus")
    for line in body.splitlines():
        if re.match(r"reencrypt_(handshakes|refusals)_total", line) \
                and not line.endswith(" 0"):
            say(indent(line))
    say(f"logs:   {WORK}/{{frontend,backend,impostor}}/logs/")
    say(f"stop:   {prog} stop")
    if failed:
        die(f"the demo did not behave as expected (see above and {flog})")


def cmd_stop():
    ports = load_ports()
    for name in ("frontend", "impostor", "backend"):
        inst = DemoApache(name, ports[name])
        pid = inst.stop()
        if pid is None:
            try:
                os.unlink(inst.pid_file)
            except OSError:
                pass
        else:
            say(f"stopped {name} (pid {pid})")


def cmd_status():
    rc = 0
    ports = load_ports()
    for name in INSTANCES:
        inst = DemoApache(name, ports[name])
        pid = inst.pid
        if pid:
            say(f"{name:<9} running  pid {pid:<7} https://127.0.0.1:"
                f"{inst.port}  {inst.error_log_file}")
        else:
            say(f"{name:<9} stopped")
            rc = 3
    return rc


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m harness.demo")
    ap.add_argument("command",
                    choices=("preflight", "start", "stop", "status"))
    ap.add_argument("--module", help="mod_reencrypt.so to load (start)")
    ap.add_argument("--prog", default="demo/reencrypt-demo",
                    help="how to name the script in 'stop:' (start)")
    args = ap.parse_args(argv)
    if args.command == "preflight":
        cmd_preflight()
    elif args.command == "start":
        if not args.module:
            ap.error("start needs --module")
        cmd_start(args.module, args.prog)
    elif args.command == "stop":
        cmd_stop()
    else:
        return cmd_status()
    return 0


if __name__ == "__main__":
    sys.exit(main())
