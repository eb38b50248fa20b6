"""The asset plane: device registry, signed telemetry gateway, device audits and the device-side client."""
