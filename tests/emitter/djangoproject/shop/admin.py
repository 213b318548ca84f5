from __future__ import annotations

from django.contrib import admin

from djangoproject.shop.models import Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    actions = ["make_free"]

    @admin.action(description="Set the price to 0")
    def make_free(self, request, queryset):
        for product in queryset:
            product.price = 0
            product.save()
