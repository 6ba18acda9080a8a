"""A CLIP tokenizer learned from a dataset's captions: byte-level BPE (the ``tokenizers`` library), saved as
``transformers.CLIPTokenizer`` files.

    train_caption_tokenizer(captions) ──▶ CLIPTokenizer (vocab: 256 bytes, 256 bytes + "</w>", merges, bos, eos)
    save_caption_tokenizer(tokenizer, folder) ──▶ tokenizer.json, tokenizer_config.json, vocab.json, merges.txt,
                                                 special_tokens_map.json
    tokenize(tokenizer, texts) ──▶ ids (N, model_max_length), padded as StableDiffusionPipeline pads a prompt

The text is prepared exactly as ``CLIPTokenizer`` prepares it (its normaliser: NFC, runs of white space to one
space, lower case; its pre-tokeniser: CLIP's word regex, then bytes as printable characters), and words end in
CLIP's ``"</w>"``. The vocabulary is laid out as OpenAI's CLIP lays out its own: every byte alone and as a word's
last piece first, then one token per merge, then ``<|startoftext|>`` and ``<|endoftext|>`` (also padding and
"unknown"). With every byte in it, any text — a word never seen in training, another script, an emoji — falls into
known pieces: nothing is ever unknown.

``model_max_length`` comes from the data: the longest caption in tokens, with bos and eos, rounded up to a multiple
of ``length_multiple``. A text encoder built for this tokenizer takes that many positions.
"""

import json
import math
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import CLIPTokenizer

from .constants import MIN_VOCAB_SIZE


BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"  # also CLIP's padding and "unknown" token
END_OF_WORD = "</w>"
MERGES_HEADER = "#version: 0.2"  # the first line of a merges.txt; readers skip it


def byte_alphabet() -> list[str]:
    """The 256 printable characters that byte-level BPE writes bytes as, in byte order (GPT-2's / CLIP's table)."""
    return sorted(pre_tokenizers.ByteLevel.alphabet(), key=_byte_order)


def _byte_order(char: str) -> int:
    """The byte that ``char`` stands for: printable bytes stand for themselves, the others were shifted by 256."""
    code = ord(char)
    return code if code < 256 else _UNPRINTABLE[code - 256]


_UNPRINTABLE = [b for b in range(256) if not (33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255)]


def train_caption_tokenizer(
    captions: Iterable[str], vocab_size: int = 2048, min_frequency: int = 2, length_multiple: int = 8
) -> CLIPTokenizer:
    """Learn BPE merges from ``captions`` and return a ``CLIPTokenizer`` with them.

    Args:
        captions: the training captions (a caption may repeat; the merges follow the words' frequencies).
        vocab_size: at most this many tokens (at least ``MIN_VOCAB_SIZE``): 514 base tokens, the rest merges.
        min_frequency: a pair of pieces seen fewer times than this is never merged.
        length_multiple: ``model_max_length`` is rounded up to a multiple of this.

    Raises:
        ValueError: no caption, or ``vocab_size`` below ``MIN_VOCAB_SIZE``.
    """
    captions = list(captions)
    if not captions:
        raise ValueError("no captions to learn a tokenizer from")
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(
            f"the tokenizer's vocab_size must be at least {MIN_VOCAB_SIZE} (every byte, alone and at a "
            f"word's end, and bos/eos), got {vocab_size}"
        )
    clip = (
        CLIPTokenizer()
    )  # an empty CLIP tokenizer: its normaliser and pre-tokeniser, so the text is cut as CLIP cuts it
    learner = Tokenizer(models.BPE(unk_token=EOS_TOKEN, continuing_subword_prefix="", end_of_word_suffix=END_OF_WORD))
    learner.normalizer = clip.backend_tokenizer.normalizer
    learner.pre_tokenizer = clip.backend_tokenizer.pre_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        show_progress=False,
        initial_alphabet=byte_alphabet(),
        end_of_word_suffix=END_OF_WORD,
    )
    learner.train_from_iterator(captions, trainer)
    merges = [tuple(pair) for pair in json.loads(learner.to_str())["model"]["merges"]]
    merges = merges[: vocab_size - MIN_VOCAB_SIZE]
    alphabet = byte_alphabet()
    tokens = alphabet + [c + END_OF_WORD for c in alphabet] + ["".join(pair) for pair in merges]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}  # a merge's result may repeat a base token
    vocab.update({BOS_TOKEN: len(vocab), EOS_TOKEN: len(vocab) + 1})
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges)
    longest = max(len(ids) for ids in tokenizer(captions)["input_ids"])  # bos and eos included
    tokenizer.model_max_length = math.ceil(longest / length_multiple) * length_multiple
    return tokenizer


def save_caption_tokenizer(tokenizer: CLIPTokenizer, folder: str | Path) -> None:
    """``tokenizer.save_pretrained(folder)``, and its vocabulary and merges as ``vocab.json`` and ``merges.txt`` and
    its special tokens as ``special_tokens_map.json`` (what older ``transformers`` versions read)."""
    folder = Path(folder)
    tokenizer.save_pretrained(folder)
    write_vocab_files(tokenizer, folder)


def write_vocab_files(tokenizer: CLIPTokenizer, folder: str | Path) -> None:
    """Write ``vocab.json``, ``merges.txt`` and ``special_tokens_map.json`` of ``tokenizer`` into ``folder``."""
    folder = Path(folder)
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    (folder / "vocab.json").write_text(json.dumps(model["vocab"], ensure_ascii=False) + "\n", encoding="utf-8")
    merges = [" ".join(pair) if isinstance(pair, list) else pair for pair in model["merges"]]
    (folder / "merges.txt").write_text("\n".join([MERGES_HEADER, *merges]) + "\n", encoding="utf-8")
    special = {"bos_token": BOS_TOKEN, "eos_token": EOS_TOKEN, "pad_token": EOS_TOKEN, "unk_token": EOS_TOKEN}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")


def tokenize(tokenizer: CLIPTokenizer, texts: list[str]) -> torch.Tensor:
    """Token ids (N, model_max_length), padded and truncated exactly as ``StableDiffusionPipeline.encode_prompt`` does."""
    return tokenizer(
        texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids
