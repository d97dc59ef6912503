"""Enrichment: identity, purchase history, RFM, predicted lifetime value and segments.

`pipeline.run_enrich` is the entry point. `history`, `rfm`, `clv`, `rules`, `segments` and
`purchases` are pure functions over arrays; all SQL lives in `identity`, `load` and `write`, and
all dialect knowledge in `dbio` (docs/enrichment.md has the rules). `syntax` is what the config
may check of enrichment's settings.
"""
