from __future__ import annotations

from django.contrib import admin
from django.urls import path

from djangoproject.shop import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("products/<int:pk>", views.product),
    path("products/<int:pk>/rename", views.rename),
    path("discount", views.discount),
]
