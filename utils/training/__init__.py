"""Training machinery around Lightning, and safe checkpoint loading.

`machinery.py` (model, loaders, epoch sampler, resume state, checkpoint callbacks and IO, run folders),
`checkpoint.py` (the restricted checkpoint loader and the architecture check), `export.py` (a weights-only
copy of a checkpoint to ship: python -m utils.training.export SRC.ckpt DST.ckpt), `average.py` (the weight
mean of several checkpoints of one run: python -m utils.training.average DST.ckpt SRC.ckpt SRC.ckpt ...).
"""
