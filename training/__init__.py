"""Training recipes over peft and trl, by concern: `generator/` (SFT, reward, DPO / KTO / GRPO, evaluation),
`retriever/` (query adapter, reranker, user dictionaries), `export/` (merge). The shared kit sits here: recipe
args, run directories, model loading, trl config mapping, chat formatting, peak memory, accelerate launch."""
