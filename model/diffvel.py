"""The DiffVel network: a DiffWave-style stack over time with the 88 keys as channels.

Conditioned twice: the log-mel spectrogram enters every residual block through a 1x1 convolution,
and the 640x88 score frame roll sets one FiLM (gamma, beta) pair per block through a linear layer.
Parameter names equal the published `ClassifierFreeDiffRoll`, so the authors' checkpoints load.
"""
from math import sqrt

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchaudio

from model.layers import DiffusionEmbedding, ResidualBlockWithFiLM, kaiming_conv1d
from model.normalization import MinMaxNormalization, log_mel
from task.diffusion import SpecRollDiffusion, plain
from utils.training.checkpoint import CheckpointError, check_architecture, check_state_dict, load_checkpoint
from utils.conventions import N_KEYS, SEGMENT_FRAMES, UNCONDITIONAL_SPEC_VALUE


class ClassifierFreeDiffRoll(SpecRollDiffusion):
    """x0-predicting velocity denoiser with spectrogram dropout for classifier-free guidance.

    Args mirror the published constructor (`model.args` + `spec_args` + the task config).
    Only the paper's variant is built: `condition='fixed'` (unconditional spectrogram = all -1).
    """

    def __init__(
        self,
        residual_channels: int,
        unconditional: bool,
        condition: str,
        n_mels: int,
        norm_args,
        residual_layers: int = 30,
        kernel_size: int = 3,
        dilation_base: int = 1,
        dilation_bound: int = 4,
        spec_args=None,
        spec_dropout: float = 0.5,
        inpainting_t=None,
        inpainting_f=None,
        **task_args,
    ):
        if unconditional:
            raise ValueError("ClassifierFreeDiffRoll needs the spectrogram condition: set model.args.unconditional=False")
        if condition != "fixed":
            raise ValueError(f"condition {condition!r} is not supported; DiffVel uses condition='fixed'")
        if inpainting_t is not None or inpainting_f is not None:
            raise ValueError("spectrogram inpainting (inpainting_t/inpainting_f) is not part of DiffVel")
        spec_args = dict(spec_args or {})
        if spec_args.get("n_mels", n_mels) != n_mels:
            raise ValueError(f"model n_mels={n_mels} differs from spec_args.n_mels={spec_args['n_mels']}")
        super().__init__(**task_args)
        self.save_hyperparameters(
            dict(
                residual_channels=residual_channels, unconditional=unconditional, condition=condition,
                n_mels=n_mels, norm_args=list(norm_args), residual_layers=residual_layers,
                kernel_size=kernel_size, dilation_base=dilation_base, dilation_bound=dilation_bound,
                spec_args=spec_args, spec_dropout=spec_dropout, inpainting_t=None, inpainting_f=None,
                **self.task_hparams,
            )
        )
        self.spec_dropout = spec_dropout

        self.input_projection = kaiming_conv1d(N_KEYS, residual_channels, 1)
        self.diffusion_embedding = DiffusionEmbedding(self.schedule.timesteps)
        self.residual_layers = nn.ModuleList(
            ResidualBlockWithFiLM(n_mels, residual_channels, dilation_base ** (i % dilation_bound), kernel_size)
            for i in range(residual_layers)
        )
        # one (gamma, beta) pair per residual layer from the flattened 640x88 score roll
        self.film_layer = nn.Linear(SEGMENT_FRAMES * N_KEYS, 2 * residual_layers)
        self.skip_projection = kaiming_conv1d(residual_channels, residual_channels, 1)
        self.output_projection = kaiming_conv1d(residual_channels, N_KEYS, 1)
        nn.init.zeros_(self.output_projection.weight)

        self.normalize_spec = MinMaxNormalization(0, 1, norm_args[2])
        self.normalize = MinMaxNormalization(norm_args[0], norm_args[1], norm_args[2])
        self.mel_layer = torchaudio.transforms.MelSpectrogram(**spec_args)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location="cpu", config_args=None, **overrides):
        """Lightning's entry point, through the safe loader (see `load_diffvel`)."""
        return load_diffvel(checkpoint_path, map_location=map_location, config_args=config_args, **overrides)

    # ----- conditions: each can be computed once per segment and reused at every step -----

    def mel_power(self, waveform: torch.Tensor) -> torch.Tensor:
        """Mel power of the waveform.  (B, L) -> (B, n_mels, L // hop + 1)."""
        if waveform.dim() != 2:
            raise ValueError(f"waveform must be (batch, samples), got shape {tuple(waveform.shape)}")
        return self.mel_layer(waveform)

    def spectrogram(self, waveform: torch.Tensor) -> torch.Tensor:
        """Log-mel of the waveform, min-max normalised per item.  (B, L) -> (B, n_mels, L // hop + 1)."""
        return self.normalize_spec(log_mel(self.mel_power(waveform)))

    def spec_dropout_(self, spec: torch.Tensor, p: float) -> torch.Tensor:
        """Classifier-free training: set whole items to the unconditional value with probability p."""
        dropped = torch.distributions.Bernoulli(probs=p).sample((spec.shape[0],)).bool().to(spec.device)
        spec[dropped] = UNCONDITIONAL_SPEC_VALUE
        return spec

    def film(self, frame_roll: torch.Tensor) -> torch.Tensor:
        """FiLM parameters from the score.  (B, [1,] 640, 88) -> (B, 2 * layers)."""
        per_item = frame_roll.shape[1:].numel() if frame_roll.dim() > 1 else 0
        if frame_roll.dim() < 3 or per_item != SEGMENT_FRAMES * N_KEYS:
            raise ValueError(
                f"frame_roll must be (batch, 1, {SEGMENT_FRAMES}, {N_KEYS}), got shape {tuple(frame_roll.shape)}"
            )
        return self.film_layer(torch.flatten(frame_roll, start_dim=1))

    def score_features(self, frame_roll: torch.Tensor, onset_roll: torch.Tensor | None = None):
        """What `conditioners` needs of the score besides FiLM: nothing for the paper's network."""
        return None

    def conditioners(self, spectrogram: torch.Tensor, score=None) -> list[torch.Tensor]:
        """Per-layer 1x1 projections of the spectrogram.  (B, n_mels, T) -> layers x (B, 2C, T).

        `score` (from `score_features`) is unused here; variants that condition densely on it add it.
        """
        return [layer.project_conditioner(spectrogram) for layer in self.residual_layers]

    # ----- the denoiser -----

    def finish_x0(self, x0: torch.Tensor, score=None) -> torch.Tensor:
        """The denoiser's x0 as it is: the paper's network has no output stage."""
        return x0

    def denoise(self, x_t, diffusion_step, film_feat, conditioners) -> torch.Tensor:
        """Predict x0 from x_t given precomputed conditions.

        x_t (B, 1, T, 88); diffusion_step (B,); film_feat (B, 2L); conditioners L x (B, 2C, T).
        Returns x0_pred (B, 1, T, 88).
        """
        x = F.relu(self.input_projection(x_t.squeeze(1).transpose(1, 2)))  # (B, C, T)
        step_embedding = self.diffusion_embedding(diffusion_step)  # (B, 512)
        skip = 0
        for i, (layer, conditioner) in enumerate(zip(self.residual_layers, conditioners)):
            gamma, beta = film_feat[:, 2 * i], film_feat[:, 2 * i + 1]
            x, skip_connection = layer(x, step_embedding, gamma, beta, conditioner)
            skip = skip + skip_connection
        x = skip / sqrt(len(self.residual_layers))
        x = self.output_projection(F.relu(self.skip_projection(x)))  # (B, 88, T)
        return x.transpose(1, 2).unsqueeze(1)  # (B, 1, T, 88)

    def forward(self, x_t, waveform, frame_roll, diffusion_step, sampling: bool = False, onset_roll=None):
        """The published forward: returns (x0_pred (B, 1, T, 88), spectrogram (B, n_mels, T)).

        sampling=True replaces the spectrogram by the unconditional one (all -1). `onset_roll`
        (B, [1,] T, 88), the score's onsets, is read only by variants with a dense score conditioner.
        """
        if x_t.dim() != 4 or x_t.shape[1] != 1 or x_t.shape[-1] != N_KEYS:
            raise ValueError(f"x_t must be (batch, 1, frames, {N_KEYS}), got shape {tuple(x_t.shape)}")
        film_feat = self.film(frame_roll)
        spec = self.spectrogram(waveform)
        if self.training:
            spec = self.spec_dropout_(spec, self.spec_dropout)
        if sampling:
            spec = torch.full_like(spec, UNCONDITIONAL_SPEC_VALUE)
        frames = min(x_t.shape[2], spec.shape[-1])
        if frames < x_t.shape[2]:
            raise ValueError(
                f"waveform of {waveform.shape[-1]} samples gives {spec.shape[-1]} frames, "
                f"fewer than the {x_t.shape[2]} frames of x_t"
            )
        spec = spec[..., :frames]
        score = self.score_features(frame_roll, onset_roll)
        x0 = self.denoise(x_t, diffusion_step, film_feat, self.conditioners(spec, score))
        return self.finish_x0(x0, score), spec


def load_diffvel(checkpoint_path, map_location="cpu", config_args: dict | None = None, **overrides):
    """Build the network a checkpoint holds (ours or the authors'), strictly.

    The class is the checkpoint's own: hyperparameter `variant` (absent: the paper's ClassifierFreeDiffRoll).

    `overrides` replace stored hyperparameters (the paper passes frame_threshold=0.5 and
    sampling=cfg.task.sampling); `config_args`, if given, must agree with the checkpoint's architecture.
    """
    checkpoint = load_checkpoint(checkpoint_path, map_location=map_location)
    hparams = dict(checkpoint["hyper_parameters"])
    if not hparams:
        raise CheckpointError(f"{checkpoint_path}: no hyper_parameters stored; build the model from the config instead")
    if config_args is not None:
        check_architecture(checkpoint_path, hparams, config_args)
    hparams.update({key: plain(value) for key, value in overrides.items()})
    model = network_class(checkpoint_path, hparams.get("variant"))(**hparams)
    check_state_dict(checkpoint_path, model, checkpoint["state_dict"])
    model.load_state_dict(checkpoint["state_dict"], strict=True)
    return model.to(map_location) if map_location is not None else model


def network_class(checkpoint_path, variant: str | None):
    """The class of a checkpoint's `variant` hyperparameter (None: the paper's network)."""
    if variant is None:
        return ClassifierFreeDiffRoll
    from model.variants import VARIANTS

    if variant not in VARIANTS:
        raise CheckpointError(f"{checkpoint_path}: unknown model variant {variant!r} (known: {sorted(VARIANTS)})")
    return VARIANTS[variant]
