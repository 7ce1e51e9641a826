from __future__ import annotations

from django import forms

from .roles import ROLES

ROLE_CHOICES = [(name, label) for name, (label, _d, _p) in ROLES.items()]


class UserCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    full_name = forms.CharField(max_length=200, label="Printed full name")
    email = forms.EmailField(required=False, max_length=254)
    roles = forms.MultipleChoiceField(
        choices=ROLE_CHOICES, widget=forms.CheckboxSelectMultiple, required=False
    )
    reason = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class RolesForm(forms.Form):
    roles = forms.MultipleChoiceField(
        choices=ROLE_CHOICES, widget=forms.CheckboxSelectMultiple, required=False
    )
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class PasswordChangeForm(forms.Form):
    old_password = forms.CharField(widget=forms.PasswordInput, label="Current password", max_length=200)
    new_password = forms.CharField(widget=forms.PasswordInput, label="New password", max_length=200)
    new_password_again = forms.CharField(
        widget=forms.PasswordInput, label="New password again", max_length=200
    )

    def clean(self) -> dict:
        data = super().clean() or {}
        if data.get("new_password") != data.get("new_password_again"):
            raise forms.ValidationError("The two new passwords differ.")
        return data


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, label="Token name (the machine or script that uses it)")
    scope = forms.ChoiceField(
        choices=[("read", "Read only"), ("write", "Read and write")], initial="read", label="Scope"
    )
    days = forms.IntegerField(min_value=1, max_value=365, initial=90, label="Expires after (days)")
