"""Every network variant a checkpoint's `variant` hyperparameter can name (absent: the paper's network)."""
from model.diffvel_plus import VARIANT as DIFFVEL_PLUS
from model.diffvel_plus import DiffVelPlus

VARIANTS = {DIFFVEL_PLUS: DiffVelPlus}
