"""Zone transfers out (AXFR, RFC 5936; IXFR, RFC 1995) and NOTIFY to secondaries (RFC 1996)."""
