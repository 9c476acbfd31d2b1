"""Integrations with the tools scrapers already use.

Each lives in its own module and imports its framework only there, so ``import dedup`` never
needs them: install the matching extra (``pip install 'dedup[scrapy]'``) to use one.
"""
