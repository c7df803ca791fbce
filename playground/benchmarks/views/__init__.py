"""The evaluation pages, one module per topic: ``boards`` (the leaderboard), ``starting``
(starting and cancelling an evaluation), ``evaluation`` (one evaluation's page, its progress and
charts), ``exports`` (its results as JSON or CSV, streamed) and ``comparing`` (two evaluations
item by item). ``common`` holds what they share: the evaluation a requester may see and which of
its items are hidden from them. ``benchmarks/urls.py`` maps them."""
