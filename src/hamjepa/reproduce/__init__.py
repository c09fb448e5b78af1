"""One-command reproductions of the paper's tables (``hamjepa reproduce cifar100|dynamics``)."""
