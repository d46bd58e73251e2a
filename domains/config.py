"""The frozen, validated configuration tree of one domain, loaded from `domains/<name>/domain.toml`.

Each section is a small frozen dataclass; its fields are the valid keys and `Literal` annotations are the valid
choices. Unknown keys and invalid choices raise `ConfigError` naming what is valid. Loading has no side effects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from core.errors import ConfigError
from core.hardware import Device, Precision
from core.stages import AbstentionScore, Fusion, Stage
from domains.config_parse import parse_section

SourceFormat = Literal["auto", "jsonl", "csv", "txt", "md", "html", "pdf", "docx"]


@dataclass(frozen=True, slots=True)
class CorpusSource:
    path: str  # relative to the domain folder; a file or a folder
    format: SourceFormat = "auto"
    id_field: str = "doc_id"  # for record formats (jsonl, csv)
    text_field: str = "text"
    title_fields: tuple[str, ...] = ()  # joined with a space into the chunk title, e.g. law name + article no.
    metadata_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChunkingConfig:
    strategy: Literal["statute", "sentence"] = "sentence"
    max_chars: int = 512
    overlap_chars: int = 64
    min_chars: int = 1
    near_duplicate_threshold: float = 0.9  # MinHash Jaccard estimate above which a document is a near-duplicate

    def __post_init__(self) -> None:
        if self.max_chars < 16:
            raise ConfigError(f"chunking.max_chars: {self.max_chars} is too small (at least 16)")
        if not 0 <= self.overlap_chars < self.max_chars:
            raise ConfigError(f"chunking.overlap_chars: must be in [0, max_chars), got {self.overlap_chars}")
        if not 0.0 < self.near_duplicate_threshold <= 1.0:
            raise ConfigError("chunking.near_duplicate_threshold: must be in (0, 1]")


@dataclass(frozen=True, slots=True)
class ModelsConfig:
    embedder: str = "embeddinggemma-300m"  # a registry name, a local path, or a hub id
    reranker: str = ""  # empty: no cross-encoder stage
    generator: str = "qwen2.5-coder-0.5b-instruct"
    generator_gguf: str = "qwen2.5-coder-0.5b-instruct-gguf"  # for the llama.cpp / edge backend
    # the tuned generator: a peft LoRA adapter dir relative to the domain folder (empty: none shipped), pinned by
    # the sha256 of its adapter_model.safetensors (models/generator_adapter.py)
    generator_adapter: str = ""
    generator_adapter_sha256: str = ""


EmbeddingBackend = Literal["torch", "onnx", "onnx-int8", "openvino", "openvino-int8"]


@dataclass(frozen=True, slots=True)
class EmbeddingConfig:
    """Also the reranker's precision, device and threads (rag/build_retrieval.py)."""

    backend: EmbeddingBackend = "torch"  # queries, and documents too unless document_backend says otherwise
    # the runtime that embeds documents no cache or pack holds (a user's own files). auto: openvino-int8 where the
    # `openvino` extra is installed (1.6x torch bf16 per CPU-second, vectors at cosine >= 0.999 of torch fp32, the
    # same recall@5: bench/bench_embed_backends.py), else `backend`
    document_backend: Literal["auto", "torch", "onnx", "onnx-int8", "openvino", "openvino-int8"] = "auto"
    precision: Precision = "auto"  # auto: bf16 on a GPU or a CPU with native bf16, else fp32 (core/hardware.py)
    device: Device = "auto"  # auto: CUDA when torch sees a GPU, else CPU; the onnx backend runs on the CPU
    batch_size: int = 32
    dim: int = 0  # Matryoshka truncation; 0 keeps the model's full dimension
    max_seq_length: int = 512
    threads: int = 1


@dataclass(frozen=True, slots=True)
class RetrievalConfig:
    stages: tuple[Stage, ...] = (Stage.DENSE, Stage.BM25)
    index: Literal["flat", "hnsw", "ivfpq"] = "flat"
    dense_k: int = 50
    sparse_k: int = 50
    fusion: Fusion = Fusion.RRF  # how dense and BM25 are fused (retrieval/fusion.py)
    rrf_k: int = 60  # RRF, Cormack et al. 2009
    dense_weight: float = 1.0
    sparse_weight: float = 1.0
    rerank_top_n: int = 20
    final_k: int = 5
    user_dict: str = ""  # jieba user dictionary, relative to the domain folder
    filters: Mapping[str, Any] = field(default_factory=dict)  # applied to every query, e.g. {status = "现行有效"}
    # put the articles a question names ("民法典第188条") first, found by law name and article number in the
    # chunks' metadata (retrieval/article_lookup.py); for corpora whose chunks carry law_name / article_num
    article_lookup: bool = False
    # the question bank (retrieval/question_bank.py): the TRAIN questions of the domain's retrieval sets with their
    # gold documents; a question's nearest bank questions vote for their documents, fused with weight bank_weight.
    # A path relative to the domain folder, written by `dossier train bank`; empty: no bank
    question_bank: str = ""
    bank_weight: float = 0.5
    bank_neighbours: int = 10
    bank_min_cosine: float = 0.5  # nearer bank questions only: a case description is not an everyday question
    # the splits whose bank questions are left out. A deployment leaves it empty; an evaluation of a split sets it to
    # that split (eval/splits.py::leave_out_of_bank), so a bank that also holds the dev questions still shows dev
    # only the train questions its settings were chosen with
    bank_leave_out: tuple[Literal["train", "dev", "test"], ...] = ()
    # hub correction (retrieval/hubness.py): the dense stage ranks by cosine - hub_weight * (mean cosine of the
    # chunk's hub_neighbours nearest bank questions, their own gold left out); 0: off. Needs the question bank;
    # with hub_weight > 0 and bank_weight 0 the bank only corrects hubs and casts no votes
    hub_weight: float = 0.0
    hub_neighbours: int = 20
    # the scope stage (retrieval/scope.py): where one value of this metadata field (legal: law_id) holds at least
    # scope_min_share of the bank neighbours' votes, the query is searched again inside it, fused at scope_weight
    scope_field: str = ""
    scope_weight: float = 0.0
    scope_min_share: float = 0.6
    scope_min_cosine: float = 0.5  # its own floor: a case description is far from every question, yet near enough
    # the scope router (retrieval/scope_router.py): a linear classifier over the query vector, fitted by `dossier
    # train router`; a question it calls a case description is fused at scope_weight_routed instead of scope_weight.
    # A path relative to the domain folder; empty: every question at scope_weight. Without a scope stage
    # (scope_weight 0, as single-stage evaluations set it) it routes nothing
    scope_router: str = ""
    scope_weight_routed: float = 0.0
    # the domain gate (retrieval/domain_gate.py): a linear classifier over the dense stage's query vector, fitted by
    # `dossier train gate` on this domain's train questions against the other domains'; a question it places in
    # another domain is abstained on (rag/abstention.py). A path relative to the domain folder; empty: no gate
    domain_gate: str = ""

    def __post_init__(self) -> None:
        if self.hub_weight < 0:
            raise ConfigError(f"retrieval.hub_weight: must be 0 (off) or positive, got {self.hub_weight}")
        if self.hub_weight > 0 and not self.question_bank:
            raise ConfigError("retrieval.hub_weight: the hub correction reads the question bank: set "
                              "retrieval.question_bank (built by `dossier train bank`) or hub_weight = 0")
        if self.hub_neighbours < 1:
            raise ConfigError(f"retrieval.hub_neighbours: at least 1, got {self.hub_neighbours}")
        if self.scope_weight_routed < 0:
            raise ConfigError(f"retrieval.scope_weight_routed: must be 0 or positive, got {self.scope_weight_routed}")


@dataclass(frozen=True, slots=True)
class GenerationConfig:
    backend: Literal["transformers", "vllm", "openai-http", "llama-cpp", "openvino", "auto"] = "transformers"
    base_url: str = "http://127.0.0.1:8001/v1"  # for openai-http
    api_model: str = ""  # model name the HTTP server expects; empty: the server's first model
    max_new_tokens: int = 384
    temperature: float = 0.0
    # Qwen's own generation config says 1.1: greedy decoding without it loops on a 0.5B model; every backend gets it
    repetition_penalty: float = 1.1
    threads: int = 1  # decode threads: decode is memory-bound, and one was faster than two under load here
    prefill_threads: int = 0  # llama-cpp: prompt threads (compute-bound, scales with cores); 0 = `threads`
    # openvino: the step graph's weights (generation/openvino_step.py); $DOSSIER_OPENVINO_WEIGHTS overrides
    openvino_weights: Literal["int8", "int4", "f32"] = "int8"
    context_chars: int = 2400  # evidence budget in the prompt
    # each passage shown as its N sentences nearest the question (rag/evidence_focus.py); 0 = whole passages
    focus_sentences: int = 0
    # a marker whose passage does not hold its sentence moves to the given passage that does (rag/citation_repair.py);
    # the trace keeps the moves and the precision as generated
    repoint_markers: bool = True
    # a sentence that copies the question and no cited passage supports is dropped (rag/question_echo.py)
    strip_question_echoes: bool = True
    # a reply of markers alone ("[1]") is answered with the marked passage's sentence nearest the question, cited to
    # it, instead of abstaining (rag/marker_quote.py); off: such a reply is abstained on
    quote_marker_replies: bool = False

    def __post_init__(self) -> None:
        if self.focus_sentences < 0:
            raise ConfigError(f"generation.focus_sentences: 0 (whole passages) or more, got {self.focus_sentences}")


@dataclass(frozen=True, slots=True)
class PromptsConfig:
    """Prompt templates live in each domain.toml (no defaults in code). `answer` gets {context} and {question};
    `rewrite` gets {history} and {question}."""

    system: str
    answer: str
    rewrite: str
    abstain: str


@dataclass(frozen=True, slots=True)
class AbstentionConfig:
    threshold: float = 0.0  # best evidence score under this -> abstain; calibrated per domain on the eval sets
    score: AbstentionScore = AbstentionScore.DENSE  # "fused": the retriever's fusion, RRF or z-score alike
    # a near miss (rag/abstention.py): abstain when best score + near_miss_weight x best term coverage (the share of
    # the question's idf-weighted terms a passage holds, retrieval/term_coverage.py) is under near_miss_threshold;
    # weight 0 turns it off. Chosen by `dossier eval calibrate --near-miss` (eval/near_miss.py)
    near_miss_weight: float = 0.0
    near_miss_threshold: float = 0.0

    def __post_init__(self) -> None:
        if self.near_miss_weight < 0:
            raise ConfigError(f"abstention.near_miss_weight: must be 0 (off) or positive, got {self.near_miss_weight}")


@dataclass(frozen=True, slots=True)
class EvalSetConfig:
    name: str
    path: str  # relative to the domain folder
    kind: Literal["retrieval", "qa", "mcq", "dialogue", "classification"] = "retrieval"
    id_field: str = "id"
    query_field: str = "question"
    gold_field: str = "gold_doc_ids"  # list of corpus doc ids
    answer_field: str = ""  # reference answer
    where: Mapping[str, Any] = field(default_factory=dict)  # keep records whose fields equal these values
    corpus_filter: Mapping[str, Any] = field(default_factory=dict)  # restrict retrieval to this part of the corpus


@dataclass(frozen=True, slots=True)
class DomainConfig:
    name: str
    display_name: str
    language: Literal["zh", "en"]
    root: Path
    corpus: tuple[CorpusSource, ...]
    prompts: PromptsConfig
    chunking: ChunkingConfig = ChunkingConfig()
    models: ModelsConfig = ModelsConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    generation: GenerationConfig = GenerationConfig()
    abstention: AbstentionConfig = AbstentionConfig()
    evalsets: tuple[EvalSetConfig, ...] = ()
    disclaimer: str = ""
    description: str = ""

    def evalset(self, name: str) -> EvalSetConfig:
        for evalset in self.evalsets:
            if evalset.name == name:
                return evalset
        raise ConfigError.invalid_choice(f"domain {self.name}: evalset", name, [e.name for e in self.evalsets])

    def path(self, relative: str) -> Path:
        return self.root / relative


def with_embedder(cfg: DomainConfig, name: str) -> DomainConfig:
    """`cfg` with another query embedder (an evaluation's `--embedder`). The question bank holds the domain
    embedder's vectors, so it goes too, and the hub correction it feeds, and the domain gate and the scope router
    fitted on them: votes, hub scores, margins or routes from another embedding space would be noise."""
    if name == cfg.models.embedder:
        return cfg
    return replace(cfg, models=replace(cfg.models, embedder=name),
                   retrieval=replace(cfg.retrieval, question_bank="", hub_weight=0.0, domain_gate="", scope_router=""))


def with_focus_sentences(cfg: DomainConfig, sentences: int | None) -> DomainConfig:
    """`cfg` showing each evidence passage as its `sentences` best sentences (0: whole); None leaves it."""
    return cfg if sentences is None else replace(cfg, generation=replace(cfg.generation, focus_sentences=sentences))


def with_embedding_precision(cfg: DomainConfig, precision: str | None) -> DomainConfig:
    """`cfg` with its query embedder pinned to `precision` (auto / fp32 / bf16); None leaves it."""
    return cfg if not precision else replace(cfg, embedding=replace(cfg.embedding, precision=precision))


def domain_from_mapping(data: Mapping[str, Any], root: Path) -> DomainConfig:
    """Validate a parsed domain.toml. `root` is the domain folder that relative paths start from."""
    return parse_section(DomainConfig, {**data, "root": root}, where=f"{root.name}/domain.toml")
