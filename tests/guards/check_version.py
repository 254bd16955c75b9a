#!/usr/bin/python3
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""Check that the version is written in one place only.

The version of mod_reencrypt is REENCRYPT_VERSION in reencrypt_version.h;
configure.ac reads it from there (AC_INIT), and so do the module and
reencrypt-pin. The Debian package cannot read it: its version is the
first entry of debian/changelog, which must agree.

Rules:
  - reencrypt_version.h defines REENCRYPT_VERSION once, as "X.Y.Z";
  - configure.ac takes its version from reencrypt_version.h, not a
    literal;
  - the first entry of debian/changelog is for the source package
    libapache2-mod-reencrypt, and its version, without an epoch and
    without a Debian revision, is REENCRYPT_VERSION; with the native
    source format (debian/source/format "3.0 (native)") it has no
    revision at all.

Usage: check_version.py [SOURCE_DIR]   (default: top of this tree)
Prints one line per failed check and "N passed, M failed" at the end;
exits 1 if a check failed, 2 if a file cannot be read.
"""

import os
import re
import sys

from guard_result import Result

SOURCE = "libapache2-mod-reencrypt"
DEFINE = re.compile(r'^#define\s+REENCRYPT_VERSION\s+"([^"]*)"\s*$', re.M)
# the first line of a changelog entry: "source (version) dists; urgency=..."
ENTRY = re.compile(r"^(\S+) \(([^()\s]+)\) [^;]+;")


def read(top, name):
    with open(os.path.join(top, name), encoding="utf-8") as f:
        return f.read()


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..")
    try:
        header = read(top, "reencrypt_version.h")
        configure = read(top, "configure.ac")
        changelog = read(top, os.path.join("debian", "changelog"))
        source_format = read(top, os.path.join("debian", "source",
                                               "format")).strip()
    except OSError as e:
        print("cannot read the sources: %s" % e)
        return 2

    r = Result()
    defines = DEFINE.findall(header)
    r.check(len(defines) == 1,
            "reencrypt_version.h: REENCRYPT_VERSION defined %d times, "
            "expected once" % len(defines))
    version = defines[0] if defines else ""
    r.check(re.fullmatch(r"\d+\.\d+\.\d+", version) is not None,
            "reencrypt_version.h: REENCRYPT_VERSION %r is not X.Y.Z"
            % version)

    m = re.search(r"AC_INIT\(\s*\[mod_reencrypt\]\s*,\s*([^,]*),", configure)
    r.check(m is not None and "reencrypt_version.h" in m.group(1),
            "configure.ac: AC_INIT does not read its version from "
            "reencrypt_version.h")

    first = next((line for line in changelog.splitlines() if line.strip()),
                 "")
    m = ENTRY.match(first)
    r.check(m is not None,
            "debian/changelog: first line %r is not 'source (version) "
            "distribution; urgency=...'" % first)
    if m:
        source, full = m.group(1), m.group(2)
        r.check(source == SOURCE,
                "debian/changelog: source package %r, expected %r"
                % (source, SOURCE))
        upstream = full.split(":", 1)[-1]
        native = source_format == "3.0 (native)"
        if native:
            r.check("-" not in upstream,
                    "debian/changelog: version %s has a Debian revision, "
                    "but debian/source/format is %r"
                    % (full, source_format))
        upstream = upstream.rsplit("-", 1)[0]
        r.check(upstream == version,
                "debian/changelog: version %s, but REENCRYPT_VERSION in "
                "reencrypt_version.h is %s: add a debian/changelog entry "
                "for %s (dch -v %s%s)"
                % (full, version, version, version,
                   "" if native else "-1"))
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
