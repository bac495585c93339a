"""The guides under docs/ run here, example by example, against a real gateway."""
