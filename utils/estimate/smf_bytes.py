"""Where each note_on velocity byte lies in a Standard MIDI File, so it can be replaced in place.

Rewriting only these bytes keeps everything else of the file byte-for-byte: running status, meta
and sysex events, unusual delta-time encodings, chunks mido does not read. The walk follows the
same rules as mido's reader (running status is set by every status byte except meta 0xFF), and
`velocity_offsets` returns None when the file is not a plain SMF, so the caller can fall back to
re-encoding with mido.
"""
from __future__ import annotations

import struct

# data bytes after a channel status byte, by its high nibble
_DATA_BYTES = {0x8: 2, 0x9: 2, 0xA: 2, 0xB: 2, 0xC: 1, 0xD: 1, 0xE: 2}


def _varlen(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of a variable-length quantity at `pos`."""
    value = 0
    for _ in range(4):
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos
    raise ValueError("variable-length quantity longer than 4 bytes")


def _event(data: bytes, pos: int, running: int | None):
    """Parse one event after its delta time.

    Returns (next position, running status, (status, note, velocity offset) for note_on else None).
    """
    status = data[pos]
    if status == 0xFF:  # meta: type, length, data
        length, pos = _varlen(data, pos + 2)
        return pos + length, running, None
    if status in (0xF0, 0xF7):  # sysex (mido keeps it as running status, so do we)
        length, pos = _varlen(data, pos + 1)
        return pos + length, status, None
    if status >= 0x80:
        pos += 1
        running = status
    elif running is None or running >= 0xF0:
        raise ValueError("running status without a previous status byte")
    count = _DATA_BYTES[running >> 4]
    note_on = (running >> 4) == 0x9
    return pos + count, running, ((running, data[pos], pos + 1) if note_on else None)


def _track_events(data: bytes, start: int, end: int) -> list:
    """One entry per event of an MTrk chunk body: (status, note, velocity offset) for note_on, else None."""
    events, pos, running = [], start, None
    while pos < end:
        _, pos = _varlen(data, pos)
        pos, running, note_on = _event(data, pos, running)
        events.append(note_on)
    if pos != end:
        raise ValueError("event runs past the end of its track chunk")
    return events


def velocity_offsets(data: bytes) -> list[list] | None:
    """Per MTrk chunk, per event: (status, note, offset of the velocity byte) for note_on, else None.

    None when `data` is not a Standard MIDI File this walk understands.
    """
    try:
        if data[:4] != b"MThd":
            return None
        header_length = struct.unpack(">I", data[4:8])[0]
        pos, tracks = 8 + header_length, []
        while pos + 8 <= len(data):
            kind, length = data[pos:pos + 4], struct.unpack(">I", data[pos + 4:pos + 8])[0]
            body = pos + 8
            if kind == b"MTrk":
                tracks.append(_track_events(data, body, min(body + length, len(data))))
            pos = body + length
        return tracks
    except (ValueError, IndexError, KeyError, struct.error):
        return None
