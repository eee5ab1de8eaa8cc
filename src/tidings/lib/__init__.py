"""Shared plumbing used by several apps (no models, no views)."""
