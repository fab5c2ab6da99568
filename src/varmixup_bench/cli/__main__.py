"""`python -m varmixup_bench.cli`: the `bench` command."""
from varmixup_bench.cli import main

main()
