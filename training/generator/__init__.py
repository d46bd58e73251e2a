"""Generator recipes: SFT (records, charges, RAG), reward model, DPO / KTO / GRPO, and their held-out evaluation."""
