"""The feature spec: everything needed to rebuild a feature matrix exactly.

A model is only valid on features built the way its training features were built. The spec
(catalog, windows, half-lives, families, static columns, learned points) is saved next to every
model and scoring rebuilds from it, never from whatever the current config says.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from signals.settings import FeatureSettings, Settings, Touchpoint

__all__ = ["DEFAULT_FAMILIES", "Family", "FeatureSpec"]

Family = Literal["frequency", "recency", "temperature", "trend", "value", "static"]
DEFAULT_FAMILIES: tuple[Family, ...] = ("frequency", "recency", "temperature", "trend", "value")


class FeatureSpec(BaseModel):
    """What to build. ``FeatureSpec.from_settings(settings)`` gives the configured default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    catalog: dict[str, Touchpoint]
    features: FeatureSettings = FeatureSettings()
    families: tuple[Family, ...] = DEFAULT_FAMILIES
    learned_points: dict[str, float] | None = Field(
        default=None, description="points per touchpoint for temp_learned__all__hl<h>d")
    learned_half_life_days: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FeatureSpec:
        if bool(self.static_columns) != ("static" in self.families):
            raise ValueError("the 'static' family and features.static_columns go together")
        if (self.learned_points is None) != (self.learned_half_life_days is None):
            raise ValueError("learned_points and learned_half_life_days go together")
        if self.learned_points is not None:
            unknown = sorted(set(self.learned_points) - set(self.catalog))
            if unknown:
                raise ValueError(f"learned points for types not in the catalog: {unknown}")
        return self

    @classmethod
    def from_settings(cls, settings: Settings) -> FeatureSpec:
        """Every family of the config (``static`` when ``features.static_columns`` lists columns)."""
        families = DEFAULT_FAMILIES + (("static",) if settings.features.static_columns else ())
        return cls(catalog=settings.catalog, features=settings.features, families=families)

    @property
    def static_columns(self) -> tuple[str, ...]:
        return self.features.static_columns

    @property
    def touchpoints(self) -> tuple[str, ...]:
        return tuple(self.catalog)

    def with_learned_points(self, points: dict[str, float], half_life_days: float) -> FeatureSpec:
        """A copy that also builds the learned-points temperature."""
        data = self.model_dump() | {"learned_points": dict(points), "learned_half_life_days": float(half_life_days)}
        return type(self).model_validate(data)

    def temperature_only(self, half_lives_days: tuple[float, ...]) -> FeatureSpec:
        """A spec that builds just the per-type temperatures at these half-lives."""
        features = self.features.model_copy(update={"half_lives_days": tuple(sorted(half_lives_days)), "static_columns": ()})
        return FeatureSpec(catalog=self.catalog, features=features, families=("temperature",))

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        return cls.model_validate(json.loads(text))
