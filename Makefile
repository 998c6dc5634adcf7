# Two entry points that work on a fresh Linux machine with Python 3.10+ (no GPU needed):
#   make demo   set up .venv, generate a clip, run the pipeline with the shipped model, write what it saw
#   make test   set up .venv and run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO := out/demo

.PHONY: setup demo test clean browser gpu-kit

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: a bare "torch" requirement would pull a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[train,test,cluster,web,compile]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) tools/synth_video --seconds 30 --fps 30 --size 1920x1080 --seed 11 --out $(DEMO)/clip.mp4
	# live: the clip paced at 30 fps as a capture card would deliver it; summary with latency per stage
	$(PY) -m stream run --config configs/demo.yaml --source $(DEMO)/clip.mp4 \
		--set pipeline.detections_log=$(DEMO)/live_detections.jsonl --summary-json $(DEMO)/live_summary.json
	# QA: every frame against the clip's ground truth: metrics, annotated video, report
	$(PY) -m stream replay $(DEMO)/clip.mp4 --config configs/demo.yaml --out $(DEMO)/qa
	@echo "demo outputs in $(DEMO)/: clip.mp4 + clip.json (truth), live_summary.json, live_detections.jsonl,"
	@echo "  qa/report.html (open in a browser), qa/annotated.mp4, qa/metrics.json"

# the browser tests drive Debian's chromium; installed here where apt can (root), else they are skipped
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
		  { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; }; }; } || \
		echo "chromium could not be installed: the browser tests will be skipped"

test: setup browser
	$(PY) -m pytest -q

# what a bare GPU machine lacks for the GPU report (pyzmq, the network definition), in .gpukit/ with run.sh:
# there, `bash .gpukit/run.sh` installs it without a package index and writes the report (docs/BENCHMARKS.md)
gpu-kit: setup
	$(PY) tools/gpu_kit

clean:
	rm -rf $(VENV) out .pytest_cache
