"""Genealogy: which lots, batches, containers, units and people a lot came from or went into (GEN-01…03).

Above materials, equipment and execution, whose rows it reads; it writes nothing.
"""
