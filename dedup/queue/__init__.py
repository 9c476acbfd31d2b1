"""The RQ queue documents travel on: the queue, job handles, failed jobs and rejected documents.

Nothing outside this package (and the worker entry point in ``workers/``) talks to RQ.
"""
