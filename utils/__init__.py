"""Everything around the network and the diffusion task, one subpackage per concern.

`data/` MAESTRO and SMD data and labels; `evaluation/` inference on test excerpts, pair files,
protocols, metrics, post-processing, reports, baselines; `training/` Lightning machinery and checkpoints;
`analysis/` the quirk ablation; `synth/` the synthetic corpus. Shared: `conventions.py` (frame rate,
key range, velocity scale), `atomic.py` (atomic writes), `tables.py` (Markdown tables); `demo.py` runs the whole chain.
"""
