"""Child processes (`python -m proxy`, `python -m worker`, …) for integration tests (`devtools.procs`)."""
from __future__ import annotations

from devtools.procs import ROOT, Service

__all__ = ["ROOT", "Service"]
