"""Measurements against the model: load measured rows, predict them with the plan the kernel ran,
score the error (MAPE, rank accuracy), fit cost parameters, and lay errors out for reports.

Everything that needs pandas or process pools lives here, so `attnsim.simulator` stays plain numpy.
"""
