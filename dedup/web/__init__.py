"""``dedup serve``: the HTTP API, the review pages and the metrics of the service.

The web layer reads through :mod:`dedup.index`, submits through :class:`dedup.client.Client`
and asks :mod:`dedup.queue` about the queue; it writes no Redis call of its own.
"""
