"""Batch evaluation of a method x model over a data set: scoring as the benchmarks define it,
and the statistics reported with the scores."""
