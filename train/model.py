"""AffectGPT, read top to bottom.

    8 face frames ─ CLIP ViT (projected image embedding) ─ F [B, 8, Dv] ─┐
    8 × 2 s audio ─ HuBERT (mean of last 4 layers, mean over time) ─ A [B, 8, Da] ─┤
                                                     attention pre-fusion
                                   multi, audio, face tokens [B, 3, H]  (H = LLM width)
    prompt text ──────────── token embeddings, the three tokens at <MultiHere> <AudioHere> <FaceHere>
                                                            Qwen2 + LoRA → answer

The fusion follows the released model exactly: raw linear scores, no softmax, no activation. Its layer
names are the released checkpoint's, so that checkpoint imports by name. Order of the file: the encoders,
the fusion, AffectGPT, then the builders of its parts. (The Q-Former fusion of the ablations is train/qformer.py.)
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from runtime.prompt import STOP_TEXT, placeholder_spans, positions, prompt_chunks, template_placeholders
from train.config import ModelConfig
from train.qformer import QFormerFusion
from train.tokenizer import BOS_TOKEN, EOS_TOKEN, encode_text, load_tokenizer, train_tiny_tokenizer


class VisionEncoder(nn.Module):
    """[N, 3, S, S] normalised frames → [N, Dv] projected CLIP image embeddings (get_image_features)."""

    def __init__(self, clip):
        super().__init__()
        self.clip = clip
        self.dim = clip.config.projection_dim

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.clip(pixel_values=pixel_values).image_embeds


class AudioEncoder(nn.Module):
    """[N, samples] normalised 2 s clips at 16 kHz → [N, Da]: mean of the last 4 hidden layers, then over time."""

    def __init__(self, hubert):
        super().__init__()
        self.hubert = hubert
        self.dim = hubert.config.hidden_size

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        hidden = self.hubert(input_values=clips, output_hidden_states=True).hidden_states
        return torch.stack(hidden[-4:]).mean(0).mean(1)


class AttentionFusion(nn.Module):
    """Face features [B, T, Dv] and audio features [B, K, Da] → [B, 3, H]: the multi, audio and face tokens."""

    def __init__(self, vision_dim: int, audio_dim: int, llm_width: int):
        super().__init__()
        common = max(vision_dim, audio_dim)
        # face token: per-frame scalar scores, unnormalised weighted sum, projection
        self.video_attention_mlp = nn.Linear(vision_dim, 1)
        self.affectgpt_proj = nn.Linear(vision_dim, llm_width)
        # audio token: the same pattern
        self.audio_attention_mlp = nn.Linear(audio_dim, 1)
        self.audio_llama_proj = nn.Linear(audio_dim, llm_width)
        # pre-fusion "multi" token: time means → common space → two mixing weights → mix → projection
        self.multi_video_embs = nn.Linear(vision_dim, common)
        self.multi_audio_embs = nn.Linear(audio_dim, common)
        self.attention_mlp = nn.Linear(2 * common, common)
        self.fc_att = nn.Linear(common, 2)
        self.multi_llama_proj = nn.Linear(common, llm_width)

    def forward(self, face: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        face_token = self.affectgpt_proj((self.video_attention_mlp(face) * face).sum(1))
        audio_token = self.audio_llama_proj((self.audio_attention_mlp(audio) * audio).sum(1))
        u = self.multi_video_embs(face.mean(1))
        w = self.multi_audio_embs(audio.mean(1))
        g = self.fc_att(self.attention_mlp(torch.cat([u, w], dim=-1)))
        multi = g[:, 0:1] * u + g[:, 1:2] * w
        multi_token = self.multi_llama_proj(multi)
        return torch.stack([multi_token, audio_token, face_token], dim=1)  # multi, audio, visual (face or frame)

    rows = (1, 1, 1)  # fused rows per placeholder (multi, audio, visual)


class AffectGPT(nn.Module):
    def __init__(self, cfg: ModelConfig, vision: VisionEncoder, audio: AudioEncoder, llm, tokenizer):
        super().__init__()
        from peft import LoraConfig, get_peft_model

        self.cfg = cfg
        self.placeholders = template_placeholders(cfg.template)  # multi, audio, then <FaceHere> or <FrameHere>
        self.tokenizer = tokenizer
        self.bos_token = getattr(tokenizer, "bos_token", BOS_TOKEN)  # a GGUF base model's own, else the reference's
        self.eos_token = getattr(tokenizer, "eos_token", EOS_TOKEN)
        self.bos_id = tokenizer.token_to_id(self.bos_token)
        self.eos_id = tokenizer.token_to_id(self.eos_token)
        self.vision = vision.eval().requires_grad_(False)  # frozen, as in the paper
        self.audio = audio.eval().requires_grad_(False)
        self.llm_width = llm.config.hidden_size
        if cfg.fusion == "qformer":
            self.fusion = QFormerFusion(vision.dim, audio.dim, self.llm_width, **cfg.qformer)
        elif cfg.fusion == "attention":
            self.fusion = AttentionFusion(vision.dim, audio.dim, self.llm_width)
        else:
            raise ValueError(f"unknown fusion {cfg.fusion!r}: attention | qformer")
        if cfg.train_llm:  # a small LLM learnt from scratch: every weight trains, no adapter
            self.llm = llm.requires_grad_(True)
        else:
            llm.requires_grad_(False)
            lora = LoraConfig(task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                              lora_dropout=cfg.lora_dropout, target_modules=list(cfg.lora_targets))
            self.llm = get_peft_model(llm, lora)

    @classmethod
    def build(cls, cfg: ModelConfig) -> "AffectGPT":
        return cls(cfg, *build_parts(cfg))

    def train(self, mode: bool = True):
        super().train(mode)
        self.vision.eval()  # frozen encoders never run in training mode (no dropout, no HuBERT masking)
        self.audio.eval()
        return self

    # --- multimodal side: media → three LLM-width rows --------------------------------------------

    def features(self, pixel_values: torch.Tensor, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pixel_values [B, T, 3, S, S], clips [B, K, samples] → face [B, T, Dv], audio [B, K, Da] features."""
        b, t = pixel_values.shape[:2]
        k = clips.shape[1]
        face = self.vision(pixel_values.flatten(0, 1)).view(b, t, -1)
        audio = self.audio(clips.flatten(0, 1)).view(b, k, -1)
        return face, audio

    def encode(self, pixel_values: torch.Tensor, clips: torch.Tensor) -> torch.Tensor:
        """pixel_values [B, T, 3, S, S], clips [B, K, samples] → fused rows [B, 3, H]."""
        return self.fusion(*self.features(pixel_values, clips))

    # --- the embedding boundary: prompt segments + fused rows → inputs_embeds ----------------------

    def prompt_ids(self, subtitle: str, question: str | None = None, bos: bool = True) -> list[int | tuple]:
        """(bos), then each text segment's ids, with (placeholder, k) where the k-th fused row of it goes: the
        device's prompt (runtime/prompt.py assembles both), one entry per position."""
        chunks = prompt_chunks(self.cfg.template, subtitle, question or self.cfg.question,
                               lambda text: encode_text(self.tokenizer, text), self.fusion.rows, self.placeholders,
                               self.bos_id if bos else None)
        return positions(chunks)

    def embed(self, ids: list[int | tuple], fused: torch.Tensor) -> torch.Tensor:
        """[L] ids / (placeholder, k), fused [R, H] → [L, H] input embeddings."""
        table = self.llm.get_input_embeddings()
        spans = placeholder_spans(self.fusion.rows, self.placeholders)
        token_pos = [i for i, x in enumerate(ids) if isinstance(x, int)]
        dtype = table.weight.dtype  # bf16 under 4/8-bit loading, where the fused rows stay fp32
        rows = torch.empty(len(ids), self.llm_width, dtype=dtype, device=fused.device)
        rows[token_pos] = table(torch.tensor([ids[i] for i in token_pos], device=fused.device))
        for i, x in enumerate(ids):
            if not isinstance(x, int):
                rows[i] = fused[spans[x[0]].start + x[1]].to(dtype)
        return rows

    def llm_pieces(self, ids: list[int | tuple], fused: torch.Tensor) -> list:
        """The same prompt as runs of token ids and of fused rows (numpy), as the runtime's LLM takes it."""
        spans = placeholder_spans(self.fusion.rows, self.placeholders)
        pieces: list = []
        for x in ids:
            if isinstance(x, int):
                if pieces and isinstance(pieces[-1], list):
                    pieces[-1].append(x)
                else:
                    pieces.append([x])
            else:
                pieces.append(fused[spans[x[0]].start + x[1]].detach().numpy()[None])
        return pieces

    # --- training -------------------------------------------------------------------------------

    def forward(self, pixel_values=None, clips=None, subtitles: list[str] = (), answers: list[str] = (),
                questions=None, face=None, audio=None, vision_present=None):
        """Cross-entropy on answer + "###" + eos; prompt positions are −100. Returns the mean loss.

        Takes media (pixel_values, clips) or cached encoder features (face [B, T, Dv], audio [B, K, Da]);
        vision_present [B] (1 or 0) zeroes the face features of samples whose vision the device takes away."""
        if face is None:
            face, audio = self.features(pixel_values, clips)
        if vision_present is not None:
            face = face * vision_present.to(face.dtype).view(-1, 1, 1)
        fused = self.fusion(face, audio)
        questions = questions or [None] * len(subtitles)
        seqs, labels = [], []
        for b, (subtitle, answer, question) in enumerate(zip(subtitles, answers, questions)):
            prompt = self.prompt_ids(subtitle, question)
            target = encode_text(self.tokenizer, answer + STOP_TEXT) + [self.eos_id]
            seqs.append(self.embed(prompt + target, fused[b]))
            labels.append(torch.tensor([-100] * len(prompt) + target))
        length = max(len(x) for x in labels)
        embeds = torch.zeros(len(seqs), length, self.llm_width, dtype=seqs[0].dtype, device=fused.device)
        mask = torch.zeros(len(seqs), length, dtype=torch.long, device=fused.device)
        label_ids = torch.full((len(seqs), length), -100, dtype=torch.long, device=fused.device)
        for b, (e, y) in enumerate(zip(seqs, labels)):
            embeds[b, : len(e)] = e
            label_ids[b, : len(y)] = y
            mask[b, : len(y) - 1] = 1  # pad = eos in the reference, so the final eos is masked out of attention
        return answer_loss(self.llm, embeds, mask, label_ids)

    # --- inference (the reference path the runtime is checked against) -------------------------

    @torch.no_grad()
    def generate(self, pixel_values, clips, subtitle: str, max_new_tokens: int = 32, question=None) -> list[int]:
        """Greedy decoding for one clip; stops at eos or once the text holds the stop text. → new token ids."""
        fused = self.encode(pixel_values[None], clips[None])[0]
        ids = self.prompt_ids(subtitle, question, bos=self.cfg.inference_bos)
        embeds = self.embed(ids, fused)[None]
        out = self.llm(inputs_embeds=embeds, use_cache=True)
        generated: list[int] = []
        while True:
            next_id = int(out.logits[0, -1].argmax())
            if next_id == self.eos_id:
                break
            generated.append(next_id)
            if len(generated) >= max_new_tokens or STOP_TEXT in self.tokenizer.decode(generated):
                break
            out = decode_step(self.llm, out, torch.tensor([[next_id]], device=embeds.device))
        return generated


def answer_loss(llm, embeds: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the next token where a label is set: the decoder runs over every position, the output
    layer only over the answer's (with a 262k-word vocabulary it would otherwise cost more than the decoder)."""
    causal = llm.get_base_model() if hasattr(llm, "get_base_model") else llm
    hidden = causal.model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != -100
    logits = causal.lm_head(hidden[:, :-1][keep])
    cap = getattr(causal.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return nn.functional.cross_entropy(logits.float(), targets[keep])


# --- building the parts (random weights from configs, or local pretrained folders); one decoding step ------

def llm_load_options(cfg: ModelConfig) -> dict:
    """from_pretrained options: fp32, or bitsandbytes 8 / 4-bit (QLoRA) on a CUDA GPU."""
    if not cfg.llm_quant:
        return {"dtype": torch.float32}
    if cfg.llm_quant not in ("8bit", "4bit"):
        raise ValueError(f"llm_quant must be 8bit or 4bit, not {cfg.llm_quant!r}")
    if not torch.cuda.is_available():
        raise ValueError(f"{cfg.llm_quant} LLM loading needs a CUDA GPU: bitsandbytes on the CPU runs about 100x "
                         "slower than fp32, so it is refused here")
    from transformers import BitsAndBytesConfig

    if cfg.llm_quant == "8bit":
        quant = BitsAndBytesConfig(load_in_8bit=True)
    else:
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=torch.bfloat16)
    return {"quantization_config": quant, "device_map": {"": torch.cuda.current_device()}, "dtype": torch.bfloat16}


def decode_step(llm, out, input_ids: torch.Tensor):
    """One more token on the KV cache of the previous output (recent transformers call it `cache`, older
    releases `past_key_values`)."""
    if hasattr(out, "cache"):
        return llm(input_ids=input_ids, cache=out.cache, use_cache=True)
    return llm(input_ids=input_ids, past_key_values=out.past_key_values, use_cache=True)


def build_parts(cfg: ModelConfig, llm_on_meta: bool = False):
    """(vision, audio, llm, tokenizer): random weights from configs, or pretrained from local folders. `llm_on_meta`:
    the LLM only as names and shapes on PyTorch's meta device (no memory), for an export that writes it as it goes."""
    from transformers import (CLIPVisionConfig, CLIPVisionModelWithProjection, HubertConfig, HubertModel,
                              Qwen2Config, Qwen2ForCausalLM)

    torch.manual_seed(cfg.seed)
    if cfg.vision_kind == "fer":
        from train.fer import ExpressionEncoder, load_fer_weights

        vision = ExpressionEncoder(load_fer_weights(cfg.vision_path), cfg.vision_output)
    elif cfg.vision_kind != "clip":
        raise ValueError(f"unknown vision_kind {cfg.vision_kind!r}: clip | fer")
    elif cfg.vision_path:
        import dataclasses

        clip = CLIPVisionModelWithProjection.from_pretrained(cfg.vision_path, local_files_only=True)
        # the frames must be the size the pretrained encoder was trained at
        cfg.preprocessing = dataclasses.replace(cfg.preprocessing, image_size=clip.config.image_size)
    else:
        clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**cfg.vision))
    if cfg.audio_path:
        hubert = HubertModel.from_pretrained(cfg.audio_path, local_files_only=True)
    else:
        hubert = HubertModel(HubertConfig(**cfg.audio))
    if cfg.llm_quant and not cfg.llm_path:
        raise ValueError("8-bit / 4-bit loading applies to a pretrained LLM: set llm_path")
    if cfg.llm_base:
        from transformers import AutoModelForCausalLM

        from runtime.base_models import resolve
        from train.tokenizer import GGUFTokenizer

        gguf = resolve(cfg.llm_base)  # the very file the device runs: weights dequantized from it, its vocabulary
        llm = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = GGUFTokenizer(cfg.llm_base)
    elif cfg.llm_path:
        from pathlib import Path
        from transformers import AutoConfig, AutoModelForCausalLM

        if llm_on_meta:
            with torch.device("meta"):
                llm = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(cfg.llm_path, local_files_only=True))
        else:
            llm = AutoModelForCausalLM.from_pretrained(cfg.llm_path, local_files_only=True, **llm_load_options(cfg))
        tokenizer = load_tokenizer(cfg.tokenizer_path or str(Path(cfg.llm_path) / "tokenizer.json"))
    else:
        tokenizer = load_tokenizer(cfg.tokenizer_path) if cfg.tokenizer_path else train_tiny_tokenizer(cfg.tokenizer_vocab_size)
        rows = max(cfg.llm_vocab_size or 0, tokenizer.get_vocab_size())
        with torch.device("meta") if llm_on_meta else contextlib.nullcontext():
            llm = Qwen2ForCausalLM(Qwen2Config(vocab_size=rows, **cfg.llm))
    if cfg.vision_kind == "clip":
        vision = VisionEncoder(clip)
    return vision, AudioEncoder(hubert), llm, tokenizer
