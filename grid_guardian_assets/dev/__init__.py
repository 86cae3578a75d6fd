"""Demo and local tooling, apart from the product: nothing outside ``dev/`` (and the ``grid-guardian demo`` and
``stream broker`` commands) imports it.

``demo`` runs every stage end to end on bundled data; ``demo_live`` is its live stage; ``local_servers`` starts a
local Kafka-protocol broker (tansu) and redis-server for the demo, tests and benchmarks.
"""
