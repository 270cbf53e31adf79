"""The one place for DiffVel's fixed conventions: audio rate, frame rate, key range, sustain pedal, velocity scale.

Everything else in the project imports these names instead of repeating the numbers.
"""

SAMPLE_RATE = 16000  # Hz, mono
HOP_LENGTH = 512  # samples per spectrogram frame
FRAMES_PER_SECOND = SAMPLE_RATE / HOP_LENGTH  # 31.25, the model's true frame rate

MIN_MIDI = 21  # A0, key index 0
MAX_MIDI = 108  # C8, key index 87
N_KEYS = MAX_MIDI - MIN_MIDI + 1  # 88

SEGMENT_SAMPLES = 327680  # one model input: 20.48 s of audio
SEGMENT_SECONDS = SEGMENT_SAMPLES / SAMPLE_RATE  # 20.48
SEGMENT_FRAMES = SEGMENT_SAMPLES // HOP_LENGTH  # 640 frames, the score roll the FiLM layer reads

# The paper's SMD test labels are computed at 31 frames/s (Kong et al.'s TargetProcessor), giving
# round(20.48 * 31) + 1 = 636 frames, then padded to 640 by copying the last 4 frames.
PAPER_TEST_FPS = 31

# The "no audio" spectrogram of classifier-free guidance (the published condition='fixed').
UNCONDITIONAL_SPEC_VALUE = -1.0

# The sustain (damper) pedal: MIDI control change 64, values >= 64 mean "pedal down".
SUSTAIN_CONTROL = 64
SUSTAIN_THRESHOLD = 64

# MIDI velocity <-> model scale. Training targets are velocity / 128 (AudioLoader); the paper's
# evaluation multiplies model outputs by 128.
VELOCITY_SCALE = 128.0
MIDI_VELOCITY_MIN, MIDI_VELOCITY_MAX = 1, 127  # a note_on's velocity (0 would make it a note-off)
