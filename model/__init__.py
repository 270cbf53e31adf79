"""DiffVel network. `getattr(model, cfg.model.name)` gives the class, as the paper's scripts do."""
from model.diffvel import ClassifierFreeDiffRoll, load_diffvel

__all__ = ["ClassifierFreeDiffRoll", "load_diffvel"]
