"""Where the shipped models live."""
from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
DEFAULT_MODEL = MODELS_DIR / "polypwatch-lite0-v3.onnx"
PREVIOUS_MODELS = (MODELS_DIR / "polypwatch-lite0-v1.onnx",)   # kept for comparison (docs/MODEL_CARD.md)


def resolve_model_path(configured: str) -> Path:
    return Path(configured) if configured else DEFAULT_MODEL
