//! Datasets (written next).
