"""Placeholder replaced by the record-of-processing export."""
