"""Models confronted with data: each subject's twin updated from their measurements (MAP),
forecasts with prediction intervals, and doses chosen for a target."""

from insilico.fit.posterior import Posterior, map_estimates

__all__ = ["Posterior", "map_estimates"]
