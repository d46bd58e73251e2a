"""Dossier's shared vocabulary: records, protocols, errors and the model registry.

Nothing here imports another Dossier package, and nothing here needs a third-party library.
"""
