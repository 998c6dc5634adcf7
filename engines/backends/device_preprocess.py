"""The shared preprocessing done on the torch device: upload the active-area crop as uint8, then resize,
mask, reorder colours and normalise there. Same steps as engines.runtime.preprocess (the active area itself is found
on the CPU, on a small image)."""
from __future__ import annotations

import numpy as np

from engines.runtime.preprocess import ActiveArea, PreprocessSpec, keep_mask


class DevicePreprocessor:
    def __init__(self, spec: PreprocessSpec, device, dtype):
        import torch
        self.torch = torch
        self.spec = spec
        self.device, self.dtype = device, dtype
        order = [2, 1, 0] if spec.color_order == "RGB" else [0, 1, 2]
        self.order = torch.tensor(order, device=device)
        self.mean = torch.tensor(spec.mean, device=device, dtype=torch.float32).view(1, 3, 1, 1)
        self.inv_std = (1.0 / torch.tensor(spec.std, device=device, dtype=torch.float32)).view(1, 3, 1, 1)
        self._mask_key = None
        self._mask = None

    def __call__(self, image: np.ndarray, area: ActiveArea):
        """HxWx3 uint8 BGR frame -> 1x3xHxW tensor on the device (channels-last, the backend's dtype)."""
        torch = self.torch
        F = torch.nn.functional
        crop = np.ascontiguousarray(image[area.y0:area.y1, area.x0:area.x1])
        x = torch.from_numpy(crop).to(self.device, non_blocking=True)             # uint8 upload
        x = x.permute(2, 0, 1).unsqueeze(0).float()                                # 1x3xhxw, BGR
        x = F.interpolate(x, size=(self.spec.input_height, self.spec.input_width), mode="area")
        key = (area.x0, area.y0, area.x1, area.y1, area.polygon.tobytes())
        if key != self._mask_key:
            self._mask = torch.from_numpy(keep_mask(area, self.spec)).to(self.device).float().view(1, 1, *self._shape())
            self._mask_key = key
        x = torch.floor(x + 0.5) * self._mask                                      # rounded to uint8 levels, masked
        x = x.index_select(1, self.order)
        x = (x - self.mean) * self.inv_std
        return x.to(self.dtype).contiguous(memory_format=torch.channels_last)

    def _shape(self):
        return (self.spec.input_height, self.spec.input_width)
