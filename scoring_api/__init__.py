"""Scoring API: online scores and clients' interests over HTTP."""
