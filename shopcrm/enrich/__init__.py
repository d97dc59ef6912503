"""Enrichment: identity, purchase history, RFM, predicted lifetime value and segments.

`run_enrich` is the entry point; the modules are pure functions over arrays, except `load`,
`identity` and `write`, which hold all of the SQL (docs/enrichment.md has the rules).
"""

from shopcrm.enrich.pipeline import EnrichReport, ShopReport, model_shop, run_enrich

__all__ = ["EnrichReport", "ShopReport", "model_shop", "run_enrich"]
