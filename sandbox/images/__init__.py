"""Building the device and fakenet images from Dockerfiles, without a registry."""

from .builder import BuildResult, ImageBuilder, images_dir

__all__ = ["BuildResult", "ImageBuilder", "images_dir"]
