"""Conformance runs over shared real-world corpora (skipped unless the corpus is configured)."""
