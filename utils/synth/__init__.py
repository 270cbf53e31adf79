"""Synthetic piano corpus: expressive MIDI performances rendered to audio, in MAESTRO/SMD layouts.

    python -m utils.synth --out data/synth            # demo corpus (a few minutes of CPU)
    python -m utils.synth --out /tmp/tiny --tiny      # CI-sized corpus
    python -m utils.synth.loudness --renderer additive

See docs/synth.md.
"""
from utils.synth.corpus import TINY, CorpusConfig, CorpusSummary, write_corpus
from utils.synth.performance import Piece, generate_performance, midi_bytes
from utils.synth.render import AdditiveRenderer, FluidSynthRenderer, RendererUnavailable, find_soundfont, make_renderer

__all__ = ["TINY", "AdditiveRenderer", "CorpusConfig", "CorpusSummary", "FluidSynthRenderer", "Piece",
           "RendererUnavailable", "find_soundfont", "generate_performance", "make_renderer", "midi_bytes",
           "write_corpus"]
