"""What the local engine says when no language model is configured: honest and simple."""

import re
from datetime import datetime

CAPABILITIES = (
    "I am the local voice engine built into this app. I can hear you, tell you what I heard, "
    "and tell you the time and the date. For real conversations, connect a language model "
    "with LOCAL_LLM_URL, or configure Azure OpenAI."
)

_GREETING = re.compile(r"\b(hello|hi|hey|good (morning|afternoon|evening))\b")
_TIME = re.compile(r"\b(what time|the time|time is it)\b")
_DATE = re.compile(r"\b(date|what day|today)\b")
_CAPABILITIES = re.compile(r"\b(what can you do|who are you|what are you|help)\b")


def default_reply(heard: str, now: datetime) -> str:
    """A reply to what was heard; the first sentence is short, so speech starts soon."""
    words = heard.strip().lower()
    if not words:
        return "Sorry, I did not catch that. Could you say it again?"
    answers = []
    if _TIME.search(words):
        answers.append(f"It is {now:%-I:%M %p}.")
    if _DATE.search(words):
        answers.append(f"Today is {now:%A, %B %-d, %Y}.")
    if _CAPABILITIES.search(words):
        answers.append(CAPABILITIES)
    if not answers and _GREETING.search(words):
        answers.append("Hello! I am the local voice engine. Ask me the time or the date, or what I can do.")
    if not answers:
        answers.append("I can only answer simple things on my own, like the time or the date.")
    return f"I heard: {heard.strip()}. " + " ".join(answers)


_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


def split_sentences(text: str) -> tuple[list[str], str]:
    """Complete sentences in the text, and the unfinished rest (for streamed text)."""
    parts = _SENTENCE_END.split(text)
    rest = parts.pop()
    return [p.strip() for p in parts if p.strip()], rest
