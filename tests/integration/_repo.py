"""Puts the repository's top directory on sys.path, so that the harness
package (harness/) imports from the modules of this directory, whoever
imports them (conftest.py, tests/valgrind/drive.py)."""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
