"""The Django admin, made to write through the audit trail like every other door."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.db import transaction
from django.http import HttpRequest

from .services import Actor, record_create, record_update


class AuditedModelAdmin(admin.ModelAdmin):
    """Saves through the audit services with a required reason; never deletes."""

    actions = None

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if kwargs.get("fields") is None:
            # The reason is a form field, not a model field: keep it out of the model form's fields.
            if self.fieldsets:
                fields = [f for f in flatten_fieldsets(self.fieldsets) if f != "audit_reason"]
            else:
                readonly = set(self.get_readonly_fields(request, obj))
                fields = [
                    f.name
                    for f in self.model._meta.concrete_fields
                    if f.editable and not f.primary_key and f.name not in readonly
                ]
            kwargs["fields"] = fields
        else:
            kwargs["fields"] = [f for f in kwargs["fields"] if f != "audit_reason"]
        base = super().get_form(request, obj, change=change, **kwargs)

        class ReasonForm(base):  # type: ignore[valid-type,misc]
            audit_reason = forms.CharField(
                label="Reason for this change",
                widget=forms.Textarea(attrs={"rows": 2}),
                help_text="Kept in the audit trail with the change.",
            )

        return ReasonForm

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        names = [f for _, opts in fieldsets for f in opts["fields"]]
        if "audit_reason" not in names:
            fieldsets = [*fieldsets, ("Audit trail", {"fields": ["audit_reason"]})]
        return fieldsets

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        actor = Actor.of(request.user, via="admin")
        reason = form.cleaned_data["audit_reason"]
        with transaction.atomic():
            if not change:
                record_create(obj, actor=actor, reason=reason)
                return
            current = type(obj).objects.select_for_update().get(pk=obj.pk)
            values = {
                f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields if not f.primary_key
            }
            record_update(current, actor=actor, values=values, reason=reason, reason_required=True)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
