"""Where the Redis servers are: connecting to a configured one, or starting the embedded one."""
