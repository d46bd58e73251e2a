"""Peak memory of a process: CPU RSS (psutil / resource) and, where a GPU exists, CUDA peak allocation.

`PeakMemory` samples RSS on a background thread (peak RSS from `resource` covers the whole process life, which
is wrong when several measurements share one process); `ru_maxrss` is recorded too as a cross-check.
"""

from __future__ import annotations

import resource
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


def rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def max_rss_bytes() -> int:
    """Peak RSS of this process over its whole life (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class PeakMemory:
    """with PeakMemory() as peak: ...  -> peak.report(): peak / start RSS in MiB, CUDA peak if available."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.start_rss = self.peak_rss = 0

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak_rss = max(self.peak_rss, rss_bytes())

    def __enter__(self) -> PeakMemory:
        self.start_rss = self.peak_rss = rss_bytes()
        if _cuda():
            import torch

            torch.cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_rss = max(self.peak_rss, rss_bytes())

    def report(self) -> dict[str, float | None]:
        cuda_peak = None
        if _cuda():
            import torch

            cuda_peak = torch.cuda.max_memory_allocated() / MIB
        return {
            "peak_rss_mib": self.peak_rss / MIB,
            "start_rss_mib": self.start_rss / MIB,
            "delta_rss_mib": (self.peak_rss - self.start_rss) / MIB,
            "process_max_rss_mib": max_rss_bytes() / MIB,
            "cuda_peak_mib": cuda_peak,
        }


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def plot_memory(rows: Sequence[Mapping[str, Any]], path: Path, title: str = "peak memory") -> Path:
    """A bar per measured row ({"label", "peak_rss_mib", "trainable_params", optional "cuda_peak_mib" and
    "estimated_peak_mib"}; skipped rows have no peak) -> PNG. On a GPU the bars are the CUDA peak, the memory a
    recipe must fit, since the process's RSS there is mostly the CUDA runtime; the plan's estimate is a tick mark."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [r for r in rows if r.get("peak_rss_mib")]
    key, axis = ("cuda_peak_mib", "CUDA peak (MiB)") if measured and all(
        r.get("cuda_peak_mib") for r in measured) else ("peak_rss_mib", "peak RSS (MiB)")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bars = ax.bar([r["label"] for r in measured], [r[key] for r in measured], color="#4a7fb0")
    for bar, row in zip(bars, measured, strict=True):
        note = f"{bar.get_height():.0f} MiB\n{row.get('trainable_params', 0) / 1e6:.2f}M trainable"
        top = max(bar.get_height(), row.get("estimated_peak_mib") or 0)  # the note above the estimate's tick too
        ax.annotate(note, (bar.get_x() + bar.get_width() / 2, top), ha="center", va="bottom", fontsize=8)
    estimated = [(bar, row["estimated_peak_mib"]) for bar, row in zip(bars, measured, strict=True)
                 if row.get("estimated_peak_mib")]
    if estimated:
        ax.hlines([peak for _, peak in estimated], [bar.get_x() for bar, _ in estimated],
                  [bar.get_x() + bar.get_width() for bar, _ in estimated], colors="#c0392b", linestyles="dashed",
                  label="estimate (train plan)")
        ax.legend(fontsize=8, loc="upper right")
    skipped = [r["label"] for r in rows if not r.get("peak_rss_mib")]
    ax.set_ylabel(axis)
    ax.set_title(title + (f"  (skipped: {', '.join(skipped)})" if skipped else ""), fontsize=9)
    ax.margins(y=0.25)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
