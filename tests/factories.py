"""factory-boy factories shared by every test folder."""

from __future__ import annotations

import time

import factory
from allauth.account.models import EmailAddress

from accounts.models import Membership, User, Workspace
from accounts.services import workspace_create_team

PASSWORD = "a-long-test-password-42"


class UserFactory(factory.django.DjangoModelFactory):
    """A user with a verified e-mail address (and, through the signal, a personal workspace).

    ``mfa=True`` turns on TOTP with recovery codes (``user.totp_secret``, ``user.recovery_codes``).
    Staff users get it by default: operators must have 2FA before the admin lets them in.
    """

    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        password = kwargs.pop("password", PASSWORD)
        mfa = kwargs.pop("mfa", kwargs.get("is_staff", False))
        user = model_class.objects.create_user(*args, password=password, **kwargs)
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
        if mfa:
            user.totp_secret, user.recovery_codes = mfa_enable(user)
        return user


def mfa_enable(user: User) -> tuple[str, list[str]]:
    """Turn on TOTP and recovery codes as allauth's enrol page does; returns the secret and codes."""
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret, RecoveryCodes.activate(user).get_unused_codes()


def totp_code(secret: str, *, step: int = 0) -> str:
    """The authenticator app's code now (``step=1``: the next 30 s window, which allauth also
    accepts, for a second login within one window: a code is refused once used)."""
    from allauth.mfa import app_settings
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    return format_hotp_value(hotp_value(secret, int(time.time()) // app_settings.TOTP_PERIOD + step))


def personal_workspace(user: User) -> Workspace:
    return Workspace.objects.get(owner=user, kind=Workspace.Kind.PERSONAL)


def team_workspace(owner: User, name: str = "Team", members: dict[User, str] | None = None) -> Workspace:
    workspace = workspace_create_team(owner=owner, name=name)
    for user, role in (members or {}).items():
        Membership.objects.create(workspace=workspace, user=user, role=role)
    return workspace


def local_disks(settings, *, categories: str = "ABCDE", per_category: int = 2, capacity_mb: int = 512) -> list:
    """Local disks under the test's tmp_path (CLOUDSTORAGE_DISKS_DIR), ``per_category`` of each."""
    from disks.services import disk_create_local

    return [
        disk_create_local(
            name=f"{category}{n}",
            path=settings.CLOUDSTORAGE_DISKS_DIR / f"{category}{n}",
            category=category,
            capacity_bytes=capacity_mb * 1024 * 1024,
        )
        for category in categories
        for n in range(1, per_category + 1)
    ]
