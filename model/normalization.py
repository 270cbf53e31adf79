"""Per-item min-max normalisation, as the published DiffVel applies it to spectrograms and rolls."""
import torch


class MinMaxNormalization:
    """Scale each item of a batch to [low, high].

    `imagewise` (the paper's choice) uses one min and max per item over all of its cells;
    `framewise` uses one per frame (dim 1). An item whose max equals its min (an empty roll)
    becomes `low` everywhere, as in the published code (0/0 -> NaN -> low).
    """

    MODES = ("imagewise", "framewise")

    def __init__(self, low: float, high: float, mode: str = "imagewise"):
        if mode not in self.MODES:
            raise ValueError(f"normalisation mode {mode!r} is not one of {self.MODES}")
        self.low, self.high, self.mode = float(low), float(high), mode

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # x (B, H, W)
        if self.mode == "imagewise":
            x_max = x.flatten(1).max(1, keepdim=True)[0].unsqueeze(1)  # (B, 1, 1)
            x_min = x.flatten(1).min(1, keepdim=True)[0].unsqueeze(1)  # (B, 1, 1)
        else:
            x_max = x.max(1, keepdim=True)[0]  # (B, 1, W)
            x_min = x.min(1, keepdim=True)[0]  # (B, 1, W)
        scaled = (x - x_min) / (x_max - x_min) * (self.high - self.low) + self.low
        return torch.nan_to_num(scaled, nan=self.low)
