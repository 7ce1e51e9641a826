"""Pure decisions: plain Python over plain data, importing only the standard library.

Nothing here touches the database or reads a clock; callers pass ``now``.
"""
