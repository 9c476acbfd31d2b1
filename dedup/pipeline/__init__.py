"""The pure pipeline: a document in; paragraphs, shingles, signatures and repeats out.

Nothing here does I/O or imports redis, rq or click (``make lint`` checks it), so every
step is a plain function that tests call without a server.
"""
