"""Edge test constants (a module of its own: `from conftest import` picks whichever conftest was imported first
when the whole suite runs, e.g. tests/ui/browser/conftest.py)."""

QUESTION = "故意杀人罪判几年？"
