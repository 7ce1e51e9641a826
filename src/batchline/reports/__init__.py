"""The executed batch record as a document (PDF, JSON, BatchML) and its self-contained archive.

``verify`` imports only the standard library and ``batchline.rules``, so an
archive can be checked years later without Django or a database.
"""
