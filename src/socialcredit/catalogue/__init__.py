"""The catalogue: acts, channels, services and regions, as referenced data (DESIGN 2.3, 2.4, 2.7)."""

from socialcredit.catalogue.loader import CATALOGUE_DIR, Catalogue, load_catalogue
from socialcredit.catalogue.models import (
    BANDS,
    KIND_BUSINESS,
    KIND_CITIZEN,
    KINDS,
    Act,
    Channel,
    Region,
    Service,
)

__all__ = [
    "BANDS",
    "CATALOGUE_DIR",
    "KINDS",
    "KIND_BUSINESS",
    "KIND_CITIZEN",
    "Act",
    "Catalogue",
    "Channel",
    "Region",
    "Service",
    "load_catalogue",
]
