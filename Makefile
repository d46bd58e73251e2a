# The README's two commands: `make run` and `make test`. Each works alone on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DOSSIER := $(BIN)/dossier
export DOSSIER_CACHE_DIR ?= $(CURDIR)/.cache
export OMP_NUM_THREADS ?= 1
export TOKENIZERS_PARALLELISM ?= false
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
HOST ?= 127.0.0.1
PORT ?= 8000
UI_PORT ?= 8501
DOMAIN ?= legal

.PHONY: install run test lint serve ui fetch-default index-default bench clean

# CPU torch first, from this machine's disk: a looser pin would let another package pull a CUDA build.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[serve,train,ui,eval,dev]'
	touch $@

install: $(BIN)/.installed

fetch-default: install
	$(DOSSIER) models fetch embeddinggemma-300m qwen2.5-coder-0.5b-instruct

index-default: fetch-default
	$(DOSSIER) index build --domain $(DOMAIN) --if-missing

run: index-default
	@echo "API:     http://$(HOST):$(PORT)/docs    (curl -s http://$(HOST):$(PORT)/v1/ask -H 'content-type: application/json' -d '{\"domain\":\"$(DOMAIN)\",\"question\":\"盗窃罪怎么处罚？\"}')"
	@echo "OpenAI:  OpenAI(base_url='http://$(HOST):$(PORT)/v1', api_key='none').chat.completions.create(model='dossier-$(DOMAIN)', ...)"
	@echo "Chat UI: http://$(HOST):$(UI_PORT)"
	DOSSIER_API_URL=http://$(HOST):$(PORT) $(BIN)/streamlit run ui/app.py --server.address $(HOST) --server.port $(UI_PORT) --server.headless true & \
	$(DOSSIER) serve --host $(HOST) --port $(PORT) --domains $(DOMAIN)

test: install
	$(DOSSIER) models fetch all-minilm-l6-v2
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: install
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
