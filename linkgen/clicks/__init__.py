"""The hot redirect path and click capture: device and bot detection, scanners by message."""
