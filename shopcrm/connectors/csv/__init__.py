"""CSV / POS exports: the connector (`connector`), the columns and their limits (`columns`),
cell parsing (`values`), rows grouped into orders (`rows`) and the validation pass (`validate`)."""
