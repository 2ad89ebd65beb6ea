"""Dynamic zones: signed UPDATE (apply), the registrations of engines (registry, dynamic), their
journal and their health probes; the chain's `update` slot (handler)."""
