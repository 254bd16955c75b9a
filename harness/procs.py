"""Processes: is a pid alive, its children, who the children of a
server started as root run as."""

import grp
import os
import pwd


def is_root():
    return os.geteuid() == 0


def nobody_group():
    """The group an unprivileged server child runs as: nogroup, or the
    primary group of nobody."""
    try:
        grp.getgrnam("nogroup")
        return "nogroup"
    except KeyError:
        return grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name


def _stat_fields(pid):
    """The fields of /proc/<pid>/stat after the command name, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def pid_alive(pid):
    """pid runs (a zombie does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def children(ppid):
    """The live direct children of ppid (an httpd's children, an nginx's
    workers)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        fields = _stat_fields(d)
        if fields and int(fields[1]) == ppid and fields[0] not in ("Z", "X"):
            out.append(int(d))
    return out


def process_tree(ppid):
    """ppid and its live direct children."""
    return [ppid] + children(ppid)


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""
