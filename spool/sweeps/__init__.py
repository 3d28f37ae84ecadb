"""Sweeps: expand a parameter space (flags or a W&B sweep file) into one params dict per job."""

from spool.sweeps.expand import SweepPlan, format_points, plan_from_flags
from spool.sweeps.wandb import plan_from_wandb

__all__ = ["SweepPlan", "format_points", "plan_from_flags", "plan_from_wandb"]
