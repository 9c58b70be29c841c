"""Verified lineage: weight fingerprints and which recorded base a set of weights comes from."""
