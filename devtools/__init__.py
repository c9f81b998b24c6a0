"""Development tools: `./dev up`, `./dev status`, and the helpers the tests and
benchmarks share (the real broker through rabbitmqctl, child processes, ports).

Nothing here is imported by the proxy or the worker, and nothing here ships in
the runtime image: the services need only `leadline/`, `proxy/` and `worker/`.
"""
