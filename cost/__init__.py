"""What a stack costs, before ``pulumi up``: every resource the program declares, priced per month
(730 hours) in USD from a dated snapshot of the Azure Retail Prices API.

``python -m cost dev`` runs the real program under the offline preview's mock engine
(``preview/engine.py``), prices each declared resource from its *inputs* (SKU, capacity,
autoscale bounds, node counts, instance types: what is declared is what is priced), and prints
a table by component. Layers: ``model`` (lines, units) <- ``snapshot`` (the price file) <-
``rules`` (one rule per resource type) <- ``estimate`` <- ``render`` / ``refresh`` / ``__main__``.
"""
