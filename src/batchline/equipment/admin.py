from django.contrib import admin
from django.contrib.auth.models import Group

from batchline.audit.admin import AuditedModelAdmin

from .models import Site


@admin.register(Site)
class SiteAdmin(AuditedModelAdmin):
    list_display = ("code", "name", "time_zone")
    search_fields = ("code", "name")


# Roles are defined in code and assigned through the signed users page; the stock
# Group admin would change them without an audit entry.
if admin.site.is_registered(Group):
    admin.site.unregister(Group)
