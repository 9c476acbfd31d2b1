"""The index in Redis: the record layout, every key name, the Lua scripts, reads and writes.

Nothing outside this package reads or writes index keys.
"""
