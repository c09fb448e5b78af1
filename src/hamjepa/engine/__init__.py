"""The training engine: the training loop, its schedule, checkpoints, distributed launch and the throughput bench.

Import what you need from the submodules (``hamjepa.engine.trainer``, ``hamjepa.engine.checkpoint``, ...);
this package module imports nothing itself, so importing one submodule stays light.
"""
