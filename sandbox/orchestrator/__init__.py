"""The orchestrator: a durable queue of analyses, leases to workers, events and results.

Nothing in here knows about gRPC; the servicers in ``sandbox.api`` translate
protobuf messages into calls on :class:`~sandbox.orchestrator.service.Orchestrator`.
"""
