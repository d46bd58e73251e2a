"""An Ollama Modelfile for the bundle's generator: `ollama create dossier-<domain> -f Modelfile`. It carries the
domain's system prompt and decoding settings; retrieval, abstention and the citation check are the runner's
(`python -m edge serve`), which Ollama does not do."""

from __future__ import annotations

from domains.config import DomainConfig

# Ollama's Go template for ChatML (Qwen2.5's format), written out so the model does not depend on Ollama
# recognising the GGUF's Jinja template
CHATML = ('{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}'
          '{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}<|im_start|>assistant\n')


def modelfile_text(cfg: DomainConfig, gguf_relative: str, chat_template: str, n_ctx: int = 4096) -> str:
    system = cfg.prompts.system.replace('"""', '" " "')
    lines = [f"# {cfg.display_name}: the edge bundle's generator for Ollama (retrieval and citations: python -m edge "
             "serve)", f"FROM ./{gguf_relative}", f'SYSTEM """{system}"""',
             f"PARAMETER temperature {cfg.generation.temperature:g}",
             f"PARAMETER repeat_penalty {cfg.generation.repetition_penalty:g}",
             f"PARAMETER num_ctx {n_ctx}", f"PARAMETER num_predict {cfg.generation.max_new_tokens}"]
    if "<|im_start|>" in chat_template:
        lines += ['PARAMETER stop "<|im_end|>"', f'TEMPLATE """{CHATML}"""']
    return "\n".join(lines) + "\n"
