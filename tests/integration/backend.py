"""The recording TLS backend: harness.backend.TLSBackend."""

import _repo  # noqa: F401  (puts harness/ on sys.path)
from harness.backend import Connection, TLSBackend  # noqa: F401
