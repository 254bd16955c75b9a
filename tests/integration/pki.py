"""The test PKI: harness.pki.TestPKI (its docstring lists the files and
certificates)."""

import _repo  # noqa: F401  (puts harness/ on sys.path)
from harness.pki import Issued, PKI, TestPKI, spki_der, spki_pin  # noqa: F401
