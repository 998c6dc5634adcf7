"""The files a commissioning run writes (the site model, its weights, its INT8 twin, the report pair) and the one
rule that keeps it from overwriting anything it does not own: checked before any work is done."""
from __future__ import annotations

import hashlib
from pathlib import Path

from engines.errors import ConfigError, ModelError
from engines.runtime.metadata import read_onnx_metadata

SHIPPED = Path(__file__).resolve().parents[2] / "models"


def site_files(out: Path) -> list[Path]:
    """Every file a commissioning run writes for ``out``: the model, its weights, its INT8 twin, the report pair."""
    from engines.runtime.precision import int8_twin
    return [out, out.with_suffix(".pt"), int8_twin(out), out.with_suffix(".commission.json"),
            out.with_suffix(".commission.html")]


def _earlier_run_files(out: Path) -> set[Path]:
    """The files an earlier commissioning run wrote for ``out`` (its report lists them); empty if there was none."""
    import json
    try:
        earlier_site = "site_adaptation" in read_onnx_metadata(out).training
        listed = json.loads(out.with_suffix(".commission.json").read_text()).get("files", {})
    except (ModelError, OSError, ValueError, AttributeError):
        return set()
    if not earlier_site or not isinstance(listed, dict):
        return set()
    return {Path(v).resolve() for v in listed.values() if isinstance(v, str)} | {
        out.with_suffix(".commission.json").resolve(), out.with_suffix(".commission.html").resolve()}


def check_out(out: Path, model: Path, replace: bool, inputs: list[str] | tuple = ()) -> None:
    """One never-overwrite rule for every file a run writes (the model, .pt, .int8.onnx, .commission.json/.html):
    none may be in the shipped models' folder, the model being commissioned, an input, or an existing file, except,
    with --replace, a file an earlier commissioning run of this same site model wrote (its report lists them)."""
    if out.suffix != ".onnx":
        raise ConfigError(f"--out: expected a path ending in .onnx, got {out}")
    if out.resolve().parent == SHIPPED:
        raise ConfigError(f"--out: {out} is in the shipped models' folder ({SHIPPED}); site models live elsewhere")
    if not out.parent.is_dir():
        raise ConfigError(f"--out: {out.parent} is not a folder")
    taken = {model.resolve(): "the model being commissioned", model.with_suffix(".pt").resolve(): "its weights",
             **{Path(p).resolve(): "an input (footage)" for p in inputs}}
    ours = _earlier_run_files(out) if replace else set()
    for f in site_files(out):
        if f.resolve() in taken:
            raise ConfigError(f"--out: the run would write {f}, which is {taken[f.resolve()]}; write the site model "
                              f"to a new file (nothing was written)")
        if (f.exists() or f.is_symlink()) and f.resolve() not in ours:
            raise ConfigError(f"--out: {f} exists and a commissioning run would overwrite it; a site model and its "
                              f"files (.pt, .int8.onnx, .commission.json/.html) are written to new files" +
                              (" (--replace overwrites only what an earlier run of this site model wrote, as its "
                               ".commission.json lists)" if replace else
                               " (--replace overwrites an earlier site model's own files)") + "; nothing was written")


def footage_hash(path: Path) -> str:
    """sha256 of a video file, or of a folder's frame names and contents in order."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()
