"""Building an edge bundle (`dossier export edge`): runs in the project's environment, where torch exports the
embedder to ONNX and llama.cpp's quantiser is at hand. bundle.py orders the steps; one module per part."""
