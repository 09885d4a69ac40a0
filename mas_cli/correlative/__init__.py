"""Correlative baselines (docs/METHODS.md § Correlative measures): RSA and CKA between two frozen
models (measures.py), and the `mas similarity` job that computes, stores and reuses them (run.py)."""
