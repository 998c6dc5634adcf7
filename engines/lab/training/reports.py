"""Pictures of a model's behaviour: confusion matrix, ROC curve, top-losses grid (PNG files)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from engines.lab.evaluation.metrics import auroc, roc_curve


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def confusion_png(labels: np.ndarray, predicted: np.ndarray, path: Path, title: str = "") -> list[list[int]]:
    y, p = np.asarray(labels, bool), np.asarray(predicted, bool)
    cm = [[int((~y & ~p).sum()), int((~y & p).sum())], [int((y & ~p).sum()), int((y & p).sum())]]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.6, 3.2), dpi=110)
    ax.imshow(cm, cmap="Blues")
    for i in range(2):
        for j in range(2):
            ax.text(j, i, str(cm[i][j]), ha="center", va="center", fontsize=13,
                    color="white" if cm[i][j] > max(map(max, cm)) / 2 else "black")
    ax.set_xticks([0, 1], ["no polyp", "polyp"])
    ax.set_yticks([0, 1], ["no polyp", "polyp"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return cm


def confusion_multiclass_png(labels: np.ndarray, predicted: np.ndarray, classes: list[str], path: Path) -> list[list[int]]:
    """C x C confusion matrix (rows: true class, columns: predicted)."""
    C = len(classes)
    cm = np.zeros((C, C), int)
    for t, p in zip(labels, predicted):
        cm[int(t), int(p)] += 1
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * C, 1.0 + 0.7 * C), dpi=110)
    ax.imshow(cm, cmap="Blues")
    for i in range(C):
        for j in range(C):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=9,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(C), classes, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(C), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return cm.tolist()


def roc_png(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, threshold_points=None) -> None:
    """curves: name -> (labels, scores)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 4), dpi=110)
    for name, (y, s) in curves.items():
        fpr, tpr, _ = roc_curve(y, s)
        a = auroc(y, s)
        ax.plot(fpr, tpr, label=f"{name} (AUROC {a:.3f})" if a is not None else name)
    for name, (fx, ty) in (threshold_points or {}).items():
        ax.plot([fx], [ty], "o", label=name)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def top_losses_png(images: np.ndarray, labels: np.ndarray, scores: np.ndarray, path: Path, k: int = 16,
                   names: list[str] | None = None, classes: list[str] | None = None) -> list[dict]:
    """Grid of the ``k`` frames with the highest cross-entropy, labelled true/score. Returns their list.

    Binary: ``scores`` is N polyp probabilities. Multi-class: N x C probabilities and the ``classes`` names."""
    eps = 1e-6
    if scores.ndim == 2:
        loss = -np.log(scores[np.arange(len(labels)), labels] + eps)
    else:
        loss = -(labels * np.log(scores + eps) + (1 - labels) * np.log(1 - scores + eps))
    top = np.argsort(-loss)[:k]
    tiles = []
    for i in top:
        t = cv2.resize(images[i], (160, 160))
        if scores.ndim == 2:
            txt = f"{classes[labels[i]][:9]}>{classes[int(scores[i].argmax())][:9]}"
        else:
            txt = f"{'polyp' if labels[i] else 'none'} p={scores[i]:.2f}"
        cv2.rectangle(t, (0, 0), (160, 18), (0, 0, 0), -1)
        cv2.putText(t, txt, (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(t)
    while len(tiles) % 4:
        tiles.append(np.zeros((160, 160, 3), np.uint8))
    rows = [np.hstack(tiles[r:r + 4]) for r in range(0, len(tiles), 4)]
    if rows:
        cv2.imwrite(str(path), np.vstack(rows))
    return [{"name": names[i] if names else int(i), "label": int(labels[i]),
             "score": np.round(scores[i], 4).tolist(), "loss": round(float(loss[i]), 4)} for i in top]
