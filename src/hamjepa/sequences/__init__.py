"""The BiJEPA dynamics benchmark: sine waves, Lorenz trajectories and image halves.

- :mod:`hamjepa.sequences.data` -- seeded generators (sine, Lorenz) and the Fashion-MNIST halves loader.
- :mod:`hamjepa.sequences.encoders` -- MLP encoder for sequence segments, ConvNet for image halves.
- :mod:`hamjepa.sequences.train` -- a compact two-view training loop with an optional EMA target encoder.
- :mod:`hamjepa.sequences.protocols` -- encoder/predictor probes, linear and decoder probes.
- :mod:`hamjepa.sequences.benchmark` -- one (task, method, seed) run.
- :mod:`hamjepa.sequences.reproduce` -- ``hamjepa reproduce dynamics`` (table, JSON, plots).
"""
