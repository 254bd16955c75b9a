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

"""Check that the directives of mod_reencrypt and their documentation
agree.

Rules:
  - every directive declared with AP_INIT_*("Name", ...) in the
    top-level *.c files, or as a row X(ID, member, where, kind, "Name",
    ...) of the policy field table REENCRYPT_POLICY_FIELDS in the
    top-level *.h files, has a "## Name" (or "### Name") section in
    docs/directives.md with a Description, a Syntax, a Default and a
    Context line (as "| **Field** | ... |" table rows or "Field: ..."
    lines);
  - every such directive has a <directivesynopsis> with <name>Name</name>
    in docs/mod_reencrypt.xml, with <description>, <syntax> and
    <contextlist>;
  - every directive documented in either file is declared in the code;
  - mod_ssl's directives that the module reads too (declared with names
    starting with "SSL") are no directives of the module: each must be
    named in docs/directives.md's section "mod_ssl's directives read by
    mod_reencrypt" and have a <directivesynopsis location="mod_ssl"> in
    docs/mod_reencrypt.xml, as the Apache manual refers to another
    module's directive.

Usage: check_directive_docs.py [SOURCE_DIR]   (default: top of this tree)
Prints one line per failed check and "N passed, M failed" at the end;
exits 1 if a check failed, 2 if the sources cannot be read.
"""

import os
import re
import sys

from guard_result import Result

FIELDS = ("Description", "Syntax", "Default", "Context")
XML_PARTS = ("description", "syntax", "contextlist")

AP_INIT = re.compile(r"\bAP_INIT_[A-Z0-9_]+\s*\(\s*\"([^\"]+)\"")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
SYNOPSIS = re.compile(
    r"<directivesynopsis(\s[^>]*)?>(.*?)</directivesynopsis>", re.S)
XML_NAME = re.compile(r"<name>\s*([^<\s]+)\s*</name>")
FIELD_TABLE = re.compile(r"^#define REENCRYPT_POLICY_FIELDS\(X\)((?:.*\\\n)*.*)$",
                         re.M)
FIELD_ROW = re.compile(r"\bX\(\s*[A-Z0-9_]+\s*,[^\"]*\"([^\"]+)\"")


def strip_comments(src):
    src = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)),
                 src, flags=re.S)
    return re.sub(r"//[^\n]*", "", src)


def field_re(field):
    # "| **Default** | ... |", "**Default:** ...", "Default: ..."
    return re.compile(r"^\s*\|?\s*(\*\*|__)?%s(\*\*|__)?\s*(\||:|(\*\*|__)?:)"
                      % field + r"|^\s*(\*\*|__)%s:(\*\*|__)" % field)


def code_directives(top):
    found = {}
    for name in sorted(os.listdir(top)):
        if not name.endswith(".c"):
            continue
        with open(os.path.join(top, name), encoding="utf-8",
                  errors="replace") as f:
            src = strip_comments(f.read())
        for m in AP_INIT.finditer(src):
            found.setdefault(m.group(1),
                             "%s:%d" % (name, src.count("\n", 0, m.start())
                                        + 1))
    # the rows of the policy field table, each one directive
    for name in sorted(os.listdir(top)):
        if not name.endswith(".h"):
            continue
        with open(os.path.join(top, name), encoding="utf-8",
                  errors="replace") as f:
            src = strip_comments(f.read())
        for t in FIELD_TABLE.finditer(src):
            for m in FIELD_ROW.finditer(t.group(1)):
                at = t.start(1) + m.start()
                found.setdefault(m.group(1),
                                 "%s:%d" % (name, src.count("\n", 0, at) + 1))
    return found


def md_sections(text):
    """Map "Name" -> list of lines of its "## Name" / "### Name" section
    (up to the next heading of level 1..3)."""
    sections = {}
    current = None
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        m = None if in_fence else HEADING.match(line)
        if m and len(m.group(1)) <= 3:
            current = None
            title = m.group(2).strip().strip("`")
            if len(m.group(1)) in (2, 3) and re.match(r"^[A-Za-z]\w*$",
                                                      title):
                current = title
                sections.setdefault(current, [])
            continue
        if current is not None:
            sections[current].append(line)
    return sections


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    top = argv[1] if len(argv) > 1 else os.path.dirname(os.path.dirname(here))
    res = Result()
    md_path = os.path.join(top, "docs", "directives.md")
    xml_path = os.path.join(top, "docs", "mod_reencrypt.xml")

    try:
        code = code_directives(top)
    except OSError as e:
        print("cannot read the sources in %s: %s" % (top, e))
        print("0 passed, 1 failed")
        return 2
    res.check(bool(code), "no AP_INIT_*(\"Name\", ...) in %s/*.c" % top)
    foreign = {n: w for n, w in code.items() if n.startswith("SSL")}
    code = {n: w for n, w in code.items() if n not in foreign}

    md_text = xml_text = None
    for path in (md_path, xml_path):
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            res.check(False, "cannot read %s: %s" % (path, e))
            continue
        if path == md_path:
            md_text = text
        else:
            xml_text = text

    # docs/directives.md
    sections = md_sections(md_text) if md_text is not None else {}
    md_documented = set()
    for title, lines in sections.items():
        has_syntax = any(field_re("Syntax").search(ln) for ln in lines)
        if has_syntax or title in code:
            md_documented.add(title)
    if md_text is not None:
        for name, where in sorted(code.items()):
            lines = sections.get(name)
            res.check(lines is not None,
                      "%s (%s) has no '## %s' section in docs/directives.md"
                      % (name, where, name))
            if lines is None:
                continue
            for field in FIELDS:
                rx = field_re(field)
                res.check(any(rx.search(ln) for ln in lines),
                          "docs/directives.md: section %s has no %s line"
                          % (name, field))
        for name in sorted(md_documented - set(code)):
            res.check(False, "docs/directives.md documents %s, which the "
                      "code does not declare" % name)
        read = None
        m = re.search(r"^## mod_ssl's directives read by mod_reencrypt\s*$"
                      r"(.*?)(?=^## |\Z)", md_text, re.M | re.S)
        if m:
            read = m.group(1)
        for name, where in sorted(foreign.items()):
            res.check(read is not None and name in read,
                      "%s (%s, mod_ssl's) is not named in docs/directives.md"
                      "'s section \"mod_ssl's directives read by "
                      "mod_reencrypt\"" % (name, where))

    # docs/mod_reencrypt.xml
    if xml_text is not None:
        synopses = {}
        elsewhere = set()
        for m in SYNOPSIS.finditer(xml_text):
            if m.group(1) and "location=" in m.group(1):
                n = XML_NAME.search(m.group(2))
                if n:
                    elsewhere.add(n.group(1))
                continue            # a directive of another module
            n = XML_NAME.search(m.group(2))
            if n:
                synopses.setdefault(n.group(1), m.group(2))
            else:
                res.check(False, "docs/mod_reencrypt.xml: a "
                          "<directivesynopsis> without <name>")
        for name, where in sorted(code.items()):
            body = synopses.get(name)
            res.check(body is not None,
                      "%s (%s) has no <directivesynopsis> with "
                      "<name>%s</name> in docs/mod_reencrypt.xml"
                      % (name, where, name))
            if body is None:
                continue
            for part in XML_PARTS:
                res.check("<%s>" % part in body or "<%s " % part in body,
                          "docs/mod_reencrypt.xml: <directivesynopsis> of "
                          "%s has no <%s>" % (name, part))
        for name in sorted(set(synopses) - set(code)):
            res.check(False, "docs/mod_reencrypt.xml documents %s, which "
                      "the code does not declare" % name)
        for name, where in sorted(foreign.items()):
            res.check(name in elsewhere,
                      "%s (%s, mod_ssl's) has no <directivesynopsis "
                      "location=\"mod_ssl\"> in docs/mod_reencrypt.xml"
                      % (name, where))

    print("%d directives in the code: %s; of mod_ssl's, read too: %s"
          % (len(code), ", ".join(sorted(code)), ", ".join(sorted(foreign))))
    return res.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
