# The HTML responses of a web archive, with their URL and fetch date (WARC-Date).
dedup submit --warc crawl.warc.gz   # streams the file, whatever its size, with a progress bar
dedup worker --burst                # or keep `dedup worker` running
dedup export --since 1h             # flagged pages: url, fetched_at, flags, spans, matches
