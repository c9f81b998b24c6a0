"""Code shared by the proxy and the worker: settings parsing, schemas,
the broker topology, the message envelope and the broker connection."""
