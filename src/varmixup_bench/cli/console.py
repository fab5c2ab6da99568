"""The two consoles every command prints to: `out` (results, stdout) and `err` (progress and errors, stderr).

Commands look them up here at call time (`console.out`), so a caller (the tests) can swap them."""
from __future__ import annotations

from rich.console import Console

out = Console()
if not out.is_terminal:
    out = Console(width=200)
err = Console(stderr=True)
