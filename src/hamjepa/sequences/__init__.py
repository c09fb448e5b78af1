"""The BiJEPA dynamics benchmark: sine waves, Lorenz trajectories and image halves.

An experiment on top of the library, not part of it: it sits in the top layer beside :mod:`hamjepa.reproduce`
(it is ``hamjepa reproduce dynamics``), nothing below imports it, and it trains with the engine's step,
objectives from the registry and predictors from the predictor config, not a training step of its own.

- :mod:`hamjepa.sequences.data` -- seeded generators (sine, Lorenz) and the Fashion-MNIST halves loader.
- :mod:`hamjepa.sequences.encoders` -- MLP encoder for sequence segments, ConvNet for image halves.
- :mod:`hamjepa.sequences.train` -- ``(x, y)`` pairs through :class:`hamjepa.engine.step.TrainStep`.
- :mod:`hamjepa.sequences.protocols` -- encoder/predictor probes, linear and decoder probes.
- :mod:`hamjepa.sequences.benchmark` -- one (task, method, seed) run and its engine config.
- :mod:`hamjepa.sequences.reproduce` -- ``hamjepa reproduce dynamics`` (table, JSON, plots).
"""
