"""``python -m tfsctl`` runs the same CLI as the ``tfsctl`` console script."""

from __future__ import annotations

from tfsctl.cli import main

if __name__ == "__main__":
    main()
