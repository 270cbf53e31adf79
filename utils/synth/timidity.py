"""A second synthesis engine for the corpus: TiMidity++ with a patch-set configuration.

The corpus draws each piece's "SoundFont" from a list (utils/synth/variety.py); an entry ending in
``.cfg`` is a TiMidity++ configuration and is rendered by the ``timidity`` program instead of
FluidSynth. Debian's ``timidity`` + ``freepats`` packages give ``/etc/timidity/freepats.cfg``: a
Gravis-patch piano with its own samples, envelopes and velocity curve, unlike any SoundFont the
corpus otherwise uses. Reverb and chorus are off, polyphony reduction is off, the gain is fixed
(``TIMIDITY_VOLUME`` percent) and leading silence is kept, so onsets stay where the MIDI puts them.
TiMidity++ always reads the system's default configuration first (on Debian, FluidR3_GM through
``/etc/timidity/timidity.cfg``); the given file then replaces the programs it defines, so the
piano (program 0) is the given file's, and a file that cannot load it is an error, never silence.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile

from utils.synth.render import (FLUIDSYNTH_GAIN, FluidSynthRenderer, Renderer, RendererUnavailable, _num_samples,
                                _warn_if_clipped)
from utils.synth.sampler import SAMPLER_GAIN, SampleSetRenderer, is_sample_folder

CONFIG_SUFFIX = ".cfg"
TIMIDITY_VOLUME = 70  # percent (TiMidity++'s default -A), fixed for every file
TIMIDITY_FLAGS = ("-Ow1S", "--preserve-silence", "--no-polyphony-reduction", "-EFreverb=d", "-EFchorus=d",
                  "-p", "256")  # 16-bit signed stereo WAV, no effects
TIMEOUT_SECONDS = 600  # per file; a 60 s piece renders in well under a second
SILENCE_PEAK = 2 ** -12  # a rendered file with notes whose peak stays below this is an error
_MISSING_PATCH = "Couldn't load instrument"


def is_timidity_config(path: str | Path) -> bool:
    return Path(path).suffix == CONFIG_SUFFIX


def voice_renderer(path: str | Path, sample_rate: int, gain_db: float = 0.0) -> Renderer:
    """The renderer of one piano voice: the sampler for a folder (utils/synth/sampler.py), TiMidity++
    for a ``.cfg`` file, FluidSynth for a SoundFont; ``gain_db`` offsets the sampler's or FluidSynth's
    fixed gain (TiMidity++ plays at its fixed volume only)."""
    scale = 10 ** (gain_db / 20)
    if is_sample_folder(path):
        return SampleSetRenderer(sample_rate, path, gain=SAMPLER_GAIN * scale)
    if is_timidity_config(path):
        if gain_db:
            raise ValueError(f"{path}: a TiMidity++ voice plays at its fixed volume; gain_db must be 0, not {gain_db:g}")
        return TimidityRenderer(sample_rate, path)
    return FluidSynthRenderer(sample_rate, path, gain=FLUIDSYNTH_GAIN * scale)


def _first_error(result: subprocess.CompletedProcess) -> str:
    """The line of timidity's output that says what went wrong (its first error line, else its last)."""
    lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or _MISSING_PATCH in line]
    return (errors or lines or ["no output"])[0 if errors else -1].strip()


class TimidityRenderer:
    """MIDI -> (2, samples) float32 audio through the `timidity` program and one configuration file."""

    name = "timidity"

    def __init__(self, sample_rate: int, config: str | Path):
        self.program = shutil.which("timidity")
        if self.program is None:
            raise RendererUnavailable("timidity not found on PATH (Debian package timidity) for " + str(config))
        self.config = Path(config)
        if not self.config.is_file():
            raise RendererUnavailable(f"{self.config}: TiMidity++ configuration not found")
        self.sample_rate = int(sample_rate)

    def render(self, midi: pretty_midi.PrettyMIDI, duration: float | None = None,
               label: str = "performance") -> np.ndarray:
        total = _num_samples(midi, duration, self.sample_rate)
        with tempfile.TemporaryDirectory(prefix="diffvel-timidity-") as folder:
            midi_path, wav_path = Path(folder) / "in.mid", Path(folder) / "out.wav"
            midi.write(str(midi_path))
            command = [self.program, "-c", str(self.config), *TIMIDITY_FLAGS, "-A", str(TIMIDITY_VOLUME),
                       "-s", str(self.sample_rate), "-o", str(wav_path), str(midi_path)]
            try:
                result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                raise RendererUnavailable(f"{self.config}: timidity did not finish {label} "
                                          f"within {TIMEOUT_SECONDS} s") from None
            if result.returncode != 0 or not wav_path.is_file() or _MISSING_PATCH in result.stdout + result.stderr:
                raise RendererUnavailable(f"{self.config}: timidity failed on {label} ({_first_error(result)})")
            data, rate = soundfile.read(str(wav_path), dtype="float32", always_2d=True)  # (samples, channels)
        if rate != self.sample_rate:
            raise RendererUnavailable(f"{self.config}: timidity wrote {rate} Hz instead of {self.sample_rate}")
        if any(instrument.notes for instrument in midi.instruments) and np.abs(data).max() < SILENCE_PEAK:
            raise RendererUnavailable(f"{self.config}: timidity rendered silence for {label} "
                                      f"(does the configuration map program 0 to a piano patch?)")
        audio = np.zeros((2, total), dtype=np.float32)  # (2, samples)
        stereo = data.T if data.shape[1] == 2 else np.repeat(data.T, 2, axis=0)
        audio[:, : min(total, stereo.shape[1])] = stereo[:, :total]
        _warn_if_clipped(audio, label, self.name)
        return audio
