"""Live bed census: occupied beds per ward as keyed state."""

from pipelines.census.step import CensusStep, apply_event, census_snapshot, ward_census

__all__ = ["CensusStep", "apply_event", "census_snapshot", "ward_census"]
