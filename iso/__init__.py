"""The live installer ISO: build, seed and cache."""
