"""Staff purge Think-and-Execute plans here (or with ``manage.py plans purge``): filter by model,
search a task, select, and "Delete selected plans". Plans are read-only otherwise."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from playground.accounts.admin import _EmptyToFieldIsThePrimaryKey
from playground.runs.models import Plan


@admin.register(Plan)
class PlanAdmin(_EmptyToFieldIsThePrimaryKey, admin.ModelAdmin):  # type: ignore[type-arg,unused-ignore]
    list_display = ("subject", "model", "title", "uses", "created_at")
    list_filter = ("model",)
    search_fields = ("subject",)
    readonly_fields = ("key", "subject", "model", "data", "uses", "created_at")

    @admin.display(description="title")
    def title(self, plan: Plan) -> str:
        return str(plan.data.get("title", "")) if isinstance(plan.data, dict) else ""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
