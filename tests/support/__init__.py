"""The tests' side of `devtools`: the real broker, child processes, ports.

The helpers live in `devtools/` (the benchmarks and `./dev` use them too);
these modules keep the import paths the tests use.
"""
