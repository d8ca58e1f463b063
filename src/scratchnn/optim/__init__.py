"""Optimizers that update parameters in place, and learning-rate schedules."""
from .optimizers import OPTIMIZERS, SGD, Adam, AdamW, Optimizer, RMSprop, make_optimizer
from .schedule_options import make_schedule
from .schedules import (SCHEDULES, Constant, Cosine, Exponential, OneCycle, ReduceOnPlateau, Schedule, StepDecay,
                        WarmUp)

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "OPTIMIZERS", "make_optimizer",
           "Schedule", "Constant", "StepDecay", "Exponential", "Cosine", "OneCycle", "ReduceOnPlateau", "WarmUp",
           "SCHEDULES", "make_schedule"]
