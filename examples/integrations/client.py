"""Queue a page from Python, then wait for a worker (`dedup worker`) to report on it."""

from dedup import Client

client = Client()  # dedup's settings: config/dedup.toml, DEDUP_* environment variables
story = [
    "The city council approved the budget for the new river bridge on Tuesday evening.",
    "Supporters said the crossing would cut the commute from the northern villages in half.",
    "Opponents questioned the toll plan and asked who would pay for repairs in later years.",
    "Work is due to start in the spring, while the old ferry keeps running until it opens.",
]
body = "".join(f"<p>{paragraph}</p>" for paragraph in story)
job = client.submit(body * 2, url="https://example.com/news/bridge")  # pasted twice by mistake
client.flush()  # queue it now: single submissions otherwise wait up to 50 ms to share a job
print("queued job", job.id, "for", job.doc_ids, "status", job.status())

report = client.report(job.doc_ids[0], wait=60)  # polls until a worker indexed it, 60 s at most
print(report["flags"])  # ['doubled_body', 'internal_repeat']
for run in report["internal_repeats"]:
    print("paragraphs", run["first"], "appear again as", run["repeat"])
