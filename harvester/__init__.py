"""Scholarly-metadata harvesting daemon: OAI-PMH, Crossref and Scopus into one deduplicated store."""

__version__ = "0.1.0"
