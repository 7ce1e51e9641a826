from django.contrib import admin

from batchline.audit.admin import AuditedModelAdmin

from .models import Site


@admin.register(Site)
class SiteAdmin(AuditedModelAdmin):
    list_display = ("code", "name", "time_zone")
    search_fields = ("code", "name")
