"""Exports of trained runs and datasets for use outside the pipeline (`simgr export`)."""
