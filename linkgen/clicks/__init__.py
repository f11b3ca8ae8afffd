"""The hot redirect path and click capture: device and bot detection, scanner bursts."""
