"""aif fuse stage: ``fuse_pair(main, ultrawide, ...)`` (lazy: importing the package stays
free of heavy imports; the code lives in ``pair``)."""
from typing import Any

__all__ = ["FuseResult", "fuse_pair"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import pair

        return getattr(pair, name)
    raise AttributeError(name)
