"""A local HTTP server that answers like the Elexon Insights API from real 2018 recordings (FUELHH, AGWS, NESO demand)
and clearly marked synthetic data (FREQ, B1610, PN)."""
