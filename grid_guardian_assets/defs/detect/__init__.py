"""The learned bad-data detectors as an asset: their calibration, stored for the live job."""
