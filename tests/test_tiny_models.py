from pathlib import Path


def test_tiny_causal_lm_generates_through_its_chat_template(tiny_lm_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "盗窃罪如何处罚？"}], add_generation_prompt=True, tokenize=False
    )
    assert prompt.endswith("<|im_start|>assistant\n")
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 5 or tokenizer.eos_token_id in out[0].tolist()
    # Chinese must not collapse to unknown tokens: the tokenizer round-trips it exactly.
    assert tokenizer.decode(tokenizer("盗窃公私财物").input_ids) == "盗窃公私财物"
