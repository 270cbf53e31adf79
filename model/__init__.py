"""DiffVel networks. `getattr(model, cfg.model.name)` gives the class, as the paper's scripts do."""
from model.diffvel import ClassifierFreeDiffRoll, load_diffvel
from model.diffvel_plus import DiffVelPlus

__all__ = ["ClassifierFreeDiffRoll", "DiffVelPlus", "load_diffvel"]
