"""genesplice.training: everything between a model and its evaluation.

Modules (import them directly; nothing is imported here so that ``metrics``/``splits`` stay
usable without torch): ``splits`` (whole-chromosome hold-out), ``metrics`` (per-tissue /
per-gene, NaN-aware), ``losses`` (level/profile MSE, InfoNCE, smoothed BCE/CE), ``schedules``
(``lr_at`` + matching torch schedulers), ``checkpoint`` (atomic, ``weights_only`` save/load,
RNG capture), ``baselines`` (ridge on membership features), ``report`` (Markdown + PNG).
"""
