"""The BigCommerce sandbox: v3 customers and attributes, v2 orders, with the per-store quota.
`app.BigCommerceSandbox` serves it."""
