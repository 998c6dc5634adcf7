"""Where the shipped models live."""
from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
DEFAULT_MODEL = MODELS_DIR / "polypwatch-lite0-v1.onnx"


def resolve_model_path(configured: str) -> Path:
    return Path(configured) if configured else DEFAULT_MODEL
