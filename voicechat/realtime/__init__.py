"""The realtime protocol as plain Python: no sockets, no asyncio, no ORM.

Everything here is fed strings and dicts and answers with strings and records,
so it is tested with lists of events.
"""
