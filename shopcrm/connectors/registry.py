"""Connectors: one module per platform, all built the same way from a shop's config."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shopcrm.config.schema import AppConfig, ShopConfig
    from shopcrm.connectors.base import Connector

# platform -> (module, class); imported only when a shop of that platform is used
_CONNECTORS = {
    "shopify": ("shopcrm.connectors.shopify.connector", "ShopifyConnector"),
    "woocommerce": ("shopcrm.connectors.woocommerce.connector", "WooCommerceConnector"),
    "bigcommerce": ("shopcrm.connectors.bigcommerce.connector", "BigCommerceConnector"),
    "csv": ("shopcrm.connectors.csv.connector", "CsvConnector"),
}


def make_connector(shop: ShopConfig, config: AppConfig) -> Connector:
    """The connector for one configured shop."""
    module, name = _CONNECTORS[shop.platform]
    return getattr(import_module(module), name)(shop, config)
