"""shopcrm: sync, enrich and tag customers across Shopify, WooCommerce, BigCommerce and POS."""

__version__ = "0.1.0"
