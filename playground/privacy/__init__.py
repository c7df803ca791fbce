"""What the site holds about a person, and letting it go: the export of one account's data
(``export.py``), the deletion of an account (``deletion.py``) and the retention periods applied
by Celery beat (``retention.py``). docs/PRIVACY.md is the description for people.

It sits above every app (it reads and deletes rows of all of them), as the floor just under the
front doors in ``[tool.importlinter]``; the account pages call it from ``accounts/views.py``."""
