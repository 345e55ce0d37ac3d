"""Datasets (readers, downloads with checksums, generators) and the batch pipeline."""
