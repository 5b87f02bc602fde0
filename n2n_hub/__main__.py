"""``python -m n2n_hub`` is the ``n2n-hub`` command."""

from .cli import main

main()
