"""Where the shipped models live."""
from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
DEFAULT_MODEL = MODELS_DIR / "polypwatch-lite0-v3.onnx"
# Superseded models whose files left the tree and live in git history only: model id -> the commit that holds
# engines/models/ID.onnx and ID.pt (git show COMMIT:engines/models/ID.onnx > ID.onnx). Their cards and recipes stay.
HISTORY_MODELS = {"polypwatch-lite0-v1": "ca381d1"}


def resolve_model_path(configured: str) -> Path:
    return Path(configured) if configured else DEFAULT_MODEL
