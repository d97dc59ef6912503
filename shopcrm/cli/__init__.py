"""The `shopcrm` command line: `main` holds the root app and its global options."""
