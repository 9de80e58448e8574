"""Data: IDX files of MNIST/Fashion-MNIST, the assignment's data.npz, tensors and splits."""

from replearn.data.assignment_data import AssignmentData
from replearn.data.crops import FieldCrops, cut_crops, field_to_crops, process_field, read_stages
from replearn.data.idx import parse_idx, read_idx
from replearn.data.limits import DataWarning
from replearn.data.npz import load_assignment, marked_synthetic
from replearn.data.sources import CLASS_NAMES, cache_dir, load_dataset, locate_dataset
from replearn.data.synthetic import synthetic_aureus
from replearn.data.tensors import one_hot, repeated_stratified_splits, seeded_subset, stratified_split, to_tensor

__all__ = [
    "AssignmentData",
    "CLASS_NAMES",
    "DataWarning",
    "FieldCrops",
    "cut_crops",
    "field_to_crops",
    "process_field",
    "read_stages",
    "cache_dir",
    "load_assignment",
    "load_dataset",
    "locate_dataset",
    "marked_synthetic",
    "one_hot",
    "parse_idx",
    "read_idx",
    "repeated_stratified_splits",
    "seeded_subset",
    "stratified_split",
    "synthetic_aureus",
    "to_tensor",
]
