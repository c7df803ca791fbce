"""The site's settings with frames from the first viewer on: one of the two web processes of
``test_web_processes.py`` runs with these (``DJANGO_SETTINGS_MODULE``)."""

from playground.settings import *  # noqa: F403

STREAMING_FRAMES_ABOVE = 0
STREAMING_FRAME_S = 0.05
