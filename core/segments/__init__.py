"""Segment definitions: parsing (definition), parsed form (plan), evaluation and the registry."""
