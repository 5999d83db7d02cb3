"""PROMETHEUS: a self-hosted mirror of the Hugging Face Hub's public metadata."""

import sys

from core.cli import main

if __name__ == "__main__":
    sys.exit(main())
