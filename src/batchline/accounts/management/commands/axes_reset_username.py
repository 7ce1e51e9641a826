from ._axes_wrap import UnlockUsers as Command

__all__ = ["Command"]
