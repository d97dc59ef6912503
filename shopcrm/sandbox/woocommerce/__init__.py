"""The WooCommerce sandbox: the REST API v3 subset shopcrm uses, with OAuth 1.0a and Basic auth.
`app.WooCommerceSandbox` serves it."""
