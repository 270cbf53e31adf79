"""Dataset construction from the `dataset` config group (`dataset.name` + per-split arguments)."""
from omegaconf import DictConfig, OmegaConf

SPLITS = ("train", "val", "test")


def build_dataset(dataset_cfg: DictConfig, split: str):
    """`<dataset.name>(**dataset.<split>)`, e.g. MAESTRO(root=..., groups=['train'], ...)."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {SPLITS}")
    if dataset_cfg.name == "MAESTRO":
        from utils.data.maestro import MAESTRO as dataset_class
    else:
        raise ValueError(f"dataset.name {dataset_cfg.name!r} is not supported (available: MAESTRO)")
    if split not in dataset_cfg:
        raise ValueError(f"the dataset config has no {split!r} section")
    return dataset_class(**OmegaConf.to_container(dataset_cfg[split], resolve=True))
