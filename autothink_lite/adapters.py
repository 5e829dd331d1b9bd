"""LoRA adapters by name: the files peft writes, the check that a folder holds a finished adapter, and the
local folder of an adapter named by a path or a Hub id.

No torch: the safetensors header is read as the format defines it (an 8-byte length, a JSON header, the data),
which is enough to tell a finished file from one cut short by a crash.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from autothink_lite.hub_client import HubError, download, is_local_path

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
ADAPTER_FILES = (ADAPTER_CONFIG, *ADAPTER_WEIGHTS)  # what identifies an adapter (its provenance hash)
FIX = ("Re-run the training stage that writes it (a finished stage's final/ folder holds adapter_config.json "
       "and adapter_model.safetensors), or pass another adapter folder, e.g. RUN_DIR/stage3/final.")


def check_adapter_folder(path: Path, error: type[Exception] = HubError) -> None:
    """Fail, naming the folder, when it is missing, not an adapter, unfinished or corrupt.

    Raises `error`, the caller's own error type (ModelLoadError when loading, HubError when pushing)."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise error(f"adapter folder {path} does not exist. {FIX}")
    missing = [] if (path / ADAPTER_CONFIG).is_file() else [ADAPTER_CONFIG]
    weights = next((path / name for name in ADAPTER_WEIGHTS if (path / name).is_file()), None)
    if weights is None:
        missing.append(" or ".join(ADAPTER_WEIGHTS))
    if missing:
        raise error(f"{path} is not a LoRA adapter folder: no {', no '.join(missing)}. {FIX}")
    try:
        json.loads((path / ADAPTER_CONFIG).read_text())
    except (OSError, ValueError) as err:
        raise error(f"adapter folder {path}: {ADAPTER_CONFIG} is unreadable ({err}). {FIX}") from None
    if weights.suffix == ".safetensors":
        problem = _safetensors_problem(weights)
        if problem:
            raise error(f"adapter folder {path}: {weights.name} is unreadable ({problem}), perhaps cut short by "
                        f"a crash. {FIX}")


def _safetensors_problem(path: Path) -> str | None:
    """What is wrong with a safetensors file's layout, or None: the header must parse and the data must be whole."""
    actual = path.stat().st_size
    try:
        with path.open("rb") as f:
            size = struct.unpack("<Q", f.read(8))[0]
            if 8 + size > actual:
                return f"{actual} bytes, shorter than its header says"
            header = json.loads(f.read(size))
    except (OSError, ValueError, struct.error) as err:
        return f"no valid header: {err}"
    if not isinstance(header, dict):
        return "no valid header"
    ends = [t["data_offsets"][1] for name, t in header.items() if name != "__metadata__" and isinstance(t, dict)
            and len(t.get("data_offsets", ())) == 2]
    expected = 8 + size + max(ends, default=0)
    return None if actual >= expected else f"{actual} bytes, its header describes {expected}"


def check_local_adapter(name: str, error: type[Exception]) -> None:
    """Check a local adapter folder early; a Hub id is left to whatever downloads it."""
    if is_local_path(name):
        check_adapter_folder(Path(name), error)


def pull_adapter(name: str | Path, *, error: type[Exception] = HubError, revision: str | None = None,
                 token: str | None = None, endpoint: str | None = None, cache_dir: str | Path | None = None) -> str:
    """The local folder holding the adapter: a local path itself (checked), or a Hub id's snapshot, downloaded
    into the Hub cache when not there yet (checked; a failed download raises HubError saying why)."""
    name = str(name)
    if is_local_path(name):
        check_adapter_folder(Path(name), error)
        return str(Path(name).expanduser())
    path = download(name, revision=revision, token=token, endpoint=endpoint, cache_dir=cache_dir)
    check_adapter_folder(Path(path), error)
    return path


def adapter_rank(folder: str | Path) -> int:
    """The LoRA rank written in a local adapter folder's config."""
    return int(json.loads((Path(folder) / ADAPTER_CONFIG).read_text())["r"])
