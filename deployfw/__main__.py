"""Allow ``python -m deployfw`` where the console script is not on PATH."""

from __future__ import annotations

from deployfw.cli import main

if __name__ == "__main__":
    main()
