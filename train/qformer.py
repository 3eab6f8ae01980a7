"""The Q-Former pre-fusion of the paper's ablations (the reference's `*_fusion_type: qformer`). The released
AffectGPT uses the attention fusion of train/model.py; this one emits more rows per placeholder."""

from __future__ import annotations

import torch
from torch import nn


class QFormerFusion(nn.Module):
    """The ablation variant (the reference's `*_fusion_type: qformer`): BLIP-style Q-Formers of 2 layers with
    learnable queries (N(0, 0.02)) cross-attending to each modality, plus learned temporal positions; the
    multi Q-Former reads the video and audio tokens projected to a common width and concatenated. Emits
    queries[0] multi, queries[1] audio and queries[2] face rows, each projected to the LLM width.
    (The released AffectGPT uses the attention fusion; this one is for ablations.)"""

    def __init__(self, vision_dim: int, audio_dim: int, llm_width: int, width: int = 768, heads: int = 12,
                 layers: int = 2, queries: tuple[int, int, int] = (16, 8, 32), positions: tuple[int, int, int] = (264, 8, 32)):
        super().__init__()
        common = max(vision_dim, audio_dim)
        self.rows = tuple(queries)

        def qformer():
            layer = nn.TransformerDecoderLayer(width, heads, 4 * width, dropout=0.1, batch_first=True)
            return nn.TransformerDecoder(layer, layers)

        self.video_in, self.audio_in = nn.Linear(vision_dim, width), nn.Linear(audio_dim, width)
        self.multi_video_embs, self.multi_audio_embs = nn.Linear(vision_dim, common), nn.Linear(audio_dim, common)
        self.multi_in = nn.Linear(common, width)
        self.multi_Qformer, self.audio_Qformer, self.video_Qformer = qformer(), qformer(), qformer()
        self.multi_query_tokens = nn.Parameter(torch.randn(1, queries[0], width) * 0.02)
        self.audio_query_tokens = nn.Parameter(torch.randn(1, queries[1], width) * 0.02)
        self.video_query_tokens = nn.Parameter(torch.randn(1, queries[2], width) * 0.02)
        self.multi_position_embedding = nn.Embedding(positions[0], width)
        self.audio_position_embedding = nn.Embedding(positions[1], width)
        self.video_frame_position_embedding = nn.Embedding(positions[2], width)
        self.multi_llama_proj = nn.Linear(width, llm_width)
        self.audio_llama_proj = nn.Linear(width, llm_width)
        self.affectgpt_proj = nn.Linear(width, llm_width)

    @staticmethod
    def _attend(qformer, queries, memory, positions):
        memory = memory + positions.weight[: memory.shape[1]]
        return qformer(queries.expand(memory.shape[0], -1, -1), memory)

    def forward(self, face: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        v = self._attend(self.video_Qformer, self.video_query_tokens, self.video_in(face), self.video_frame_position_embedding)
        a = self._attend(self.audio_Qformer, self.audio_query_tokens, self.audio_in(audio), self.audio_position_embedding)
        both = torch.cat([self.multi_video_embs(face), self.multi_audio_embs(audio)], dim=1)
        m = self._attend(self.multi_Qformer, self.multi_query_tokens, self.multi_in(both), self.multi_position_embedding)
        return torch.cat([self.multi_llama_proj(m), self.audio_llama_proj(a), self.affectgpt_proj(v)], dim=1)
