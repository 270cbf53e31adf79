# DiffVel: `make demo` sets up and runs the whole pipeline on the synthetic corpus (CPU, < 30 min);
# `make test` sets up, lints (ruff check) and runs the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup system-deps lint test demo bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# FluidSynth and the MuseScore General SoundFont for the synthetic corpus; TiMidity++, freepats and the
# csound SoundFont for the extra piano voices of the DiffVel+ training corpus (utils/synth/timidity.py).
# Best effort: without root (or without apt) the corpus generator falls back, with a warning, to a
# pip-only renderer, and the extra voices' tests are skipped. No recommends: timidity's would pull in
# FluidR3_GM (148 MB), the held-out set's SoundFont, which no training corpus may use.
SYSTEM_PACKAGES := libfluidsynth3 musescore-general-soundfont-small timidity freepats csound-soundfont
system-deps:
	@if [ -f /usr/share/sounds/sf3/MuseScore_General.sf3 ] && ldconfig -p 2>/dev/null | grep -q libfluidsynth \
		&& command -v timidity >/dev/null && [ -f /etc/timidity/freepats.cfg ] && [ -f /usr/share/sounds/sf2/sf_GMbank.sf2 ]; then \
		echo "FluidSynth, MuseScore General, TiMidity++, freepats and the csound SoundFont already installed"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = "0" ]; then \
		(apt-get install -y -q --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null 2>&1)) \
		|| echo "warning: could not install $(SYSTEM_PACKAGES); using the fallback renderer"; \
	else \
		echo "warning: no root/apt: the synthetic corpus will use the fallback renderer"; \
	fi

setup: $(STAMP) system-deps

lint: setup
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest -q

demo: setup
	$(PY) -m utils.demo

bench: setup
	$(PY) -m bench.inference --model both --key-only
	$(PY) -m bench.loader --root demo_out/data

clean:
	rm -rf $(VENV) demo_out outputs runs
