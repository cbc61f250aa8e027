"""The known content encoders: where each is published on the Hugging Face Hub, in transformers format.

Cheap to import (no torch): the CLI and the catalogue read :data:`EMBEDDERS` while they build
their choices.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EmbedderSource:
    """Where a known content encoder is published on the Hugging Face Hub, in transformers format."""

    repo_id: str
    subfolder: str  # folder inside the repo; "" for its root
    files: tuple[str, ...]  # config.json and the weights file, as named in the repo
    description: str
    upstream: str  # who trained and first published the weights
    revision: str = "main"
    sha256: dict[str, str] = field(default_factory=dict)  # known checksums, by file name

    @property
    def url(self) -> str:
        tree = f"https://huggingface.co/{self.repo_id}/tree/{self.revision}"
        return f"{tree}/{self.subfolder}" if self.subfolder else tree


# Sources, researched for RVC compatibility:
# - Applio (IAHispano/Applio, rvc/lib/utils.py: load_embedding) downloads each embedder as
#   https://huggingface.co/IAHispano/Applio/resolve/main/Resources/embedders/<name>/{config.json,pytorch_model.bin}
#   in the transformers format; a model trained on these features converts the same way in Applio.
# - RVC's own "hubert_base.pt" (lj1995/VoiceConversionWebUI) is in fact ContentVec's 500-class legacy model
#   (RVC-Boss in RVC-Project/Retrieval-based-Voice-Conversion-WebUI issues #2121 and #2078), so "contentvec" is
#   RVC's default encoder; Applio's contentvec/pytorch_model.bin is that model converted.
# - The contentvec checksums were found pinned in two unrelated projects (a Nix config and an RVC setup
#   script pinning Applio revision 774d3d1f46102030638bc27d3a95cda6f68cf293), both agreeing.
# - "hubert_base" is Meta's original HuBERT Base (LibriSpeech 960 h), in transformers format since 2021.
#   It is NOT what RVC calls hubert_base.pt; RVC's pretrains expect contentvec features.
# - The language HuBERTs are Applio's copies of TencentGameMate/chinese-hubert-base,
#   rinna/japanese-hubert-base and team-lucid/hubert-base-korean (each also in transformers format upstream).
_APPLIO = "IAHispano/Applio"
_APPLIO_FILES = ("config.json", "pytorch_model.bin")

EMBEDDERS: dict[str, EmbedderSource] = {
    "contentvec": EmbedderSource(
        repo_id=_APPLIO,
        subfolder="Resources/embedders/contentvec",
        files=_APPLIO_FILES,
        description="ContentVec (500 classes): RVC's default encoder, the model RVC ships as hubert_base.pt",
        upstream="auspicious3000/contentvec (checkpoint_best_legacy_500.pt)",
        sha256={
            "config.json": "2ddde063b795d38d9051a7215a092fecf4cfe148b54251e38de51d88d356898b",
            "pytorch_model.bin": "d8dd400e054ddf4e6be75dab5a2549db748cc99e756a097c496c099f65a4854e",
        },
    ),
    "hubert_base": EmbedderSource(
        repo_id="facebook/hubert-base-ls960",
        subfolder="",
        files=("config.json", "pytorch_model.bin"),
        description="Meta's HuBERT Base (LibriSpeech 960 h); not RVC's hubert_base.pt, which is contentvec",
        upstream="facebookresearch/fairseq examples/hubert (hubert_base_ls960.pt)",
    ),
    "chinese_hubert_base": EmbedderSource(
        repo_id=_APPLIO,
        subfolder="Resources/embedders/chinese_hubert_base",
        files=_APPLIO_FILES,
        description="HuBERT Base trained on 10k hours of Mandarin (WenetSpeech)",
        upstream="TencentGameMate/chinese-hubert-base",
    ),
    "japanese_hubert_base": EmbedderSource(
        repo_id=_APPLIO,
        subfolder="Resources/embedders/japanese_hubert_base",
        files=_APPLIO_FILES,
        description="HuBERT Base trained on 19k hours of Japanese (ReazonSpeech)",
        upstream="rinna/japanese-hubert-base",
    ),
    "korean_hubert_base": EmbedderSource(
        repo_id=_APPLIO,
        subfolder="Resources/embedders/korean_hubert_base",
        files=_APPLIO_FILES,
        description="HuBERT Base trained on about 4k hours of Korean speech (AI Hub)",
        upstream="team-lucid/hubert-base-korean",
    ),
}
