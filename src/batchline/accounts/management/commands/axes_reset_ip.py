from ._axes_wrap import UnlockAddresses as Command

__all__ = ["Command"]
