# What went wrong in the last crawl, for a script to act on.
dedup list --since 1h --flag doubled_body --json
dedup export --format jsonl --since 1d --output flagged.jsonl     # every flag, with spans and ids
dedup export --format csv --flag near_duplicate --output near.csv  # one row per document
