from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("set-password/<uidb64>/<token>/", views.set_password_view, name="set_password"),
    path("admin/", views.admin_home, name="admin_home"),
    path("admin/users/new/", views.user_create, name="user_create"),
    path("admin/users/<int:pk>/", views.user_detail, name="user_detail"),
    path("admin/users/<int:pk>/send-link/", views.user_send_link, name="user_send_link"),
    path("admin/users/<int:pk>/reset-password/", views.user_reset_password, name="user_reset_password"),
    path("admin/users/<int:pk>/deactivate/", views.user_deactivate, name="user_deactivate"),
    path("admin/users/<int:pk>/reactivate/", views.user_reactivate, name="user_reactivate"),
    path("admin/audit/", views.audit_log, name="audit_log"),
]
