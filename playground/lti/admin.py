from django.contrib import admin

from playground.lti.models import LtiContext, LtiUser, Platform, ResourceLink, ScoreSend


@admin.register(Platform)
class PlatformAdmin(admin.ModelAdmin):
    list_display = ("name", "issuer", "client_id", "active", "created_at")


@admin.register(LtiContext)
class LtiContextAdmin(admin.ModelAdmin):
    list_display = ("title", "context_id", "platform", "course")
    raw_id_fields = ("course",)


@admin.register(ResourceLink)
class ResourceLinkAdmin(admin.ModelAdmin):
    list_display = ("title", "resource_link_id", "context", "assignment", "lineitem_url")
    raw_id_fields = ("assignment",)


@admin.register(LtiUser)
class LtiUserAdmin(admin.ModelAdmin):
    list_display = ("sub", "platform", "user", "created_at")
    raw_id_fields = ("user",)


@admin.register(ScoreSend)
class ScoreSendAdmin(admin.ModelAdmin):
    list_display = ("link", "student", "status", "score_given", "score_maximum", "sent_at")
    raw_id_fields = ("student",)
