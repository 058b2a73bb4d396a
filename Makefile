# Two commands do all the set-up on a fresh machine:
#   make demo   builds .venv and runs the main job on the bundled sample
#   make test   builds .venv and runs the whole test suite (what CI runs, via .ci/run)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# torch==2.13.0 resolves to a local CPU wheel where one is provided (fast CPU-only installs)
# and to the regular CUDA build elsewhere, so GPU users are not broken. CPU-only users
# elsewhere can point TORCH_INDEX at a CPU wheel index.
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=
OUT    ?= out

.PHONY: env demo test lint bench samples clean

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

# The main job: a rack focus from the near ball (1.2 m) to the street (8 m) on the bundled
# all-in-focus sample with its depth, through an 8-blade f/2 lens, plus a plot of the pull.
DEMO_FOCUS := 0s:1.2m, 1.2s:1.2m, 2.4s:ease-in-out:8m
demo: env
	mkdir -p $(OUT)
	$(BIN)/vidrefocus refocus samples/scene_sharp.mp4 --depth samples/scene_depth \
		--focus "$(DEMO_FOCUS)" --aperture polygon --blades 8 --f-number 2 \
		-o $(OUT)/rack_focus.mp4 --overwrite
	$(BIN)/vidrefocus plot-focus samples/scene_sharp.mp4 --depth samples/scene_depth \
		--focus "$(DEMO_FOCUS)" -o $(OUT)/rack_focus_plot.png
	$(BIN)/vidrefocus preview samples/scene_sharp.mp4 --depth samples/scene_depth \
		--focus "$(DEMO_FOCUS)" --aperture polygon --blades 8 --f-number 2 \
		--at "0.5s, 1.8s, 3s" -o $(OUT)/rack_focus_sheet.png --html $(OUT)/rack_focus.html \
		--overwrite

lint: env
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: env lint
	$(BIN)/python -m pytest -q

bench: env
	$(BIN)/vidrefocus bench io

samples: env
	$(BIN)/python samples/make_samples.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache
