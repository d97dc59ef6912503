"""The Shopify sandbox: Admin GraphQL (with query costs, bulk operations) and the legacy REST
reads, over a pruned copy of the published Admin schema. `app.ShopifySandbox` serves it."""
