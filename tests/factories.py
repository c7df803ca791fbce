"""factory_boy factories for the models tests create."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from playground.programs.models import Dataset, Program


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("correct horse battery staple")


class ProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Program

    title = factory.Sequence(lambda n: f"Program {n}")
    source = "def f(x):\n    return x + 1\n"
    call = "f(1)"
    dataset = Dataset.USER
    owner = factory.SubFactory(UserFactory)
    is_public = False
