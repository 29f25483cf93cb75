"""The local Functions host: runs a Python v2-model FunctionApp with the real binding types (see server.py)."""
from .keys import HostKeys
from .loader import HostError, load_app
from .server import FunctionsHost

__all__ = ["FunctionsHost", "HostError", "HostKeys", "load_app"]
