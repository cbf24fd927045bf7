"""Azure Container Apps target: the scoring image with HTTPS, scale to zero, optional GPU."""
