"""Datasets (offline: bundled, IDX files, your own .npz/.csv files), splits, preprocessing
fitted on training data, batching (the one place batches are made) and augmentation (functions
of arrays, and batch augmentations ``augment(batch, key) -> batch`` chained by ``compose``).

Imports only :mod:`optlab.core` (and jax/numpy/scikit-learn/mnist1d).
"""

from optlab.data.augment import Cutout as Cutout
from optlab.data.augment import GaussianNoise as GaussianNoise
from optlab.data.augment import Mixup as Mixup
from optlab.data.augment import RandomFlipLeftRight as RandomFlipLeftRight
from optlab.data.augment import RandomShift as RandomShift
from optlab.data.augment import compose as compose
from optlab.data.augment import cutout as cutout
from optlab.data.augment import gaussian_noise as gaussian_noise
from optlab.data.augment import mixup as mixup
from optlab.data.augment import random_flip_left_right as random_flip_left_right
from optlab.data.augment import random_shift as random_shift
from optlab.data.batching import Batches as Batches
from optlab.data.batching import batches as batches
from optlab.data.batching import num_batches as num_batches
from optlab.data.dataset import Dataset as Dataset
from optlab.data.datasets import blobs as blobs
from optlab.data.datasets import cache_dir as cache_dir
from optlab.data.datasets import dataset_names as dataset_names
from optlab.data.datasets import digits as digits
from optlab.data.datasets import fashion_mnist as fashion_mnist
from optlab.data.datasets import load as load
from optlab.data.datasets import mnist as mnist
from optlab.data.datasets import mnist1d as mnist1d
from optlab.data.datasets import two_spirals as two_spirals
from optlab.data.idx import IdxError as IdxError
from optlab.data.idx import read_idx as read_idx
from optlab.data.idx import write_idx as write_idx
from optlab.data.preprocess import Preprocessor as Preprocessor
from optlab.data.preprocess import fit_preprocessor as fit_preprocessor
from optlab.data.preprocess import preprocess as preprocess
from optlab.data.splits import kfold_indices as kfold_indices
from optlab.data.splits import train_val_split as train_val_split
from optlab.data.splits import validation_indices as validation_indices
