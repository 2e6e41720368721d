"""The thin Dagster layer: assets, checks, sensors, resources and partitions wiring the core together."""
