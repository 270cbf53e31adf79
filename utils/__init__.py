"""Everything around the network and the diffusion task, one subpackage per concern.

`data/` MAESTRO and SMD data and labels; `evaluation/` inference on test excerpts, pair files,
protocols, metrics, post-processing, reports, baselines; `training/` Lightning machinery and checkpoints;
`analysis/` the quirk ablation; `synth/` the synthetic corpus; `estimate/` velocity estimation for any
recording + MIDI (estimate_velocity.py). Shared: `conventions.py` (frame rate, key range, velocity scale),
`atomic.py` (atomic writes), `tables.py` (Markdown tables), `checks.py` (the up-front option and output-folder
checks and one-line errors of every command: training, inference, post-processing, pack_smd), `precision.py`
(precision=auto: bf16 only where native; float32_matmul_precision; training, inference and benchmarks);
`demo.py` runs the whole chain.
"""
