"""The miniature R1: a tiny R1-style reasoning model built offline on a CPU (testbed and built-in default)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

SHIPPED_MODEL_DIR = Path(__file__).with_name("default")
CACHE_ENV = "AUTOTHINK_CACHE"


def cache_dir() -> Path:
    """Where the toolkit builds what it does not ship: $AUTOTHINK_CACHE, else ~/.cache/autothink-lite."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "autothink-lite")


def _is_model_dir(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "model.safetensors").is_file() and (
        path / "tokenizer.json"
    ).is_file()


def default_model_path() -> Path:
    """The miniature model folder: the one shipped in the package, else one built once into the cache."""
    if _is_model_dir(SHIPPED_MODEL_DIR):
        return SHIPPED_MODEL_DIR
    cached = cache_dir() / "mini-r1"
    if not _is_model_dir(cached):
        # Imported only to build: the build imports transformers, which `modeling` (importing this package)
        # must leave to unsloth to import first.
        from autothink_lite.miniature.build import build_miniature

        logger.warning("no shipped miniature model at %s: building one into %s (about 40 minutes on a CPU)",
                       SHIPPED_MODEL_DIR, cached)
        build_miniature(cached)
    return cached
