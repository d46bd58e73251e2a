"""`dossier serve` hands uvicorn an app that prepares in the background: the real index build command (a valid
`dossier` invocation), the wheel marker `make run` writes, llama.cpp from the domain or --backend."""

from __future__ import annotations

import sys

import pytest

from cli import build_parser, main
from core.paths import cache_dir


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict:
    import uvicorn

    seen: dict = {}
    monkeypatch.delenv("DOSSIER_GENERATOR_BACKEND", raising=False)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    return seen


def test_serve_prepares_missing_indexes_with_the_real_build(served):
    assert main(["serve", "--domains", "legal,medical", "--port", "8123", "--build-threads", "2"]) == 0
    preparation = served["app"].state.preparation
    assert preparation.domains == ("legal", "medical") and served["port"] == 8123
    argv = preparation.plan.index_command("legal")
    assert argv[:3] == [sys.executable, "-m", "cli"]
    args = build_parser().parse_args(argv[3:])
    assert (args.index_command, args.domain, args.if_missing, args.threads) == ("build", "legal", True, 2)
    assert preparation.plan.wheel_marker == cache_dir() / "wheels" / "building.json"


def test_serve_waits_for_the_wheel_only_for_llama_cpp(served, monkeypatch):
    from core import hardware

    main(["serve", "--domains", "legal,medical"])
    plan = served["app"].state.preparation.plan
    assert plan.uses_llama_cpp("medical")  # the shipped backend
    # legal's is auto: llama.cpp unless the CPU computes bf16 natively (the CPU injected: the same on any machine)
    for native in (False, True):
        monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda native=native: native)
        assert plan.uses_llama_cpp("legal") is not native
    main(["serve", "--domains", "legal", "--backend", "transformers"])
    assert not served["app"].state.preparation.plan.uses_llama_cpp("legal")


def test_the_upload_cap_comes_from_the_flag_and_a_bad_one_is_refused(served, capsys: pytest.CaptureFixture) -> None:
    assert main(["serve", "--domains", "legal", "--upload-max-mb", "2.5"]) == 0
    assert served["app"].state.collections.upload_max_bytes == int(2.5 * 1024 * 1024)
    assert main(["serve", "--domains", "legal", "--upload-max-mb", "0"]) != 0
    assert "--upload-max-mb" in capsys.readouterr().err
