"""`dossier export edge --small` is the measured recipe; an option given explicitly still wins over it."""

from __future__ import annotations

from cli import build_parser
from cli.export_cmd import size_options


def _options(*argv: str) -> dict[str, object]:
    return size_options(build_parser().parse_args(["export", "edge", "--domain", "legal", "--out", "b", *argv]))


def test_without_small_the_bundle_keeps_the_plain_parts() -> None:
    assert _options() == {"output_quant": None, "faiss_sq8": False, "embedder_int8": "matmul"}


def test_small_is_the_tied_output_sq8_index_and_weight_only_embedder() -> None:
    assert _options("--small") == {"output_quant": "tied", "faiss_sq8": True, "embedder_int8": "weights"}


def test_an_explicit_option_wins_over_small() -> None:
    assert _options("--small", "--embedder-int8", "matmul", "--output-quant", "q4_0") == {
        "output_quant": "q4_0", "faiss_sq8": True, "embedder_int8": "matmul"}


def test_the_cli_offers_every_embedder_graph_the_export_knows() -> None:
    from edge.export.embedder import GRAPH_NOTES, GRAPHS
    from edge.layout import EMBEDDER_GRAPHS

    assert tuple(GRAPHS) == tuple(GRAPH_NOTES) == EMBEDDER_GRAPHS
