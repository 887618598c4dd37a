"""aif color stage: ``match_colors(source, reference, mask=None)`` (lazy: importing the
package stays free of heavy imports; the code lives in ``local_affine``)."""
from typing import Any

__all__ = ["ColorMatchResult", "apply_coefficients", "match_colors"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import local_affine

        return getattr(local_affine, name)
    raise AttributeError(name)
