"""BigCommerce: v3 customers and attributes, v2 orders, through requests (`connector`)."""
