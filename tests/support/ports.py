from __future__ import annotations

from leadline.net import free_port

__all__ = ["free_port"]
