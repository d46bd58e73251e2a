"""One compressed .npz holding named arrays and a JSON header: the small fitted files a retriever reads (the question
bank, the domain gate). Written to a temp name and renamed, so a killed write never leaves half a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

META = "meta"


def write_arrays(path: Path, meta: dict[str, Any], **arrays: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    with tmp.open("wb") as handle:
        np.savez_compressed(handle, **arrays,
                            **{META: np.frombuffer(json.dumps(meta, ensure_ascii=False).encode(), dtype=np.uint8)})
    tmp.replace(path)
    return path


def read_arrays(path: Path, names: tuple[str, ...]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(the named arrays as float32, the header); OSError / ValueError / KeyError for a file that is not one."""
    with np.load(path) as data:
        arrays = {name: data[name].astype(np.float32) for name in names}
        meta = json.loads(data[META].tobytes().decode())
    return arrays, meta
