"""Allow ``python -m hamjepa`` (and ``torchrun -m hamjepa``)."""

from hamjepa.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
