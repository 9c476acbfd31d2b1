"""Crawl a site and queue every page for dedup (a worker analyses them as they come)."""
# scrapy runspider scrapy_spider.py -a start_url=https://example.com/ -O pages.jsonl

from urllib.parse import urlsplit

import scrapy


class PagesSpider(scrapy.Spider):
    name = "pages"
    custom_settings = {
        "ITEM_PIPELINES": {"dedup.integrations.scrapy.DedupPipeline": 300},
        "DEDUP_ON_DUPLICATE": "tag",  # pages already indexed get "dedup_duplicate_of": [ids]
    }

    def __init__(self, start_url="https://example.com/", **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [start_url]
        self.allowed_domains = [urlsplit(start_url).hostname]

    def parse(self, response):
        yield {"url": response.url, "html": response.text}
        yield from response.follow_all(css="a", callback=self.parse)
