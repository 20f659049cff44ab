"""A realtime voice engine that runs inside the app: no cloud key needed.

It speaks the GA realtime protocol, so the consumer, the recorder and the page
work with it exactly as with the Azure service.
"""
