"""Data layer: sources -> decode once (cached uint8) -> seeded stratified splits."""

from fakescope.data.dataset import ImageSet, LabelledFiles, describe, list_labelled, load_images
from fakescope.data.sources import FAKE, LABEL_NAMES, REAL, ClassNames
from fakescope.data.splits import make_splits, stratified_subset

__all__ = [
    "FAKE",
    "LABEL_NAMES",
    "REAL",
    "ClassNames",
    "ImageSet",
    "LabelledFiles",
    "describe",
    "list_labelled",
    "load_images",
    "make_splits",
    "stratified_subset",
]
