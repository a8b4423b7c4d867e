"""genesplice.training: everything between a model and its evaluation.

Modules (import them directly; nothing is imported here): ``config`` (the run TOML: data, model,
train, pretrain, ridge), ``data`` (training-data assembly), ``splits`` (whole-chromosome
hold-out), ``targets`` (the level/profile split), ``losses`` (level/profile MSE, InfoNCE,
smoothed BCE/CE), ``metrics`` (per-tissue / per-gene, NaN-aware), ``schedules`` (``lr_at`` +
matching torch schedulers), ``loop`` (the training loop), ``checkpoint`` (atomic,
``weights_only`` save/load, RNG capture), ``ridge`` (ridge on membership features),
``pretrain`` (masked-nucleotide pretraining), ``report`` (Markdown + PNG), ``experiment`` (one
run end to end) and ``demo`` (the demo on the bundled data).
"""
