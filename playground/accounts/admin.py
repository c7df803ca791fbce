"""Django's admin for accounts, with one repair: ``?_to_field=`` left empty on an object's page
(``/admin/auth/user/1/delete/?_to_field=``) made ``ModelAdmin.get_object`` look up a field named
"" and answer 500. An empty value now means what a missing one means: the primary key."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.http import HttpRequest

from playground.accounts.models import ApiToken


class _EmptyToFieldIsThePrimaryKey:
    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        return super().get_object(request, object_id, from_field or None)  # type: ignore[misc]


class PlaygroundUserAdmin(_EmptyToFieldIsThePrimaryKey, UserAdmin):
    """No deleting here: the admin's delete would cascade through a person's grades and leave
    their name in the grade audit. ``manage.py privacy delete USERNAME`` (or the person's own
    account page) deletes an account as docs/PRIVACY.md says: grades kept under a pseudonym,
    the audit rewritten, the only instructor of a course refused."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PlaygroundGroupAdmin(_EmptyToFieldIsThePrimaryKey, GroupAdmin):
    pass


for model, model_admin in ((get_user_model(), PlaygroundUserAdmin), (Group, PlaygroundGroupAdmin)):
    admin.site.unregister(model)
    admin.site.register(model, model_admin)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Operators see and revoke tokens; nobody makes one here (its secret is shown once, to its
    owner, on the account page)."""

    list_display = ("name", "user", "prefix", "scope", "created_at", "last_used_at",
                    "expires_at", "revoked_at")  # fmt: skip
    list_filter = ("scope",)
    search_fields = ("name", "user__username", "prefix")
    readonly_fields = ("user", "name", "scope", "prefix", "digest", "created_at", "last_used_at")
    fields = (*readonly_fields, "expires_at", "revoked_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
