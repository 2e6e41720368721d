"""iqc — Image Quality Checker: rank photo albums by aesthetic and technical quality with Dagster."""

__version__ = "0.1.0"
