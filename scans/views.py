"""Permission-checked file views: slice images, previews, heat maps."""
