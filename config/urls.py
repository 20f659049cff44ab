from django.contrib import admin
from django.urls import include, path

from voicechat.health import healthz

urlpatterns = [
    # No trailing slash, no sign-in, plain HTTP allowed (SECURE_REDIRECT_EXEMPT): for load balancers.
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("voicechat.urls")),
]
