"""Pure-Python core: decoding, features, fusion, storage. No Dagster import anywhere in this package."""
