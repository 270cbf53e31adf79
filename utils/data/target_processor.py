"""Frame-level note and pedal targets of one audio segment, computed from MIDI event strings.

:class:`TargetProcessor` re-implements the behaviour of the ``TargetProcessor`` that the paper's
SMD test used (a copy of Kong et al.'s piano_transcription code), quirks included, so that the
paper protocol reproduces the published labels number for number
(``tests/reference/test_labels.npz``). The corrected labels (every note of the MIDI events) are in
:mod:`utils.data.corrected_labels`; both read the event strings with the parsers here.

The MIDI events are the ``str()`` of mido messages, e.g. ``'note_on channel=0 note=60 velocity=80
time=0'``, with their absolute times in seconds in a parallel array (the SMD .h5 ``midi_event`` /
``midi_event_time`` datasets). Key index 0 is MIDI note ``MIN_MIDI`` (A0).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from utils.conventions import MIN_MIDI, N_KEYS, SUSTAIN_CONTROL, SUSTAIN_THRESHOLD

REGRESSION_WINDOW_SECONDS = 0.05  # Kong et al.: regression targets fall to 0 at 50 ms from an event


@dataclass
class NoteEvent:
    """One note as the paper's target processor pairs it (times are seconds, possibly numpy scalars)."""

    midi_note: int
    onset_time: float
    offset_time: float
    velocity: int


@dataclass
class PedalEvent:
    """One sustain-pedal press (seconds)."""

    onset_time: float
    offset_time: float


def parse_message(event: str) -> tuple[str, dict[str, str]]:
    """Split a mido message string into its type and its ``key=value`` fields.

    ``'note_on channel=0 note=60 velocity=80 time=0'`` -> ``('note_on', {'channel': '0', ...})``.
    Meta messages (``"MetaMessage('track_name', ...)"``) come back with a type that no caller uses.
    """
    words = event.split(" ")
    fields = dict(word.split("=", 1) for word in words[1:] if "=" in word)
    return words[0], fields


def note_change(event: str) -> tuple[int, int] | None:
    """(midi_note, velocity) of a note_on/note_off string (velocity 0 for note_off), else None."""
    kind, fields = parse_message(event)
    if kind == "note_on":
        return int(fields["note"]), int(fields["velocity"])
    if kind == "note_off":
        return int(fields["note"]), 0
    return None


def pedal_value(event: str) -> int | None:
    """The CC64 value of a sustain-pedal control change string, else None."""
    kind, fields = parse_message(event)
    if kind == "control_change" and fields.get("control") == str(SUSTAIN_CONTROL):
        return int(fields["value"])
    return None


def regression_roll(event_distances: np.ndarray, frames_per_second: float) -> np.ndarray:
    """Kong et al.'s onset/offset regression target of one key, vectorised.

    ``event_distances`` (frames,) holds, at each event frame, the distance in seconds from the
    frame's time to the true event time (values < 0.5) and 1 elsewhere. Each frame gets
    ``1 - 20 * min(|distance to the nearest event|, 0.05)``, where, as published, frames in the
    second half of a gap measure their distance to the NEXT event but subtract the PREVIOUS event's
    offset.
    """
    step = 1.0 / frames_per_second
    event_frames = np.flatnonzero(event_distances < 0.5)  # (E,)
    if len(event_frames) == 0:
        return np.zeros_like(event_distances)  # 1 - clip(|1|, 0, 0.05) * 20
    frames = np.arange(len(event_distances))
    previous = np.maximum(np.searchsorted(event_frames, frames, side="right") - 1, 0)  # (frames,)
    source = event_frames[previous]  # event whose sub-frame offset is subtracted
    following = event_frames[np.minimum(previous + 1, len(event_frames) - 1)]
    midpoint = (source + following) // 2
    second_half = (frames >= source) & (frames >= midpoint) & (previous + 1 < len(event_frames))
    anchor = np.where(second_half, following, source)  # event the frame counts its distance to
    distance = step * (frames - anchor) - event_distances[source]
    return 1.0 - np.clip(np.abs(distance), 0.0, REGRESSION_WINDOW_SECONDS) * 20


class TargetProcessor:
    """The paper's SMD test labels (behaviour of Kong et al.'s ``TargetProcessor``).

    Published behaviour kept on purpose (it changes the labels):

    * only the events from ``bgn - (fin - bgn)`` to ``fin - 1`` are parsed, where ``bgn`` is the
      first event after ``start_time`` and ``fin`` the first event after the segment end (the last
      event of the file when none is), so notes struck long before the segment are missed and the
      very last event of the file is never read;
    * a re-strike of a sounding key replaces the pending onset (the earlier strike is lost);
    * notes still open at the end of the parsed events end at the segment end, and their key is
      masked from their onset frame on (a negative onset frame masks the LAST frames, as published);
    * keys outside the piano are clipped onto key 0 / 87;
    * pedal extension moves an offset that lies strictly inside a press to the release; a re-strike
      inside the same press ends the earlier note at the re-strike; the note that ends after a
      release is not examined against the next press;
    * ``frames = round(segment_seconds * frames_per_second) + 1`` (636 at 31 fps), note frames
      ``[round(onset), round(offset)]`` inclusive.
    """

    def __init__(self, segment_seconds: float, frames_per_second: float,
                 begin_note: int = MIN_MIDI, classes_num: int = N_KEYS):
        self.segment_seconds = segment_seconds
        self.frames_per_second = frames_per_second
        self.begin_note = begin_note
        self.classes_num = classes_num
        self.frames_num = int(round(segment_seconds * frames_per_second)) + 1

    def process(self, start_time: float, midi_event_times: np.ndarray, midi_events: Sequence[str],
                extend_pedal: bool = True, note_shift: int = 0
                ) -> tuple[dict[str, np.ndarray], list[NoteEvent], list[PedalEvent]]:
        """Targets of the segment ``[start_time, start_time + segment_seconds]``.

        Returns ``(targets, note_events, pedal_events)``; ``targets`` holds float64 rolls
        ``onset_roll``, ``offset_roll``, ``reg_onset_roll``, ``reg_offset_roll``, ``frame_roll``,
        ``velocity_roll`` (raw MIDI velocity over the whole note), ``mask_roll`` (frames, 88) and
        ``pedal_onset_roll``, ``pedal_offset_roll``, ``reg_pedal_onset_roll``,
        ``reg_pedal_offset_roll``, ``pedal_frame_roll`` (frames,).
        """
        times = np.asarray(midi_event_times)  # indexed below: keeps the stored float type
        segment_end = start_time + self.segment_seconds
        note_events, pedal_events, open_notes = self._pair_events(start_time, segment_end, times, midi_events)
        if extend_pedal:
            note_events = self._extend_pedal(note_events, pedal_events)
        targets = self._note_targets(start_time, note_events, open_notes, note_shift)
        targets.update(self._pedal_targets(start_time, pedal_events))
        return targets, note_events, pedal_events

    def _pair_events(self, start_time, segment_end, times, midi_events):
        """Pair onsets with offsets and pedal presses with releases over the published event window."""
        after_start = np.flatnonzero(times > start_time)
        after_end = np.flatnonzero(times > segment_end)
        begin = after_start[0] if len(after_start) else len(times) - 1
        finish = after_end[0] if len(after_end) else len(times) - 1
        first = max(begin - (finish - begin), 0)

        note_events: list[NoteEvent] = []
        pedal_events: list[PedalEvent] = []
        pending: dict[int, tuple] = {}  # midi_note -> (onset_time, velocity)
        pedal_onset = None
        for i in range(first, finish):
            change = note_change(midi_events[i])
            if change is not None:
                midi_note, velocity = change
                if velocity > 0:
                    pending[midi_note] = (times[i], velocity)
                elif midi_note in pending:
                    onset_time, onset_velocity = pending.pop(midi_note)
                    note_events.append(NoteEvent(midi_note, onset_time, times[i], onset_velocity))
                continue
            value = pedal_value(midi_events[i])
            if value is None:
                continue
            if value >= SUSTAIN_THRESHOLD:
                if pedal_onset is None:
                    pedal_onset = times[i]
            elif pedal_onset is not None:
                pedal_events.append(PedalEvent(pedal_onset, times[i]))
                pedal_onset = None

        for midi_note, (onset_time, velocity) in pending.items():
            note_events.append(NoteEvent(midi_note, onset_time, segment_end, velocity))
        if pedal_onset is not None:
            pedal_events.append(PedalEvent(pedal_onset, segment_end))
        return note_events, pedal_events, pending

    @staticmethod
    def _extend_pedal(note_events: list[NoteEvent], pedal_events: list[PedalEvent]) -> list[NoteEvent]:
        """Move note offsets that fall inside a pedal press to its release (published walk order)."""
        extended: list[NoteEvent] = []
        next_note = 0
        for pedal in pedal_events:
            sustained: dict[int, int] = {}  # midi_note -> index in `extended` of its extended note
            while next_note < len(note_events):
                note = note_events[next_note]
                next_note += 1
                if pedal.onset_time < note.offset_time < pedal.offset_time:
                    if note.midi_note in sustained:
                        extended[sustained.pop(note.midi_note)].offset_time = note.onset_time
                    note.offset_time = pedal.offset_time
                    sustained[note.midi_note] = len(extended)
                extended.append(note)
                if note.offset_time > pedal.offset_time:
                    break
        extended.extend(note_events[next_note:])
        return extended

    def _frame(self, seconds) -> int:
        return int(round(seconds * self.frames_per_second))

    def _note_targets(self, start_time, note_events, open_notes, note_shift) -> dict[str, np.ndarray]:
        shape = (self.frames_num, self.classes_num)
        onset_roll, offset_roll = np.zeros(shape), np.zeros(shape)
        frame_roll, velocity_roll = np.zeros(shape), np.zeros(shape)
        reg_onset_roll, reg_offset_roll, mask_roll = np.ones(shape), np.ones(shape), np.ones(shape)
        last_key = self.classes_num - 1

        for note in note_events:
            key = int(np.clip(note.midi_note - self.begin_note + note_shift, 0, last_key))
            onset_frame = self._frame(note.onset_time - start_time)
            offset_frame = self._frame(note.offset_time - start_time)
            if offset_frame < 0:
                continue
            frame_roll[max(onset_frame, 0): offset_frame + 1, key] = 1
            velocity_roll[max(onset_frame, 0): offset_frame + 1, key] = note.velocity
            offset_roll[offset_frame, key] = 1
            reg_offset_roll[offset_frame, key] = \
                (note.offset_time - start_time) - (offset_frame / self.frames_per_second)
            if onset_frame >= 0:
                onset_roll[onset_frame, key] = 1
                reg_onset_roll[onset_frame, key] = \
                    (note.onset_time - start_time) - (onset_frame / self.frames_per_second)
            else:
                mask_roll[: offset_frame + 1, key] = 0  # note crossing the segment start

        for key in range(self.classes_num):
            reg_onset_roll[:, key] = regression_roll(reg_onset_roll[:, key], self.frames_per_second)
            reg_offset_roll[:, key] = regression_roll(reg_offset_roll[:, key], self.frames_per_second)

        for midi_note, (onset_time, _) in open_notes.items():
            key = int(np.clip(midi_note - self.begin_note + note_shift, 0, last_key))
            mask_roll[self._frame(onset_time - start_time):, key] = 0  # negative start: published slice

        return {"onset_roll": onset_roll, "offset_roll": offset_roll,
                "reg_onset_roll": reg_onset_roll, "reg_offset_roll": reg_offset_roll,
                "frame_roll": frame_roll, "velocity_roll": velocity_roll, "mask_roll": mask_roll}

    def _pedal_targets(self, start_time, pedal_events) -> dict[str, np.ndarray]:
        pedal_onset_roll, pedal_offset_roll = np.zeros(self.frames_num), np.zeros(self.frames_num)
        reg_pedal_onset_roll, reg_pedal_offset_roll = np.ones(self.frames_num), np.ones(self.frames_num)
        pedal_frame_roll = np.zeros(self.frames_num)
        for pedal in pedal_events:
            onset_frame = self._frame(pedal.onset_time - start_time)
            offset_frame = self._frame(pedal.offset_time - start_time)
            if offset_frame < 0:
                continue
            pedal_frame_roll[max(onset_frame, 0): offset_frame + 1] = 1
            pedal_offset_roll[offset_frame] = 1
            reg_pedal_offset_roll[offset_frame] = \
                (pedal.offset_time - start_time) - (offset_frame / self.frames_per_second)
            if onset_frame >= 0:
                pedal_onset_roll[onset_frame] = 1
                reg_pedal_onset_roll[onset_frame] = \
                    (pedal.onset_time - start_time) - (onset_frame / self.frames_per_second)
        return {"pedal_onset_roll": pedal_onset_roll, "pedal_offset_roll": pedal_offset_roll,
                "reg_pedal_onset_roll": regression_roll(reg_pedal_onset_roll, self.frames_per_second),
                "reg_pedal_offset_roll": regression_roll(reg_pedal_offset_roll, self.frames_per_second),
                "pedal_frame_roll": pedal_frame_roll}
