"""Checks of the harness itself: what its error-log guard refuses.

A child process that dies of a signal httpd did not send (a crash) is
logged by the parent at notice level (AH00051 / AH00052), a level that
LogLevel cannot hide and that the guard refuses like a warn/error line:
a test whose server lost a child to SIGSEGV, SIGBUS or SIGABRT fails even
if every response it checked looked right.
"""

import os
import signal

from checks import (assert_served, start_policy)


def test_reencrypt_20_001_guard_refuses_a_crashed_child(env, backend, pki,
                                                         module_so):
    be = backend("good")
    start_policy(env, be, "ReencryptSNI good.test", ca=pki.ca_file)
    assert_served(env, be)
    children = env.children()
    assert len(children) == 1, children
    # SIGABRT: what a failed assertion or a detected heap corruption
    # (glibc's "free(): invalid pointer") ends a process with
    os.kill(children[0], signal.SIGABRT)
    m = env.wait_log(rf"(AH0005[12]): child pid {children[0]} exit signal")
    bad = env.unexpected_log_lines()
    assert len(bad) == 1 and m.group(1) in bad[0], bad
    # the parent replaces the child, which serves again
    assert_served(env, be)
    # declared, the line no longer fails this test
    env.expect_log(m.group(1))
    assert env.unexpected_log_lines() == []
