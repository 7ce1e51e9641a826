from ._axes_wrap import Refused as Command

__all__ = ["Command"]
