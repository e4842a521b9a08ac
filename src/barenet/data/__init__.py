"""barenet.data: IDX files, MNIST/Fashion-MNIST loading, preprocessing, batching, augmentation."""

from .augment import RandomAffine
from .datasets import (
    CLASS_NAMES,
    DATASETS,
    IMAGE_SHAPE,
    NUM_CLASSES,
    cache_dir,
    canonical_name,
    file_md5,
    load,
    locate,
    search_dirs,
)
from .idx import DataError, read_idx, write_idx
from .loader import ArrayDataset, DataLoader
from .transforms import (
    DATASET_STATS,
    background_value,
    preprocess,
    split_id,
    subset,
    train_val_split,
)

__all__ = [
    "CLASS_NAMES",
    "DATASETS",
    "DATASET_STATS",
    "IMAGE_SHAPE",
    "NUM_CLASSES",
    "ArrayDataset",
    "DataError",
    "DataLoader",
    "RandomAffine",
    "background_value",
    "cache_dir",
    "canonical_name",
    "file_md5",
    "load",
    "locate",
    "preprocess",
    "read_idx",
    "search_dirs",
    "split_id",
    "subset",
    "train_val_split",
    "write_idx",
]
