"""The city OS plane: an NGSI-LD context broker (ETSI GS CIM 009) with the decision point on every request."""
