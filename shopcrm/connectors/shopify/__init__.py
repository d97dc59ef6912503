"""Shopify: the Admin GraphQL API (`connector`), its tokens (`auth`), query documents and limits
(`queries`), cost pacing (`throttle`), bulk operations (`bulk`) and node parsing (`nodes`)."""
