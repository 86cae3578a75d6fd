"""A local HTTP server that answers like the Elexon Insights API from recorded (and clearly marked synthetic) data."""
