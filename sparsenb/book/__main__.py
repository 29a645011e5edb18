"""``python -m sparsenb.book`` (what ``torchrun ... -m sparsenb.book precompute`` runs): :func:`sparsenb.book.cli.main`."""
import sys

from .cli import main

sys.exit(main())
