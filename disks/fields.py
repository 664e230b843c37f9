"""A text column whose value is stored sealed under the master key (disks.crypto.secret_seal)."""

from __future__ import annotations

from django.db import models

from disks.crypto import secret_is_sealed, secret_open, secret_seal


class SealedTextField(models.TextField):
    """Python code sees the plaintext; the database only ever holds ``csenc1:…``. Empty stays empty
    (an S3 disk may use the instance's own credentials). The purpose bound into the ciphertext is
    ``<app_label>.<model>.<field>``, fixed when the field is attached to its model."""

    def contribute_to_class(self, cls, name, *args, **kwargs):
        super().contribute_to_class(cls, name, *args, **kwargs)
        self.purpose = f"{cls._meta.app_label}.{cls._meta.model_name}.{name}"

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return secret_open(value, purpose=self.purpose)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value or secret_is_sealed(value):
            return value
        return secret_seal(value, purpose=self.purpose)
