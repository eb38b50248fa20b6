"""The NGSI-LD API's routes, one module per resource."""
