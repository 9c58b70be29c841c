"""OpenSSF model signatures: read a bundle, verify it, compare its manifest with the pass."""
