"""Network-side detection of compromised IoT devices: flows, baselines, detectors, indicators, evaluation."""
