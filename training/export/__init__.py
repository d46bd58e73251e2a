"""After a run: fold a LoRA adapter into its base model (and prove it is the same function)."""
