"""Emulation methods: how a language model is asked to emulate a run, and how its answer is read.

A method is one module here, one ``Method`` record in ``registry.REGISTRY`` (which carries every
fact about it) and one test file; docs/ARCHITECTURE.md has the steps. Pure logic: no Django, no
network; the Celery task in ``playground.runs`` drives the model and stores what comes out.
"""
