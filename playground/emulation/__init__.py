"""Emulation methods: how a language model is asked to emulate a run, and how its answer is read.

A method is one module here and one line in ``registry.METHODS``. Pure logic: no Django, no
network; the Celery task in ``playground.runs`` drives the model and stores what comes out.
"""
