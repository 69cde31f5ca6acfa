"""Container images for the instance runtime: OCI distribution client, content store, unpack, rootfs."""
from .reference import InvalidReference, Reference, normalise, parse
from .registry import RegistryClient, RegistryError
from .service import ImageNotFoundError, ImagePullError, ImageService, select_platform
from .store import ImageRecord

__all__ = ["ImageService", "ImageRecord", "ImagePullError", "ImageNotFoundError", "RegistryClient",
           "RegistryError", "Reference", "InvalidReference", "parse", "normalise", "select_platform"]
