"""``python -m scratchnn`` runs the command line."""
from .cli.main import console

console()
