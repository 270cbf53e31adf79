"""Velocity estimation for anyone's recording: audio + MIDI of the same performance -> MIDI with velocities.

One concern per module:

* errors.py    EstimateError, the one-line "file: problem" error every bad input raises
* midi_io.py   notes with absolute times from any MIDI file; output with only note_on velocities changed
* smf_bytes.py the byte offset of every note_on velocity in a Standard MIDI File (exact rewriting)
* audio.py     any soundfile-readable audio -> 16 kHz mono float32
* segments.py  overlapping 20.48 s segments, their score rolls, the note -> segment assignment
* rules.py     the note rule: one velocity per note from the model's output over the note
* checks.py    alignment (onsets vs spectral-flux peaks) and length warnings
* loudness.py  the loudness regression (method=loudness); blend.py: method=blend and method=unheard
* model_io.py  the shipped checkpoints and the device
* pipeline.py  one audio/MIDI pair end to end; outputs.py: CSV rows and summary; plot.py: the PNG
* files.py     paths: single pair, folder pairs matched by file stem, output never over an input

Entry point: estimate_velocity.py (docs/estimate.md).
"""
