"""Batchline: an open-source Manufacturing Execution System for regulated pharma."""

__version__ = "0.1.0"
