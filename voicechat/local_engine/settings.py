"""What the local engine is made of, from the Django settings."""

from dataclasses import dataclass


@dataclass(frozen=True)
class LocalSettings:
    whisper_model: str = ""
    piper_voice: str = ""
    llm_url: str = ""
    llm_model: str = ""
    vad_aggressiveness: int = 2

    @property
    def label(self) -> str:
        parts = [
            "faster-whisper" if self.whisper_model else "pocketsphinx",
            "piper" if self.piper_voice else "espeak-ng",
        ]
        if self.llm_url:
            parts.append("local LLM")
        return f"Local voice engine ({' + '.join(parts)})"
