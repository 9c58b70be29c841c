"""Benchmarks and the labelled corpus of malicious and benign model files."""
