"""Routing: the compiled index of a node's profiles, the staged classifier, the descent down the
hosted hierarchy, and the MiniLM encoder. Reads zones (`zones.catalog`, `zones.profile`); zones
never read routing."""
