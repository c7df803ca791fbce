"""Small helpers with no Django models."""
