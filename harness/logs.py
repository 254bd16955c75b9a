"""Apache error logs: lines, their levels and message tags; reading,
polling and summarising log files."""

import os
import re

from harness import HarnessError, poll

LOG_LINE_RE = re.compile(
    r"^\[(?P<date>[^\]]+)\] \[(?:(?P<module>[^:\]\s]+):)?"
    r"(?P<level>emerg|alert|crit|error|warn|notice|info|debug|trace\d)\]"
    r"(?P<rest>.*)$")
TAG_RE = re.compile(r"\b((?:AH|RE)\d{5})\b")

# the levels of a line that tells of a problem
GUARDED_LEVELS = ("emerg", "alert", "crit", "error", "warn")
# notice lines that tell of one too: httpd logs a process killed by a
# signal it did not send itself (a crash: SIGSEGV, SIGBUS, SIGABRT, ...)
# at notice level, which LogLevel cannot hide
GUARDED_NOTICES = (
    "AH00051",  # child pid N exit signal S, possible coredump in DIR
    "AH00052",  # child pid N exit signal S
    "AH00060",  # seg fault or similar nasty error detected in the parent
)

# what a sanitizer writes to stderr (the error log) when it cannot write
# its report file
SANITIZER_LINE_RE = re.compile(
    r"(Sanitizer|: runtime error: |ERROR: Can't open file: )")


class LogLine:
    def __init__(self, raw, m):
        self.raw = raw
        self.module = m.group("module")
        self.level = m.group("level")
        self.rest = m.group("rest")
        t = TAG_RE.search(self.rest)
        self.tag = t.group(1) if t else None

    @property
    def message(self):
        """The text after the [pid] / [client] / tag prefixes."""
        return self.rest

    @property
    def crash(self):
        """A child or the parent died of a signal httpd did not send."""
        return self.tag in GUARDED_NOTICES

    @property
    def problem(self):
        """At warn level or above, or a crash."""
        return self.level in GUARDED_LEVELS or self.crash

    def __repr__(self):
        return self.raw


def parse(text):
    """The LogLines of an error log's text (other lines are left out)."""
    out = []
    for raw in text.splitlines():
        m = LOG_LINE_RE.match(raw)
        if m:
            out.append(LogLine(raw, m))
    return out


def read(path):
    """The text of a log file ("" while it does not exist)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def tail(path, n=15):
    return "".join(read(path).splitlines(keepends=True)[-n:])


def wait_match(path, regex, timeout=5.0):
    """Poll the file until regex (re.M) matches its text; return the
    match (HarnessError, with the text, if none within timeout)."""
    rx = re.compile(regex, re.M)
    m = poll(lambda: rx.search(read(path)), timeout)
    if m is None:
        raise HarnessError(f"no line of {path} matches {regex!r} within "
                           f"{timeout}s:\n{read(path)}")
    return m


def wait_lines(path, count, timeout=5.0):
    """Poll the file until it holds at least count lines; return them
    all.  httpd writes an access-log line after the response, so a client
    may see the response first."""
    def enough():
        lines = read(path).splitlines()
        return (lines,) if len(lines) >= count else None
    got = poll(enough, timeout)
    if got is None:
        have = read(path).splitlines()
        raise HarnessError(f"{path} has {len(have)} lines after {timeout}s, "
                           f"expected {count}:\n" + "\n".join(have))
    return got[0]


class LogCursor:
    """Reads what was appended to a log file since the last mark."""

    def __init__(self, path):
        self.path = path
        self.offset = 0

    def size(self):
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def mark(self):
        self.offset = self.size()

    def read(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        # only whole lines; a partial last line is read next time
        cut = data.rfind(b"\n") + 1
        self.offset += cut
        return data[:cut].decode("utf-8", "replace").splitlines()


def problem_key(raw, untagged=None):
    """For an error-log line at warn or above, or telling of a crash:
    ("<level> <tag>", crashed), the level "notice" for a crash line; the
    tag is the AH/RE tag or, for an untagged line, untagged (default: the
    first 60 characters of the message).  None for any other line."""
    m = LOG_LINE_RE.match(raw)
    crashed = "exit signal" in raw or (m is not None and
                                       LogLine(raw, m).crash)
    if not crashed and (m is None or m.group("level") not in GUARDED_LEVELS):
        return None
    level = m.group("level") if m and m.group("level") in GUARDED_LEVELS \
        else "notice"
    t = TAG_RE.search(raw)
    what = t.group(1) if t else (
        untagged if untagged is not None
        else raw.split("]")[-1].strip()[:60])
    return f"{level} {what}", crashed


def summarize(path):
    """Lines at warn or above and crashes of a log file, by key (see
    problem_key; "CRASH " before a crash's): ({key: count},
    {key: first line})."""
    counts, samples = {}, {}
    for raw in read(path).splitlines():
        found = problem_key(raw)
        if found is None:
            continue
        key = ("CRASH " if found[1] else "") + found[0]
        counts[key] = counts.get(key, 0) + 1
        samples.setdefault(key, raw.strip())
    return counts, samples
