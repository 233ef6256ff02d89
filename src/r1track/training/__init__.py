"""Training: pair datasets from tracking datasets, rule-based rewards, and the TRL stages (SFT, GRPO).

Submodules are imported on use so that ``r1track build-pairs`` never pays for importing torch or TRL.
"""
