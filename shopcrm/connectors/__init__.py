"""Connectors: one subpackage per platform (`shopify`, `woocommerce`, `bigcommerce`, `csv`), each
built from a shop's config through `registry.make_connector`; `base` is their contract, `http`
the one HTTP client they share."""
