"""WooCommerce: the REST API v3 through the `woocommerce` package (`connector`)."""
