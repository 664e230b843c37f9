from django import forms

from accounts.models import Membership
from accounts.services import workspace_name_clean
from cloudstorage.errors import ServiceError


class WorkspaceForm(forms.Form):
    name = forms.CharField(max_length=100, label="Workspace name")

    def clean_name(self) -> str:
        # The service's rule, so the page shows the refusal next to the field.
        try:
            return workspace_name_clean(self.cleaned_data["name"])
        except ServiceError as exc:
            raise forms.ValidationError(exc.message) from None


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address")
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, label="Token name")
    expires_in_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=3650,
        label="Expires after (days)",
        help_text="Leave empty for no expiry.",
    )
