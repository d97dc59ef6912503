"""Local stand-ins of the platforms' APIs, for the demo, the tests and anyone's curl.

Each platform package (`shopify`, `woocommerce`, `bigcommerce`) has an `app` module whose
`PlatformSandbox` (`base`) serves one or more seeded `Dataset`s (`seed`) on 127.0.0.1 through a
`SandboxServer` (`server`: fault injection in `.faults`, request counts in `.stats`) and can
describe itself as a shop entry for the config file. Nothing here imports the product.
"""
