"""The classroom's pages, one module per topic: ``courses``, ``roster``, ``assignments``,
``items`` and ``grades`` for staff; ``joining`` and ``student`` for everyone in a course.
``common`` holds the two helpers the staff pages share. ``classroom/urls.py`` maps them."""
