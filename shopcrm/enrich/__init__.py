"""Enrichment: identity, purchase history, RFM, predicted lifetime value and segments.

`run_enrich` is the entry point (`pipeline`). `history`, `rfm`, `clv`, `rules`, `segments` and
`purchases` are pure functions over arrays; all SQL lives in `identity`, `load` and `write`, and
all dialect knowledge in `dbio` (docs/enrichment.md has the rules).
"""

from shopcrm.enrich.pipeline import EnrichReport, ShopReport, model_shop, run_enrich

__all__ = ["EnrichReport", "ShopReport", "model_shop", "run_enrich"]
