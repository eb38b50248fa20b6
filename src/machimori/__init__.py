"""machimori (街守): the security platform of a smart city's data platform."""

__version__ = "0.1.0"
