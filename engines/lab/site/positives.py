"""A site's own polyps (reviewed "polyp" in its procedure records, stream/lab/site/records.py) as commissioning
evidence: each frame's stride-16 features and the heat map it is trained towards, held to the place the reviewer
clicked or dragged where there is one (1 on the cells under it, 0 elsewhere), else to the stock model's own map (the
boxes stay where they were)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engines.errors import DatasetError
from engines.runtime.preprocess import preprocess


@dataclass(frozen=True)
class Positive:
    group: str                                        # the recording (procedure) it was seen in
    case: str                                         # its episode or mark
    image: Path
    box: tuple[float, float, float, float] | None     # the reviewer's place, 0..1 of the frame
    t_s: float = 0.0                                  # seconds since its case's first frame


@dataclass
class SitePositives:
    f16: np.ndarray                                   # N x C x h x w
    heat: np.ndarray                                  # N x 1 x h x w targets in 0..1
    groups: list[str]
    cases: list[str]
    t_s: list[float] | None = None

    def __len__(self) -> int:
        return len(self.groups)

    def _select(self, keep: np.ndarray) -> "SitePositives":
        pick = lambda v: [x for x, k in zip(v, keep) if k]          # noqa: E731
        return SitePositives(self.f16[keep], self.heat[keep], pick(self.groups), pick(self.cases),
                             pick(self.t_s) if self.t_s is not None else None)

    def without(self, group: str) -> "SitePositives":
        return self._select(np.array([g != group for g in self.groups], bool))

    def of(self, group: str) -> "SitePositives":
        return self._select(np.array([g == group for g in self.groups], bool))


def place_map(box, area, frame_w: int, frame_h: int, h: int, w: int) -> np.ndarray:
    """1 x h x w: 1 on the heat-map cells under ``box`` (0..1 of the frame; a click is a point: its cell), else 0."""
    ax0, ay0, ax1, ay1 = area.x0, area.y0, area.x1, area.y1
    to_x = lambda v: (v * frame_w - ax0) / max(1, ax1 - ax0)        # noqa: E731  frame -> model input (0..1)
    to_y = lambda v: (v * frame_h - ay0) / max(1, ay1 - ay0)        # noqa: E731
    x0, x1 = sorted((to_x(box[0]), to_x(box[2])))
    y0, y1 = sorted((to_y(box[1]), to_y(box[3])))
    cx, cy = (np.arange(w) + 0.5) / w, (np.arange(h) + 0.5) / h
    m = ((cy[:, None] >= y0) & (cy[:, None] <= y1) & (cx[None, :] >= x0) & (cx[None, :] <= x1)).astype(np.float32)
    i = int(np.clip((y0 + y1) / 2 * h, 0, h - 1))
    j = int(np.clip((x0 + x1) / 2 * w, 0, w - 1))
    m[i, j] = 1.0                                                   # a click (or a tiny box) still marks its cell
    return m[None]


def load_positives(net, meta, positives: list[Positive]) -> SitePositives:
    """Features and heat targets of the site's reviewed polyp frames (the stock model's map where no place is given)."""
    import torch

    from engines.lab.site.commission import head, trunk
    if not positives:
        return SitePositives(np.zeros((0,), np.float32), np.zeros((0,), np.float32), [], [], [])
    xs, areas, sizes = [], [], []
    for p in positives:
        img = cv2.imread(str(p.image), cv2.IMREAD_COLOR)
        if img is None:
            raise DatasetError(f"{p.image}: a reviewed polyp frame that cannot be read")
        pre = preprocess(img, meta.preprocess)
        xs.append(pre.tensor[0])
        areas.append(pre.area)
        sizes.append((img.shape[1], img.shape[0]))
    f16 = trunk(net, np.stack(xs))
    with torch.no_grad():
        stock = torch.sigmoid(head(net, torch.from_numpy(f16))[1]).numpy()
    h, w = stock.shape[-2:]
    heat = np.stack([place_map(p.box, a, fw, fh, h, w) if p.box is not None else s
                     for p, a, (fw, fh), s in zip(positives, areas, sizes, stock)]).astype(np.float32)
    return SitePositives(f16, heat, [p.group for p in positives], [p.case for p in positives],
                         [p.t_s for p in positives])


MIN_SITE_POLYPS = 3                 # reviewed polyp cases (episodes or marks) before the site's own polyps are used


def check_enough(positives: list[Positive], recordings: list[str]) -> None:
    """Refuse, with how many more are needed, too few reviewed polyps; every polyp must belong to a recording."""
    from engines.errors import ConfigError
    cases = {(p.group, p.case) for p in positives}
    if len(cases) < MIN_SITE_POLYPS:
        raise ConfigError(f"--records: {len(cases)} reviewed polyp case(s), at least {MIN_SITE_POLYPS} are needed to "
                          f"commission from the site's own polyps ({MIN_SITE_POLYPS - len(cases)} more: review alert "
                          f"episodes and marks in polypwatch web); nothing was written")
    stray = sorted({p.group for p in positives} - set(recordings))
    if stray:
        raise ConfigError(f"--records: reviewed polyps of procedure(s) {stray[:3]} with no polyp-free footage to hold "
                          f"them out with; nothing was written")


def _first_alert(cases: list[str], times: list[float], s: np.ndarray, t: float, alerts) -> dict[str, float]:
    """Per case: the time of its first frame with the live alert filter (``alerts`` at threshold ``t``) on, over its
    frames in time order (a recorded case keeps every frame of its episode or mark)."""
    import dataclasses

    from engines.runtime.alerts import AlertFilter, AlertState
    first: dict[str, float] = {}
    for c in dict.fromkeys(cases):
        f = AlertFilter.from_config(dataclasses.replace(alerts, on_threshold=t, off_threshold=0.0), t)
        for ts, v in sorted((ts, v) for cc, ts, v in zip(cases, times, s) if cc == c):
            if f.update(float(v)) is AlertState.ON:
                first[c] = ts
                break
    return first


def site_polyp_figures(pos: SitePositives, held: dict, stock: np.ndarray, stock_t: float, site_t: float,
                       alerts=None) -> dict:
    """Per procedure held out: the site's reviewed polyps found before (stock model, its threshold) and after (the
    model fine-tuned without that procedure, the site threshold), per frame and per case (any frame over), each found
    case's time to its first frame over the threshold, and each case's time to its first alert of the live filter
    (``alerts``; seconds from the case's first frame; cases the filter never raised on are not listed)."""
    from engines.runtime.alerts import AlertsConfig
    alerts = alerts or AlertsConfig()
    out = {}
    for group in sorted(set(pos.groups)):
        mine = np.array([g == group for g in pos.groups], bool)
        cases = [c for c, m in zip(pos.cases, mine) if m]
        times = [t for t, m in zip(pos.t_s or [0.0] * len(mine), mine) if m]
        after, _ = held.get(group, (np.zeros(0), []))

        def figs(s, t):
            if not len(s):
                return {"frames_found": None, "cases_found": None, "time_to_first_frame_s": None,
                        "cases_alerted": None, "time_to_first_alert_s": None}
            first: dict[str, float] = {}
            for c, v, ts in zip(cases, s, times):
                if v >= t:
                    first[c] = min(first.get(c, ts), ts)
            alerted = _first_alert(cases, times, s, t, alerts)
            return {"frames_found": round(float((s >= t).mean()), 4), "cases_found": len(first),
                    "time_to_first_frame_s": sorted(first.values()), "cases_alerted": len(alerted),
                    "time_to_first_alert_s": sorted(alerted.values())}
        out[group] = {"cases": len(set(cases)), "frames": int(mine.sum()), "before": figs(stock[mine], stock_t),
                      "after": figs(after, site_t)}
    return out
