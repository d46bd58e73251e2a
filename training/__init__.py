"""Training recipes over peft and trl: SFT, reward model, DPO / KTO / PPO, merge, export, memory reports."""
