"""Architectures of the paper that torchvision does not ship, written from their papers."""
