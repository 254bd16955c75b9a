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

"""Check the log message tags of mod_reencrypt's C sources.

Rules:
  - every RELOGNO(...) in the top-level *.c files holds exactly five
    digits;
  - every tag number is used by one call site only;
  - every tag number is lower than the number in the file next-number
    (the next free one);
  - every ap_log_*() call at level debug or above carries a RELOGNO()
    tag; calls at APLOG_TRACE1..8 only may go untagged.

Usage: check_log_tags.py [SOURCE_DIR]   (default: the top of this tree)
Prints one line per failed check and "N passed, M failed" at the end;
exits 1 if a check failed, 2 if the sources cannot be read.
"""

import os
import re
import sys

from guard_result import Result

LEVELS_UNTAGGED = {"APLOG_TRACE%d" % i for i in range(1, 9)}
LEVELS_TAGGED = {"APLOG_EMERG", "APLOG_ALERT", "APLOG_CRIT", "APLOG_ERR",
                 "APLOG_WARNING", "APLOG_NOTICE", "APLOG_INFO",
                 "APLOG_DEBUG"}

RELOGNO_ANY = re.compile(r"\bRELOGNO\s*\(([^)]*)\)")
RELOGNO_OK = re.compile(r"^\d{5}$")
LOG_CALL = re.compile(r"\bap_log_[a-z_]*\s*\(")


def strip_comments_and_strings(src):
    """Return src with comments blanked out and the contents of string
    and character literals replaced by spaces, keeping offsets and line
    numbers. Also returns the text with comments blanked only."""
    code = list(src)
    nocomment = list(src)
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                if src[k] != "\n":
                    code[k] = " "
                    nocomment[k] = " "
            i = j
        elif src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                code[k] = " "
                nocomment[k] = " "
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and src[j] != c and src[j] != "\n":
                j += 2 if src[j] == "\\" else 1
            for k in range(i + 1, min(j, n)):
                code[k] = " "
            i = j + 1
        else:
            i += 1
    return "".join(code), "".join(nocomment)


def call_args(code, start):
    """Given the offset just after the '(' of a call in code (strings
    blanked), return the offset of its matching ')' and the offsets of
    its top-level commas."""
    depth, commas, i = 1, [], start
    while i < len(code):
        c = code[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return i, commas
        elif c == "," and depth == 1:
            commas.append(i)
        i += 1
    return len(code), commas


def line_of(text, offset):
    return text.count("\n", 0, offset) + 1


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    top = argv[1] if len(argv) > 1 else os.path.dirname(os.path.dirname(here))
    res = Result()

    try:
        with open(os.path.join(top, "next-number")) as f:
            next_number = int(f.read().strip())
    except (OSError, ValueError) as e:
        print("cannot read next-number in %s: %s" % (top, e))
        print("0 passed, 1 failed")
        return 2

    sources = sorted(n for n in os.listdir(top) if n.endswith(".c"))
    if not sources:
        print("no *.c files in %s" % top)
        print("0 passed, 1 failed")
        return 2

    seen = {}       # number -> first "file:line"
    calls = 0
    for name in sources:
        with open(os.path.join(top, name), encoding="utf-8",
                  errors="replace") as f:
            src = f.read()
        code, nocomment = strip_comments_and_strings(src)

        # Tags, outside comments (a tag inside a string is not one)
        for m in RELOGNO_ANY.finditer(code):
            where = "%s:%d" % (name, line_of(src, m.start()))
            raw = m.group(1).strip()
            res.check(RELOGNO_OK.match(raw) is not None,
                      "%s: RELOGNO(%s) is not five digits" % (where, raw))
            if not raw.isdigit():
                continue
            number = int(raw)
            res.check(number < next_number,
                      "%s: RELOGNO(%s) is not lower than next-number (%d)"
                      % (where, raw, next_number))
            if number in seen:
                res.check(False, "%s: RELOGNO(%s) already used at %s"
                          % (where, raw, seen[number]))
            else:
                seen[number] = where
                res.check(True, "")

        # Log calls
        for m in LOG_CALL.finditer(code):
            end, commas = call_args(code, m.end())
            where = "%s:%d" % (name, line_of(src, m.start()))
            func = code[m.start():m.end() - 1].strip()
            args = [code[a:b] for a, b in
                    zip([m.end()] + [c + 1 for c in commas],
                        commas + [end])]
            if not args or args[0].strip() != "APLOG_MARK":
                continue            # not a leveled log call
            calls += 1
            level = args[1] if len(args) > 1 else ""
            names = set(re.findall(r"\bAPLOG_[A-Z0-9_]+", level))
            levels = names & (LEVELS_TAGGED | LEVELS_UNTAGGED)
            trace_only = bool(levels) and levels <= LEVELS_UNTAGGED
            if trace_only:
                res.check(True, "")
                continue
            tagged = RELOGNO_ANY.search(code, m.end(), end) is not None
            res.check(tagged, "%s: %s at %s has no RELOGNO() tag"
                      % (where, func,
                         " ".join(level.split()) or "an unknown level"))

    print("%d tags, %d leveled log calls, next-number %d"
          % (len(seen), calls, next_number))
    return res.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
