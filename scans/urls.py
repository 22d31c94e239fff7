from django.urls import path

from scans import views

app_name = "scans"
urlpatterns: list = [
    path("slices/<int:pk>/image.png", views.slice_image, name="slice_image"),
    path("slices/<int:pk>/thumbnail.png", views.slice_thumbnail, name="slice_thumbnail"),
    path("slices/<int:pk>/tags.json", views.slice_tags, name="slice_tags"),
    path("slices/<int:pk>/heatmap.png", views.slice_heatmap, name="slice_heatmap"),
    path("series/<int:pk>/export.zip", views.series_export, name="series_export"),
]
