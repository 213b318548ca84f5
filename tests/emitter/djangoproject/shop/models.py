from __future__ import annotations

from django.db import models


class Tag(models.Model):
    name = models.CharField(max_length=50)


class Product(models.Model):
    __audit_resource_type__ = "product"
    name = models.CharField(max_length=100)
    price = models.IntegerField(default=0)
    secret = models.CharField(max_length=100, default="")
    updated_at = models.IntegerField(default=0)
    tags = models.ManyToManyField(Tag, blank=True)


class Untracked(models.Model):
    value = models.IntegerField(default=0)
