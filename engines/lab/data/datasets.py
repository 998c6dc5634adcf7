"""Dataset layouts for training and evaluation, parsed into lists of Samples.

Layouts
- kvasir-seg: ``images/``, ``masks/`` (same stem), optional ``bbox/`` CSVs, optional split lists
  (``splits*/train.txt``, ``val.txt``). Every image holds a polyp.
- masks (CVC-ClinicDB / CVC-ColonDB): ``images/`` + ``masks/`` matched by stem; positive when the mask is
  non-empty; optional sequence table (``sequences.csv`` with ``frame,sequence`` or the CVC README table).
- imagefolder: one sub-folder per class (Kvasir v2, chest X-ray); a class named like ``polyp*`` / ``pneumonia``
  / ``abnormal`` is positive, the others negative (binary classification only, no masks).
- negatives: a flat folder (or ``images/``) of frames with no polyp.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engines.errors import DatasetError
from engines.runtime.image_files import IMAGE_EXT

POSITIVE_CLASS = re.compile(r"^(polyp|polyps|pneumonia|abnormal|positive|lesion)", re.I)
LAYOUTS = ("auto", "kvasir-seg", "masks", "imagefolder", "negatives")


@dataclass(frozen=True)
class Sample:
    image: Path
    label: int                   # 1 polyp (positive), 0 none
    mask: Path | None = None     # full-frame mask; None = no localisation truth
    group: str = ""              # sequence / video the frame belongs to (per-sequence detection)
    dataset: str = ""            # the source (hospital, scope, way of recording) it comes from
    region: tuple[int, int, int, int] | None = None   # a view of this square region only (engines.lab.data.mining)
    tower_seed: int = -1         # >= 0: shown as a tower screen made with this seed (engines.lab.data.tower)

    @property
    def identity(self) -> str:
        """Names the frame wherever the data root lies (seeds of mined and tower views derive from it)."""
        return f"{self.dataset}/{self.group}/{self.image.name}"

    @property
    def view(self) -> str:
        """How the frame is shown: ``frame`` as recorded, ``region`` re-framed, ``tower`` on a tower screen."""
        return "+".join(k for k, on in (("region", self.region is not None), ("tower", self.tower_seed >= 0))
                        if on) or "frame"


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXT)
    if not files:
        raise DatasetError(f"{folder}: no images ({', '.join(sorted(IMAGE_EXT))})")
    return files


def detect_layout(root: Path) -> str:
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return "kvasir-seg" if (root / "bbox").is_dir() or any(root.glob("split*/train.txt")) else "masks"
    subdirs = [d for d in root.iterdir() if d.is_dir()] if root.is_dir() else []
    if len(subdirs) >= 2 and all(any(p.suffix.lower() in IMAGE_EXT for p in d.iterdir()) for d in subdirs):
        return "imagefolder"
    if (root / "images").is_dir() or any(p.suffix.lower() in IMAGE_EXT for p in root.iterdir()):
        return "negatives"
    raise DatasetError(f"{root}: cannot tell the dataset layout; expected images/ + masks/, "
                       f"class sub-folders, or a folder of frames")


def _match_masks(images: list[Path], mask_dir: Path) -> dict[str, Path]:
    masks = {p.stem: p for p in _images(mask_dir)}
    missing = [p.name for p in images if p.stem not in masks]
    if missing:
        raise DatasetError(f"{mask_dir}: no mask for {len(missing)} image(s), e.g. {missing[:3]}")
    return masks


def _read_split(root: Path, split: str) -> set[str] | None:
    lists = sorted(root.glob(f"split*/{split}.txt"))
    if not lists:
        return None
    return {ln.strip() for ln in lists[0].read_text().splitlines() if ln.strip()}


def _frame_stems(root: Path) -> set[str]:
    folder = root / "images" if (root / "images").is_dir() else root
    return {p.stem for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXT}


def _sequence_table(root: Path, frames: set[str] | None = None) -> dict[str, str]:
    """frame stem -> sequence id, from sequences.csv or a CVC README table ('1 to 38 | 1'), for the frames that
    exist (``frames``, default: the image files under ``root``): a table never claims more than that, whatever its
    ranges say. A table that cannot be read (not UTF-8, no ``frame``/``sequence`` columns) is a DatasetError."""
    frames = _frame_stems(root) if frames is None else frames
    table: dict[str, str] = {}
    csv_path = root / "sequences.csv"
    if csv_path.is_file():
        try:
            with csv_path.open(encoding="utf-8", newline="") as f:
                reader = csv.DictReader(f)
                if not {"frame", "sequence"} <= set(reader.fieldnames or ()):
                    raise DatasetError(f"{csv_path}: expected the columns 'frame' and 'sequence', got "
                                       f"{[str(c)[:40] for c in (reader.fieldnames or [])][:8]}")
                for row in reader:
                    frame = str(row["frame"]).strip()
                    if frame in frames:
                        table[frame] = str(row["sequence"]).strip()[:64]
        except UnicodeDecodeError:
            raise DatasetError(f"{csv_path}: not UTF-8 text (a CSV with the columns frame,sequence was expected)") \
                from None
        except csv.Error as e:
            raise DatasetError(f"{csv_path}: not a readable CSV ({e})") from None
        return table
    numbered = {int(f): f for f in frames if f.isdigit()}
    for readme in sorted(root.glob("README*.txt")):
        for a, b, seq in re.findall(r"(\d+)\s+to\s+(\d+)\s*\|\s*(\d+)", readme.read_text(errors="replace")):
            lo, hi = int(a), int(b)
            for i in (n for n in numbered if lo <= n <= hi):     # the frames that exist, never the range's claim
                table[numbered[i]] = seq
    return table


def imagefolder_classes(root: str | Path) -> list[str]:
    """Class names of an imagefolder dataset: its sub-folders, sorted (the class index is the position)."""
    return sorted(d.name for d in Path(root).iterdir() if d.is_dir())


def load_dataset(root: str | Path, layout: str = "auto", split: str | None = None,
                 multiclass: bool = False) -> list[Sample]:
    """Samples of one dataset folder. ``split`` picks a list from the dataset's own split files.

    ``multiclass`` (imagefolder only): the label is the class index of ``imagefolder_classes`` instead of
    polyp / not polyp."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: dataset folder not found")
    if layout not in LAYOUTS:
        raise DatasetError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    if layout == "auto":
        layout = detect_layout(root)
    name = root.name
    if multiclass and layout != "imagefolder":
        raise DatasetError(f"{root}: multi-class training needs the imagefolder layout (one sub-folder per class), "
                           f"found {layout}")
    if layout in ("kvasir-seg", "masks"):
        images = _images(root / "images")
        masks = _match_masks(images, root / "masks")
        if split is not None:
            keep = _read_split(root, split)
            if keep is None:
                raise DatasetError(f"{root}: no split list {split}.txt (expected split*/{split}.txt)")
            images = [p for p in images if p.stem in keep]
        seqs = _sequence_table(root)
        label = 1 if layout == "kvasir-seg" else -1        # -1: from the mask, when read
        return [Sample(p, label, masks[p.stem], seqs.get(p.stem, ""), name) for p in images]
    if layout == "imagefolder":
        out = []
        classes = imagefolder_classes(root)
        for k, cls in enumerate(classes):
            lab = k if multiclass else int(bool(POSITIVE_CLASS.match(cls)))
            out += [Sample(p, lab, None, cls, name) for p in _images(root / cls)]
        if multiclass:
            if len(classes) < 2:
                raise DatasetError(f"{root}: multi-class training needs at least 2 class folders, found {classes}")
            return out
        if len({s.label for s in out}) < 2:
            raise DatasetError(f"{root}: imagefolder needs a positive class (polyp*, pneumonia, abnormal, ...) "
                               f"and a negative one; found {sorted({s.group for s in out})}")
        return out
    folder = root / "images" if (root / "images").is_dir() else root
    return [Sample(p, 0, None, "", name) for p in _images(folder)]


def read_image(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"{path}: unreadable image")
    return img


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise DatasetError(f"{path}: unreadable mask")
    if m.shape != shape:
        raise DatasetError(f"{path}: mask is {m.shape[1]}x{m.shape[0]}, its image {shape[1]}x{shape[0]}")
    return (m > 127).astype(np.uint8)


def split_fraction(samples: list[Sample], val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Fixed-seed random split (for datasets without an official one)."""
    idx = np.random.default_rng(seed).permutation(len(samples))
    n_val = int(round(len(samples) * val_fraction))
    val = {int(i) for i in idx[:n_val]}
    return [s for i, s in enumerate(samples) if i not in val], [s for i, s in enumerate(samples) if i in val]
