"""aif stack stage: focus measures, pyramids, streaming merge, depth map, coverage report.

``from aifcli.stack import stack_frames`` works; submodules load lazily on first use so
importing the package stays free (the CLI imports it at start-up).
"""
from __future__ import annotations

from typing import Any

__all__ = ["StackResult", "stack_frames"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(name)
