from __future__ import annotations

from django.db.models import F
from django.http import HttpRequest, JsonResponse

from djangoproject.shop.models import Product


def product(request: HttpRequest, pk: int) -> JsonResponse:
    item = Product.objects.get(pk=pk)
    return JsonResponse({"id": item.pk, "name": item.name})


def rename(request: HttpRequest, pk: int) -> JsonResponse:
    item = Product.objects.get(pk=pk)
    item.name = request.GET["name"]
    item.save()
    return JsonResponse({"id": item.pk})


def discount(request: HttpRequest) -> JsonResponse:
    n = Product.objects.filter(price__gte=10).update(price=F("price") - 1)
    return JsonResponse({"updated": n})
