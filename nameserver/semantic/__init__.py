"""Semantic resolution: the chain's `semantic` slot (handler: a question name -> a CNAME chain down
the hierarchy) and the micro-batcher that runs the encoder for it (batcher)."""
