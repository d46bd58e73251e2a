"""Dossier's shared vocabulary: records, protocols, stage names, errors and paths.

Nothing here imports another Dossier package (tests/test_architecture.py checks it), and nothing here needs a
third-party library beyond numpy.
"""
