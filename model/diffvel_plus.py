"""DiffVel+: the paper's network with a dense score conditioner and absolute velocity targets.

Beyond the paper (the paper's `ClassifierFreeDiffRoll` stays the default and unchanged):

- dense score conditioner: the score's frame roll and onset roll (88 + 88 keys per frame; the onset
  roll separates re-struck notes) enter every residual block through a 1x1 convolution added to the
  spectrogram's conditioner, so the network sees per frame and key which notes the score holds,
  instead of 2 FiLM scalars per block;
- absolute velocity targets: the target roll is velocity / 128 as the loader gives it, without the
  paper's per-item min-max normalisation, so that 128 x output (the evaluation's rule) is the MIDI
  velocity itself rather than a velocity relative to the segment's loudest note;
- optional loss weighting of the note cells (a few percent of the roll): weight 1 + note_loss_weight
  on cells where the score's frame roll is on;
- optional note pooling (model/note_pooling.py): every score note's output is the mean over the note,
  in training and in sampling, so the network predicts one velocity per note;
- optional absolute level: the log-mel enters through one fixed map (model/normalization.py) instead of
  the paper's per-item min-max, which stretches every crop to [0, 1] and so hides most of how loud it is;
- optional spectral tilt, random EQ and velocity-dependent brightness (model/augment.py): a random
  tilt, a random smooth gain curve and a random change of how much brighter the piano gets with
  velocity, of each training crop's mel power;
- optional level shift (model/augment.py): each training crop played louder or softer, its notes'
  velocities moved with it at the loudness regression's rate;
- optional band view (model/bands.py): the mel power pooled into a few wide bands, in training and in
  inference, so that less of a particular piano's timbre reaches the network;
- optional loudness conditioner and loudness residual (model/loudness.py): each score note's
  loudness-regression reading on its cells, through a zero-initialised 1x1 convolution per block, or
  added to the network's output so that the network learns a correction of it (need the absolute level);
  the reading is the regression's own or a richer one (model/reading.py), read on the score's clock.

Checkpoints carry the hyperparameter `variant: DiffVelPlus`, so every loader rebuilds this class.
"""
import logging
from contextlib import contextmanager

import torch
import torch.nn as nn

from model.augment import LevelShift, RandomEq, SpectralTilt, VelocityBrightness
from model.bands import MelBands
from model.diffvel import ClassifierFreeDiffRoll
from model.layers import kaiming_conv1d
from model.loudness import LoudnessConditioner, centred_on_notes, floored_on_notes, loudness_roll, note_weights
from model.normalization import LOG_MEL_EPSILON, fixed_level, log_mel, log_mel_of_level
from model.note_pooling import note_ids, pool_notes, rising_edges
from model.reading import check_reading, key_partials
from utils.conventions import FRAMES_PER_SECOND, N_KEYS, UNCONDITIONAL_SPEC_VALUE

log = logging.getLogger(__name__)

VARIANT = "DiffVelPlus"


def keys_first(roll: torch.Tensor) -> torch.Tensor:
    """(B, [1,] T, 88) -> (B, 88, T)."""
    if roll.dim() == 4:
        roll = roll.squeeze(1)
    if roll.dim() != 3 or roll.shape[-1] != N_KEYS:
        raise ValueError(f"score rolls must be (batch, [1,] frames, {N_KEYS}), got shape {tuple(roll.shape)}")
    return roll.transpose(1, 2)


class DiffVelPlus(ClassifierFreeDiffRoll):
    """`ClassifierFreeDiffRoll` + dense score conditioner + absolute targets (+ note-cell loss weight).

    Args: those of ClassifierFreeDiffRoll, plus
        score_conditioner: add the 1x1-convolution score conditioner (frame + onset rolls) per block.
        absolute_velocity: train on velocity / 128 (True) or, as the paper, on min-max normalised rolls.
        note_loss_weight: extra loss weight of cells inside the score's notes (0: the plain mean).
        note_pooling: output the mean over each score note on its cells (needs score_conditioner).
        absolute_level: scale the log-mel by one fixed map (True) or, as the paper, min-max per item.
        tilt_db: training only: a random spectral tilt of up to +-tilt_db dB at the band edges per crop.
        eq_db: training only: a random smooth EQ of up to +-eq_db dB per band per crop.
        brightness_db: training only: a random velocity-dependent brightness of up to +-brightness_db dB
            at the highest mel bin, between the softest and the loudest playing, per crop.
        level_shift_db, level_shift_rate: training only: each crop's audio scaled by up to
            +-level_shift_db dB and its notes' velocities moved by level_shift_rate units per dB.
        mel_bands: training and inference: the mel power pooled into this many wide bands (model/bands.py;
            1: the level per frame only; 0: off, the full mel).
        loudness_conditioner: add each score note's loudness-regression reading as a conditioner per block
            (model/loudness.py; needs score_conditioner and absolute_level).
        loudness_residual: x0 = that reading + the network's output (a correction of the reading; same needs).
        loudness_reading: which reading (model/reading.py): "onset", the loudness regression's own, or
            "notes", which also reads each note's partials and its chord. The notes reading always reads the
            full mel; with mel_bands > 0 only the network hears the bands.
        residual_centred: with loudness_residual, the network's correction has mean 0 over each crop's note
            cells: the reading sets the crop's level and the network only moves notes against each other.
        residual_per_note: with residual_centred, each note (not each cell) weighs the same in that mean, as
            in the evaluation, and no note of the score ends below velocity 1 (a score note was played).
    """

    # modules that start at zero: fine-tuning (init_weights=) from a checkpoint without them starts where it was
    ZERO_INITIALISED = ("loudness.",)

    def __init__(self, score_conditioner: bool = True, absolute_velocity: bool = True,
                 note_loss_weight: float = 0.0, note_pooling: bool = False, absolute_level: bool = False,
                 tilt_db: float = 0.0, eq_db: float = 0.0, brightness_db: float = 0.0, level_shift_db: float = 0.0,
                 level_shift_rate: float = 2.7, mel_bands: int = 0, loudness_conditioner: bool = False,
                 loudness_residual: bool = False, loudness_reading: str = "onset", residual_centred: bool = False,
                 residual_per_note: bool = False, variant: str = VARIANT, **network_args):
        if variant != VARIANT:
            raise ValueError(f"DiffVelPlus built with variant={variant!r}")
        if not note_loss_weight >= 0:
            raise ValueError(f"model.args.note_loss_weight={note_loss_weight}: must be >= 0")
        if note_pooling and not score_conditioner:
            raise ValueError("model.args.note_pooling=true needs model.args.score_conditioner=true (the notes come from the score)")
        for key, value in (("loudness_conditioner", loudness_conditioner), ("loudness_residual", loudness_residual)):
            if value and not (score_conditioner and absolute_level):
                raise ValueError(f"model.args.{key}=true needs model.args.score_conditioner=true (the notes) "
                                 "and model.args.absolute_level=true (the level)")
        check_reading(loudness_reading)
        if residual_centred and not loudness_residual:
            raise ValueError("model.args.residual_centred=true needs model.args.loudness_residual=true")
        if residual_per_note and not residual_centred:
            raise ValueError("model.args.residual_per_note=true needs model.args.residual_centred=true")
        super().__init__(**network_args)
        self.save_hyperparameters({**self.hparams, "variant": VARIANT, "score_conditioner": bool(score_conditioner),
                                   "absolute_velocity": bool(absolute_velocity),
                                   "note_loss_weight": float(note_loss_weight),
                                   "note_pooling": bool(note_pooling), "absolute_level": bool(absolute_level),
                                   "tilt_db": float(tilt_db), "eq_db": float(eq_db),
                                   "brightness_db": float(brightness_db), "level_shift_db": float(level_shift_db),
                                   "level_shift_rate": float(level_shift_rate), "mel_bands": mel_bands,
                                   "loudness_conditioner": bool(loudness_conditioner),
                                   "loudness_residual": bool(loudness_residual),
                                   "loudness_reading": loudness_reading, "residual_centred": bool(residual_centred),
                                   "residual_per_note": bool(residual_per_note)})
        self.absolute_velocity = bool(absolute_velocity)
        self.absolute_level = bool(absolute_level)
        self.tilt = SpectralTilt(tilt_db)
        self.eq = RandomEq(eq_db)
        self.brightness = VelocityBrightness(brightness_db)
        self.level_shift = LevelShift(level_shift_db, level_shift_rate)
        self.bands = MelBands(mel_bands, network_args["n_mels"])
        self.note_pooling = bool(note_pooling)
        self.note_loss_weight = float(note_loss_weight)
        channels = network_args["residual_channels"]
        self.score_projections = nn.ModuleList(
            kaiming_conv1d(2 * N_KEYS, 2 * channels, 1) for _ in self.residual_layers
        ) if score_conditioner else None
        self.loudness = LoudnessConditioner(channels, len(self.residual_layers)) if loudness_conditioner else None
        self.loudness_residual = bool(loudness_residual)
        self.loudness_reading = loudness_reading
        self.residual_centred = bool(residual_centred)
        self.residual_per_note = bool(residual_per_note)
        # the notes reading reads the full mel; the bands, if any, go to the network's blocks only
        self.reads_full_mel = loudness_reading == "notes" and mel_bands > 0 and (loudness_conditioner or loudness_residual)
        partials = key_partials(self.mel_layer.mel_scale.fb, self.mel_layer.sample_rate) if loudness_reading == "notes" else None
        self.register_buffer("partials", partials, persistent=False)  # (88, n_mels), read by the notes reading only
        self.score_fps = FRAMES_PER_SECOND  # the score roll's clock (score_clock), read by the loudness reading

    # ----- conditions -----

    def spectrogram(self, waveform):
        """Log-mel (re-voiced, tilted and equalised in training; pooled into bands if asked, unless the notes
        reading needs the full mel: then `heard` pools it), at its absolute level or min-max normalised.
        (B, L) -> (B, n_mels, T)."""
        power = self.eq(self.tilt(self.brightness(self.mel_power(waveform))))  # (B, n_mels, T)
        spec = log_mel(power if self.reads_full_mel else self.bands(power))
        return fixed_level(spec) if self.absolute_level else self.normalize_spec(spec)

    def heard(self, spectrogram):
        """What the network's blocks hear: the spectrogram, or its bands when only the notes reading reads
        the full mel (the bands of the mel power, at the absolute level; an unconditional item, all
        UNCONDITIONAL_SPEC_VALUE, stays as it is).  (B, n_mels, T) -> (B, n_mels, T)."""
        if not self.reads_full_mel:
            return spectrogram
        power = (torch.exp(log_mel_of_level(spectrogram)) - LOG_MEL_EPSILON).clamp(min=0.0)
        unconditional = (spectrogram == UNCONDITIONAL_SPEC_VALUE).flatten(1).all(1).view(-1, 1, 1)  # (B, 1, 1)
        return torch.where(unconditional, spectrogram, fixed_level(log_mel(self.bands(power))))

    def score_features(self, frame_roll, onset_roll=None):
        """Frame and onset rolls stacked as channels.  (B, [1,] T, 88) x 2 -> (B, 176, T)."""
        if self.score_projections is None:
            return None
        frame = keys_first(frame_roll)
        if onset_roll is None:
            log.warning("DiffVelPlus given no onset roll: onsets read off the frame roll (re-strikes merge)")
            onset = rising_edges(frame)
        else:
            onset = keys_first(onset_roll)
        return torch.cat([frame, onset.to(frame.dtype)], dim=1)

    def conditioners(self, spectrogram, score=None):
        """Spectrogram projections plus, per block, the score's (and the loudness conditioner's); with the
        loudness residual, the loudness roll (B, 88, T) and its centring weight (centring_weight) follow as
        one more item (a pair)."""
        conditioners = super().conditioners(self.heard(spectrogram))
        if self.score_projections is None:
            return conditioners
        if score is None:
            raise ValueError("DiffVelPlus needs the score features (score_features(frame_roll, onset_roll))")
        frames = conditioners[0].shape[-1]
        conditioners = [c + proj(score[..., :frames]) for c, proj in zip(conditioners, self.score_projections)]
        if self.loudness is None and not self.loudness_residual:
            return conditioners
        roll = loudness_roll(log_mel_of_level(spectrogram), score, self.loudness_reading, self.score_fps,
                             self.partials)  # (B, 88, T)
        if self.loudness is not None:
            conditioners = [c + loud for c, loud in zip(conditioners, self.loudness(roll))]
        return conditioners + [(roll, self.centring_weight(roll, score))] if self.loudness_residual else conditioners

    def centring_weight(self, roll, score):
        """Each cell's weight in the mean that centres the correction, computed once per segment: 1 per note
        cell, or 1 / its note's cells with residual_per_note; None without residual_centred.
        roll (B, 88, T), score (B, 176, >= T) -> (B, 1, T, 88) or None."""
        if not self.residual_centred:
            return None
        if self.residual_per_note:
            frames = roll.shape[-1]
            weight = note_weights(note_ids(score[:, :N_KEYS, :frames], score[:, N_KEYS:, :frames]))  # (B, 88, T)
        else:
            weight = (roll > 0).float()  # (B, 88, T)
        return weight.transpose(1, 2).unsqueeze(1)

    def denoise(self, x_t, diffusion_step, film_feat, conditioners):
        """The network's x0 (B, 1, T, 88), plus the loudness roll (the last conditioner) with the residual."""
        if not self.loudness_residual:
            return super().denoise(x_t, diffusion_step, film_feat, conditioners)
        *per_block, (roll, weight) = conditioners
        x0 = super().denoise(x_t, diffusion_step, film_feat, per_block).float()  # (B, 1, T, 88)
        reading = roll.float().transpose(1, 2).unsqueeze(1)  # (B, 1, T, 88), float32 also under bf16 autocast
        if weight is None:
            return reading + x0
        x0 = reading + centred_on_notes(x0, weight)
        return floored_on_notes(x0, weight > 0) if self.residual_per_note else x0

    @contextmanager
    def score_clock(self, score_fps):
        """Read the loudness at score frames of 1 / score_fps s (float, or (B,) per item) inside the block."""
        previous, self.score_fps = self.score_fps, score_fps
        try:
            yield self
        finally:
            self.score_fps = previous

    def finish_x0(self, x0, score=None):
        """x0 (B, 1, T, 88), pooled per score note when note_pooling is on."""
        return pool_notes(x0, score) if self.note_pooling else x0

    # ----- training objective -----

    def step(self, batch):
        """The task's step on the level-shifted crop, with its velocity roll at hand for the brightness."""
        audio, velocity = self.level_shift(batch["audio"], batch["velocity"])
        with self.brightness.given(velocity), self.score_clock(batch.get("score_fps", FRAMES_PER_SECOND)):
            return super().step({**batch, "audio": audio, "velocity": velocity})

    def velocity_target(self, velocity):
        """velocity / 128 as given (absolute), or the paper's per-item min-max normalisation."""
        return velocity if self.absolute_velocity else super().velocity_target(velocity)

    def diffusion_loss(self, label, prediction, frame_roll):
        """The configured loss, with weight 1 + note_loss_weight on the score's note cells."""
        if self.note_loss_weight == 0:
            return super().diffusion_loss(label, prediction, frame_roll)
        weight = 1.0 + self.note_loss_weight * (frame_roll > 0).to(label.dtype)  # (B, 1, T, 88)
        cells = self.loss_fn(prediction, label, reduction="none")
        return (weight * cells).sum() / weight.sum()
