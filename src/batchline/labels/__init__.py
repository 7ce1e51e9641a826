"""Labels and scanning: what a container label carries, how it prints, and how a scan reads back.

Plain Python over plain data (no Django, no other Batchline app), so the materials and
weigh-and-dispense services can call it and the tests need no database. See docs/labels.md.
"""
