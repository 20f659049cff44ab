"""Earlier turns re-sent to a new service session, so the assistant remembers them.

A service session ends on its own (`session_expired` after 30 or 60 minutes, or a
dropped connection) and a browser may reconnect after its socket dropped; either
way the conversation goes on in a new session, which starts empty.
"""

import json

from voicechat.realtime.session_config import Shape

# Re-sent items carry ids of our own, so the recorder knows them from new turns.
PREFIX = "vchist_"


def is_history_item(item_id: object) -> bool:
    return isinstance(item_id, str) and item_id.startswith(PREFIX)


def history_items(shape: Shape, turns: list[tuple[int, str, str]]) -> list[str]:
    """`conversation.item.create` frames for (seq, role, text) turns, oldest first."""
    assistant_text = "output_text" if shape is Shape.GA else "text"
    frames = []
    for seq, role, text in turns:
        if not text.strip() or role not in ("user", "assistant"):
            continue
        part = {"type": "input_text" if role == "user" else assistant_text, "text": text}
        item = {"id": f"{PREFIX}{seq}", "type": "message", "role": role, "content": [part]}
        frames.append(json.dumps({"type": "conversation.item.create", "item": item}))
    return frames
