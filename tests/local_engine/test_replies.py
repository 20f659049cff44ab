"""The local engine's own replies."""

from datetime import UTC, datetime

from voicechat.local_engine.replies import default_reply, split_sentences

NOW = datetime(2026, 11, 25, 15, 7, tzinfo=UTC)


def test_it_says_what_it_heard_first():
    reply = default_reply("turn on the kitchen lights", NOW)
    assert reply.startswith("I heard: turn on the kitchen lights.")
    assert "time or the date" in reply


def test_time_date_and_capabilities():
    assert "It is 3:07 PM." in default_reply("what time is it", NOW)
    assert "Today is Wednesday, November 25, 2026." in default_reply("what is the date today", NOW)
    assert "local voice engine" in default_reply("what can you do", NOW)
    assert "Hello!" in default_reply("hello there", NOW)


def test_nothing_heard():
    assert default_reply("  ", NOW) == "Sorry, I did not catch that. Could you say it again?"


def test_split_sentences_keeps_the_unfinished_rest():
    assert split_sentences("One. Two! Three? Fou") == (["One.", "Two!", "Three?"], "Fou")
    assert split_sentences("No end yet") == ([], "No end yet")
    assert split_sentences("Version 2.5 is out. Yes") == (["Version 2.5 is out."], "Yes")
